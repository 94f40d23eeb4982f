//! `RoundOpen`: the task's coordinator opens the next training round. The ledger checks that
//! the round is the next one and within the task's rounds, that the DP spend fits the task's
//! budget (basic composition: ε and δ of all opened rounds add up) and each selected dataset's
//! own `epsilon_max` (summed over every task that used it), that every selected dataset's
//! consent admits the task at this height, and that the selection equals the one seeded by the
//! previous height's state root ([`crate::select`]). The task must have committed its
//! validation data first ([`crate::TaskCommitValidation`]). The round's ε/δ are charged when it opens,
//! whether or not it completes (conservative: updates may already have been released).
//!
//! The round records how many datasets were eligible ([`Round::eligible`]), so owners and
//! verifiers can recompute the sampling rate and the round's ε rather than trust the declared
//! one, and its deadline ([`Round::deadline_height`] = this height + `round_timeout_blocks`),
//! after which anyone may close it as failed ([`crate::RoundExpire`]). The ledger does not know
//! how many datasets a round should select (the task does not record it; it is in the off-chain
//! task spec), so it checks only that the selection is the seeded one of its size.

use super::{Action, Env};
use crate::codec::{list_size, read_list, write_list};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{DELTA_SCALE, Limits, Params};
use crate::state::{Round, SecAggParams, State, Task, TaskStatus, select};
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
    /// The selected datasets (distinct; any order; recorded sorted).
    pub selected: Vec<u64>,
    /// Secure-aggregation parameters: `n` = number selected, `1 <= t <= k <= n`.
    pub secagg: SecAggParams,
    /// DP ε of the round, fixed point ([`crate::EPSILON_SCALE`]), > 0.
    pub epsilon: u64,
    /// DP δ of the round, fixed point ([`crate::DELTA_SCALE`]), < 1.
    pub delta: u64,
    /// How many datasets the coordinator found eligible at this ε, the count its ε was priced
    /// for: it must equal the ledger's own count, or the round is refused
    /// ([`TxError::EligibleMismatch`]) rather than recorded with a sampling rate its ε does not
    /// pay for.
    pub eligible: u32,
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
        if usize::try_from(n).ok() != Some(self.selected.len()) {
            return Err(invalid(format!(
                "n = {n} but {} datasets selected",
                self.selected.len()
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
        for (what, spent, round, budget) in [
            ("epsilon", t.epsilon_spent, self.epsilon, t.epsilon),
            ("delta", t.delta_spent, self.delta, t.delta),
        ] {
            if spent.checked_add(round).is_none_or(|total| total > budget) {
                return Err(TxError::BudgetExceeded {
                    task: t.id,
                    what: what.into(),
                    spent,
                    round,
                    budget,
                });
            }
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

    fn sorted_selection(&self) -> Vec<u64> {
        let mut s = self.selected.clone();
        s.sort_unstable();
        s
    }
}

impl Action for RoundOpen {
    fn check(&self, params: &Params) -> Result<(), TxError> {
        TxError::limit(
            "selected",
            self.selected.len(),
            params.task_datasets_max as usize,
        )?;
        TxError::positive("selected", self.selected.len() as u128)?;
        distinct("selected", &self.selected)?;
        TxError::positive("epsilon", u128::from(self.epsilon))?;
        if self.delta >= DELTA_SCALE {
            return Err(TxError::InvalidField {
                field: "delta".into(),
                reason: format!("{} is not below 1 ({DELTA_SCALE})", self.delta),
            });
        }
        self.check_secagg()
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let t = state.task_checked(self.task)?;
        if t.status != TaskStatus::Open {
            return Err(TxError::TaskNotOpen { id: self.task });
        }
        State::require_coordinator(t, &env.sender, false)?;
        self.check_round(t)?;
        self.check_budget(t)?;
        for &id in &self.selected {
            state.eligibility(t, id, env.height, self.epsilon)?;
        }
        let eligible = state.eligible(t, env.height, self.epsilon);
        let found = u32::try_from(eligible.len()).unwrap_or(u32::MAX);
        if found != self.eligible {
            return Err(TxError::EligibleMismatch {
                task: self.task,
                round: self.round,
                declared: self.eligible,
                found,
            });
        }
        let seed = state.round_seed(self.task, self.round);
        let expected = select(&seed, &eligible, self.selected.len());
        let got = self.sorted_selection();
        if expected != got {
            return Err(TxError::WrongSelection {
                task: self.task,
                round: self.round,
                expected,
                got,
            });
        }
        Ok(())
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        let seed = state.round_seed(self.task, self.round);
        let selected = self.sorted_selection();
        let eligible = {
            let t = state.task(self.task).expect("validated: task exists");
            state.eligible(t, env.height, self.epsilon).len()
        };
        let eligible =
            u32::try_from(eligible).expect("eligible datasets are in a filter of u32-bounded size");
        let deadline_height = env
            .height
            .saturating_add(state.params().round_timeout_blocks);
        let task = state.task_mut(self.task);
        task.epsilon_spent += self.epsilon;
        task.delta_spent += self.delta;
        task.round_log.push(Round {
            number: self.round,
            opened_height: env.height,
            seed,
            global_model: self.global_model,
            selected: selected.clone(),
            secagg: self.secagg,
            epsilon: self.epsilon,
            delta: self.delta,
            eligible,
            deadline_height,
            outcome: None,
            expired_height: None,
        });
        let event = Event::RoundOpened {
            task: self.task,
            round: self.round,
            epsilon: self.epsilon,
            eligible,
            deadline_height,
        };
        state.record(EntityKind::Task, self.task, env, event.clone());
        for id in selected {
            state.dataset_mut(id).epsilon_spent += self.epsilon;
            state.record(EntityKind::Dataset, id, env, event.clone());
        }
        vec![event]
    }
}

impl Write for RoundOpen {
    fn write(&self, buf: &mut impl BufMut) {
        self.task.write(buf);
        self.round.write(buf);
        self.global_model.write(buf);
        write_list(&self.selected, buf);
        self.secagg.write(buf);
        self.epsilon.write(buf);
        self.delta.write(buf);
        self.eligible.write(buf);
    }
}

impl EncodeSize for RoundOpen {
    fn encode_size(&self) -> usize {
        8 + 4 + 32 + list_size(&self.selected) + 12 + 8 + 8 + 4
    }
}

impl Read for RoundOpen {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, cfg: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            task: u64::read_cfg(buf, &())?,
            round: u32::read_cfg(buf, &())?,
            global_model: Digest::read_cfg(buf, &())?,
            selected: read_list(buf, cfg.task_datasets_max, &())?,
            secagg: SecAggParams::read_cfg(buf, &())?,
            epsilon: u64::read_cfg(buf, &())?,
            delta: u64::read_cfg(buf, &())?,
            eligible: u32::read_cfg(buf, &())?,
        })
    }
}
