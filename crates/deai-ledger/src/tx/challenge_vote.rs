//! `ChallengeVote`: a validator of the epoch a challenge was filed in says whether it found the
//! challenged claim wrong (upheld) or right, once, before the vote deadline. More than two
//! thirds of that set's stake on one side decides the challenge in the same transaction.

use super::{Action, Env};
use crate::error::TxError;
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::{State, Vote};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// A validator's vote on a pending challenge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeVote {
    /// The task.
    pub task: u64,
    /// The challenge's number within the task.
    pub challenge: u32,
    /// Whether the claim was wrong (or its blobs could not be fetched).
    pub upheld: bool,
}

impl Action for ChallengeVote {
    fn check(&self, _: &Params) -> Result<(), TxError> {
        Ok(())
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let t = state.task_checked(self.task)?;
        let not_pending = TxError::ChallengeNotPending {
            task: self.task,
            challenge: self.challenge,
        };
        let c = (self.challenge as usize)
            .checked_sub(1)
            .and_then(|i| t.challenges.get(i))
            .ok_or(not_pending.clone())?;
        if !c.is_pending() || env.height > c.vote_deadline {
            return Err(not_pending);
        }
        let member = state
            .validator_set(c.epoch)
            .is_some_and(|set| set.members.iter().any(|m| m.account == env.sender));
        if !member {
            return Err(TxError::NotValidator {
                sender: env.sender,
                epoch: c.epoch,
            });
        }
        if c.votes.iter().any(|v| v.validator == env.sender) {
            return Err(TxError::InvalidField {
                field: "challenge".into(),
                reason: format!("{} already voted on challenge {}", env.sender, c.id),
            });
        }
        Ok(())
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        let vote = Vote {
            validator: env.sender,
            upheld: self.upheld,
        };
        let events = state.vote(self.task, self.challenge, vote, env);
        state.refresh_accountable(self.task);
        events
    }
}

impl Write for ChallengeVote {
    fn write(&self, buf: &mut impl BufMut) {
        self.task.write(buf);
        self.challenge.write(buf);
        buf.put_u8(u8::from(self.upheld));
    }
}

impl EncodeSize for ChallengeVote {
    fn encode_size(&self) -> usize {
        8 + 4 + 1
    }
}

impl Read for ChallengeVote {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, _: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            task: u64::read_cfg(buf, &())?,
            challenge: u32::read_cfg(buf, &())?,
            upheld: match u8::read_cfg(buf, &())? {
                0 => false,
                1 => true,
                _ => return Err(CodecError::Invalid("ChallengeVote", "upheld is 0 or 1")),
            },
        })
    }
}
