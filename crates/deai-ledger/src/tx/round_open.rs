//! `RoundOpen`: the task's coordinator opens the next training round, naming how many datasets
//! it takes. The ledger checks that the round is the next one and within the task's rounds, that
//! the δ spend fits the task's budget, and that enough datasets are eligible (in the filter,
//! consent admitting the task at this height, their own ε caps admitting what this round would
//! charge them). The task must have committed its validation data first
//! ([`crate::TaskCommitValidation`]).
//!
//! The ledger then draws the selection itself, at apply time, from the beacon of the block that
//! includes the transaction ([`crate::selection_seed`]): a coordinator signs before that
//! randomness exists, so it cannot preview draws and submit only a favourable one.
//!
//! Each selected dataset is charged what its next participation costs under the task's schedule
//! ([`crate::Task::next_charge`]); the task's `epsilon_spent` becomes the largest cumulative ε of
//! any dataset. Charges are made when the round opens, whether or not it completes
//! (conservative: updates may already have been released). The round records how many datasets
//! were eligible ([`Round::eligible`]) and its deadline ([`Round::deadline_height`] = this
//! height + `round_timeout_blocks`), after which anyone may close it as failed
//! ([`crate::RoundExpire`]).
//! The ledger does not know how many datasets a round should select (that is in the off-chain
//! spec); owners and verifiers check the recorded count against it.

use super::{Action, Env};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{DELTA_SCALE, Limits, Params};
use crate::state::{Round, SecAggParams, State, Task, TaskStatus, select, selection_seed};
use crate::types::Digest;
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Open a task's next round (coordinator only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundOpen {
    /// The task.
    pub task: u64,
    /// The round number: the task's rounds opened so far + 1, at most the task's rounds.
    pub round: u32,
    /// BLAKE3 of the global model the round trains from.
    pub global_model: Digest,
    /// How many datasets the ledger selects (1..=`task_datasets_max`, at most those eligible).
    pub count: u32,
    /// Secure-aggregation parameters: `n` = `count`, `1 <= t <= k <= n`.
    pub secagg: SecAggParams,
    /// DP δ of the round, fixed point ([`crate::DELTA_SCALE`]), < 1.
    pub delta: u64,
}

/// Err if `ids` holds a duplicate.
pub(super) fn distinct(field: &str, ids: &[u64]) -> Result<(), TxError> {
    let mut seen = std::collections::BTreeSet::new();
    match ids.iter().find(|id| !seen.insert(**id)) {
        Some(dup) => Err(TxError::InvalidField {
            field: field.into(),
            reason: format!("dataset {dup} listed twice"),
        }),
        None => Ok(()),
    }
}

impl RoundOpen {
    fn check_secagg(&self) -> Result<(), TxError> {
        let SecAggParams { n, k, t } = self.secagg;
        let invalid = |reason: String| TxError::InvalidField {
            field: "secagg".into(),
            reason,
        };
        if n != self.count {
            return Err(invalid(format!(
                "n = {n} but {} datasets asked for",
                self.count
            )));
        }
        if !(1 <= t && t <= k && k <= n) {
            return Err(invalid(format!(
                "need 1 <= t <= k <= n, got n={n} k={k} t={t}"
            )));
        }
        Ok(())
    }

    fn check_budget(&self, t: &Task) -> Result<(), TxError> {
        if t.delta_spent
            .checked_add(self.delta)
            .is_none_or(|total| total > t.delta)
        {
            return Err(TxError::BudgetExceeded {
                task: t.id,
                what: "delta".into(),
                spent: t.delta_spent,
                round: self.delta,
                budget: t.delta,
            });
        }
        Ok(())
    }

    fn check_round(&self, t: &Task) -> Result<(), TxError> {
        if t.validation.is_none() {
            return Err(TxError::InvalidField {
                field: "task".into(),
                reason: format!(
                    "task {} has no validation commitment (TaskCommitValidation comes first)",
                    t.id
                ),
            });
        }
        if let Some(open) = t.open_round() {
            return Err(TxError::RoundStillOpen {
                task: t.id,
                round: open.number,
            });
        }
        let expected = t.rounds_opened().saturating_add(1);
        if self.round != expected || self.round > t.rounds {
            return Err(TxError::WrongRound {
                task: t.id,
                got: self.round,
                expected,
                rounds: t.rounds,
            });
        }
        Ok(())
    }
}

impl Action for RoundOpen {
    fn check(&self, params: &Params) -> Result<(), TxError> {
        TxError::limit(
            "count",
            self.count as usize,
            params.task_datasets_max as usize,
        )?;
        TxError::positive("count", u128::from(self.count))?;
        if self.delta >= DELTA_SCALE {
            return Err(TxError::InvalidField {
                field: "delta".into(),
                reason: format!("{} is not below 1 ({DELTA_SCALE})", self.delta),
            });
        }
        self.check_secagg()
    }

    // Never reads `env.beacon`: admission checks run without it.
    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let t = state.task_checked(self.task)?;
        if t.status != TaskStatus::Open {
            return Err(TxError::TaskNotOpen { id: self.task });
        }
        State::require_coordinator(t, &env.sender, false)?;
        self.check_round(t)?;
        self.check_budget(t)?;
        let eligible = state.eligible(t, env.height);
        if eligible.len() < self.count as usize {
            return Err(TxError::TooFewEligible {
                task: self.task,
                round: self.round,
                asked: self.count,
                eligible: u32::try_from(eligible.len()).unwrap_or(u32::MAX),
            });
        }
        state.require_funds(env, state.bond_needed())
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        let seed = selection_seed(self.task, self.round, &env.beacon);
        let t = state.task(self.task).expect("validated: task exists");
        let eligible = state.eligible(t, env.height);
        let selected = select(&seed, &eligible, self.count as usize);
        let charges: Vec<(u64, u32, u64)> = selected
            .iter()
            .map(|&id| {
                let (j, charge) = t.next_step(id).expect("validated: eligible");
                (id, j, charge)
            })
            .collect();
        let most = charges.iter().map(|&(_, j, _)| j).max().unwrap_or(0);
        let spent = t
            .cumulative_epsilon(most)
            .expect("eligible: within the schedule")
            .max(t.epsilon_spent);
        let epsilon = spent - t.epsilon_spent;
        let eligible = u32::try_from(eligible.len())
            .expect("eligible datasets are in a filter of u32-bounded size");
        let deadline_height = env
            .height
            .saturating_add(state.params().round_timeout_blocks);
        let task = state.task_mut(self.task);
        task.epsilon_spent = spent;
        task.delta_spent += self.delta;
        task.round_log.push(Round {
            number: self.round,
            opened_height: env.height,
            seed,
            global_model: self.global_model,
            selected,
            secagg: self.secagg,
            epsilon,
            delta: self.delta,
            eligible,
            deadline_height,
            outcome: None,
            expired_height: None,
        });
        let event = Event::RoundOpened {
            task: self.task,
            round: self.round,
            epsilon,
            eligible,
            deadline_height,
        };
        state.record(EntityKind::Task, self.task, env, event.clone());
        let mut events = vec![event];
        events.extend(state.bond_for_round(self.task, env.sender, self.round, env));
        for (dataset, _, epsilon) in charges {
            state.dataset_mut(dataset).epsilon_spent += epsilon;
            let charged = Event::EpsilonCharged {
                dataset,
                task: self.task,
                round: self.round,
                epsilon,
            };
            state.record(EntityKind::Dataset, dataset, env, charged.clone());
            events.push(charged);
        }
        events
    }
}

impl Write for RoundOpen {
    fn write(&self, buf: &mut impl BufMut) {
        self.task.write(buf);
        self.round.write(buf);
        self.global_model.write(buf);
        self.count.write(buf);
        self.secagg.write(buf);
        self.delta.write(buf);
    }
}

impl EncodeSize for RoundOpen {
    fn encode_size(&self) -> usize {
        8 + 4 + 32 + 4 + 12 + 8
    }
}

impl Read for RoundOpen {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, _: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            task: u64::read_cfg(buf, &())?,
            round: u32::read_cfg(buf, &())?,
            global_model: Digest::read_cfg(buf, &())?,
            count: u32::read_cfg(buf, &())?,
            secagg: SecAggParams::read_cfg(buf, &())?,
            delta: u64::read_cfg(buf, &())?,
        })
    }
}
