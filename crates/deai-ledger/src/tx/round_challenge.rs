//! `RoundChallenge`: anyone disputes one claim of a completed round's result (a group's
//! unmasked sum, the aggregate, the new model or a group's score) while the task's rounds may
//! still be challenged, locking `challenge_deposit`. The validators of the current epoch
//! re-check the claim off the ledger and vote with `ChallengeVote` (rules in
//! [`crate::state::Challenge`]'s module).

use super::{Action, Env};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::{Challenge, Claim, State, TaskStatus};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Challenge one claim of a round's result (anyone).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundChallenge {
    /// The task.
    pub task: u64,
    /// The round (completed).
    pub round: u32,
    /// What is wrong.
    pub claim: Claim,
}

impl Action for RoundChallenge {
    fn check(&self, _: &Params) -> Result<(), TxError> {
        Ok(())
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let t = state.task_checked(self.task)?;
        if !t.challengeable(env.height) {
            return Err(TxError::ChallengeWindowClosed { task: self.task });
        }
        let invalid = |reason: String| TxError::InvalidField {
            field: "round".into(),
            reason,
        };
        let round = t
            .round(self.round)
            .filter(|r| r.outcome.is_some())
            .ok_or_else(|| {
                invalid(format!(
                    "task {} has no completed round {}",
                    self.task, self.round
                ))
            })?;
        if t.round_invalid(self.round) {
            return Err(invalid(format!(
                "round {} of task {} is already invalid",
                self.round, self.task
            )));
        }
        if let Some(group) = self.claim.group()
            && group as usize >= round.selected.len()
        {
            return Err(TxError::InvalidField {
                field: "claim".into(),
                reason: format!(
                    "group {group}: round {} has {} selected datasets, so fewer groups",
                    self.round,
                    round.selected.len()
                ),
            });
        }
        // A score is computed on the validation set, which only `TaskClose` reveals: before
        // that no validator could re-check it.
        if matches!(self.claim, Claim::Score { .. }) && t.status != TaskStatus::Settling {
            return Err(TxError::InvalidField {
                field: "claim".into(),
                reason: format!(
                    "scores of task {} can be challenged once TaskClose revealed its validation data",
                    self.task
                ),
            });
        }
        if t.challenges
            .iter()
            .any(|c| c.is_pending() && c.round == self.round && c.claim == self.claim)
        {
            return Err(TxError::InvalidField {
                field: "claim".into(),
                reason: format!(
                    "the {} claim of round {} is already challenged",
                    self.claim.name(),
                    self.round
                ),
            });
        }
        if t.answerable_for(self.round).is_none() {
            return Err(invalid(format!(
                "no coordinator bond answers for round {} (opened before bonds existed)",
                self.round
            )));
        }
        u32::try_from(t.challenges.len() + 1).map_err(|_| TxError::overflow("challenge id"))?;
        state.require_funds(env, state.params().challenge_deposit)
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        let deposit = state.params().challenge_deposit;
        let vote_deadline = env
            .height
            .saturating_add(state.params().challenge_vote_blocks);
        let epoch = state.params().epoch_of(env.height);
        state.debit(&env.sender, deposit);
        let t = state.task_mut(self.task);
        let accused = t
            .answerable_for(self.round)
            .expect("validated: a bond answers");
        let id = u32::try_from(t.challenges.len() + 1).expect("validated: fits");
        t.challenges.push(Challenge {
            id,
            round: self.round,
            claim: self.claim,
            challenger: env.sender,
            accused,
            deposit,
            filed_height: env.height,
            vote_deadline,
            epoch,
            votes: Vec::new(),
            verdict: None,
        });
        state.refresh_accountable(self.task);
        let event = Event::RoundChallenged {
            task: self.task,
            challenge: id,
            round: self.round,
            claim: self.claim,
            challenger: env.sender,
            accused,
        };
        state.record(EntityKind::Task, self.task, env, event.clone());
        vec![event]
    }
}

impl Write for RoundChallenge {
    fn write(&self, buf: &mut impl BufMut) {
        self.task.write(buf);
        self.round.write(buf);
        self.claim.write(buf);
    }
}

impl EncodeSize for RoundChallenge {
    fn encode_size(&self) -> usize {
        8 + 4 + self.claim.encode_size()
    }
}

impl Read for RoundChallenge {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, _: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            task: u64::read_cfg(buf, &())?,
            round: u32::read_cfg(buf, &())?,
            claim: Claim::read_cfg(buf, &())?,
        })
    }
}
