//! `TaskCreate`: post a training task and move its reward into escrow. Every dataset named by
//! the filter must exist, be live, not expired, and admit the task under its consent policy.
//!
//! The task fixes its privacy price list here, once: a step function giving a dataset's
//! cumulative ε within the task after it took part in `j` rounds ([`Task::cumulative_epsilon`];
//! at or above the tight RDP figure for `j` compositions of the task's Gaussian mechanism,
//! computed off-ledger from the spec: every `j` for short tasks, a grid for long ones). The
//! ledger charges a dataset `cumulative(j) - cumulative(j - 1)` when a round selects it for the
//! `j`-th time ([`crate::RoundOpen`]). No sampling amplification is assumed: selections are
//! public on the ledger, so whoever sees a round's sum knows whose data is in it. Owners and
//! `deai verify task` recompute the schedule from the spec and refuse a task whose schedule is
//! below it; nobody (a restarted or replaced coordinator included) can change it later.

use super::{Action, Env};
use crate::codec::{read_list, read_str, str_size, write_list, write_str};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{DELTA_SCALE, Limits, Params};
use crate::state::{EPSILON_SCHEDULE_STEPS_MAX, EpsilonStep, State, Task, TaskStatus, TaskTerms};
use crate::types::Digest;
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Create a training task with an escrowed reward.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCreate {
    /// Purpose, matched against each dataset's allowed purposes.
    pub purpose: String,
    /// BLAKE3 of the model specification.
    pub model_spec: Digest,
    /// Dataset ids the task will train on (distinct; may be empty).
    pub datasets: Vec<u64>,
    /// Training rounds (1..=`task_rounds_max`).
    pub rounds: u32,
    /// DP ε budget, fixed point ([`crate::EPSILON_SCALE`]), > 0.
    pub epsilon: u64,
    /// What a dataset's taking part in rounds costs it ([`EpsilonStep`]): at most
    /// [`EPSILON_SCHEDULE_STEPS_MAX`] steps, rounds strictly increasing from 1 or more to
    /// exactly `rounds`, ε positive, non-decreasing, the last within `epsilon`.
    pub epsilon_schedule: Vec<EpsilonStep>,
    /// DP δ, fixed point ([`crate::DELTA_SCALE`]), < 1.
    pub delta: u64,
    /// Reward moved into escrow (> 0).
    #[serde(with = "crate::types::amount")]
    pub reward: u128,
}

impl TaskCreate {
    fn check_schedule(&self) -> Result<(), TxError> {
        let invalid = |reason: String| TxError::InvalidField {
            field: "epsilon_schedule".into(),
            reason,
        };
        let s = &self.epsilon_schedule;
        let (Some(first), Some(last)) = (s.first(), s.last()) else {
            return Err(invalid(
                "no step (one per round at most, the last at `rounds`)".into(),
            ));
        };
        if first.rounds == 0 || first.epsilon == 0 {
            return Err(invalid(
                "the first step must be at 1 round or more, with ε > 0".into(),
            ));
        }
        if let Some(w) = s.windows(2).find(|w| w[1].rounds <= w[0].rounds) {
            return Err(invalid(format!(
                "steps out of order: {} rounds after {}",
                w[1].rounds, w[0].rounds
            )));
        }
        if let Some(w) = s.windows(2).find(|w| w[1].epsilon < w[0].epsilon) {
            return Err(invalid(format!(
                "cumulative ε decreases from {} (at {} rounds) to {} (at {})",
                w[0].epsilon, w[0].rounds, w[1].epsilon, w[1].rounds
            )));
        }
        if last.rounds != self.rounds {
            return Err(invalid(format!(
                "the last step is at {} rounds; the task has {}",
                last.rounds, self.rounds
            )));
        }
        if last.epsilon > self.epsilon {
            return Err(invalid(format!(
                "{} after every round exceeds the budget {}",
                last.epsilon, self.epsilon
            )));
        }
        Ok(())
    }
}

impl Action for TaskCreate {
    fn check(&self, params: &Params) -> Result<(), TxError> {
        TxError::limit(
            "purpose",
            self.purpose.len(),
            params.string_bytes_max as usize,
        )?;
        TxError::limit(
            "datasets",
            self.datasets.len(),
            params.task_datasets_max as usize,
        )?;
        TxError::positive("reward", self.reward)?;
        TxError::positive("rounds", u128::from(self.rounds))?;
        TxError::limit(
            "rounds",
            self.rounds as usize,
            params.task_rounds_max as usize,
        )?;
        TxError::positive("epsilon", u128::from(self.epsilon))?;
        if self.delta >= DELTA_SCALE {
            return Err(TxError::InvalidField {
                field: "delta".into(),
                reason: format!("{} is not below 1 ({DELTA_SCALE})", self.delta),
            });
        }
        TxError::limit(
            "epsilon_schedule",
            self.epsilon_schedule.len(),
            EPSILON_SCHEDULE_STEPS_MAX,
        )?;
        self.check_schedule()?;
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = self.datasets.iter().find(|id| !seen.insert(**id)) {
            return Err(TxError::InvalidField {
                field: "datasets".into(),
                reason: format!("dataset {dup} listed twice"),
            });
        }
        Ok(())
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let epsilon_max = state.params().task_epsilon_max;
        if self.epsilon > epsilon_max {
            return Err(TxError::InvalidField {
                field: "epsilon".into(),
                reason: format!(
                    "{} is above task_epsilon_max {}",
                    crate::types::epsilon_decimal(self.epsilon),
                    crate::types::epsilon_decimal(epsilon_max)
                ),
            });
        }
        state.require_funds(env, self.reward)?;
        state.next_id(EntityKind::Task)?;
        let terms = TaskTerms {
            creator: &env.sender,
            purpose: &self.purpose,
            reward: self.reward,
            epsilon: self.epsilon,
        };
        for &id in &self.datasets {
            let d = state.dataset_checked(id)?;
            if d.revoked {
                return Err(TxError::ConsentRevoked { dataset: id });
            }
            d.policy.admits(id, &terms, env.height)?;
        }
        Ok(())
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        let id = state
            .next_id(EntityKind::Task)
            .expect("validated: id available");
        state.debit(&env.sender, self.reward);
        state.insert_task(Task {
            id,
            creator: env.sender,
            purpose: self.purpose.clone(),
            model_spec: self.model_spec,
            datasets: self.datasets.clone(),
            rounds: self.rounds,
            epsilon: self.epsilon,
            epsilon_schedule: self.epsilon_schedule.clone(),
            delta: self.delta,
            reward: self.reward,
            escrow: self.reward,
            status: TaskStatus::Open,
            created_height: env.height,
            history_root: Digest::default(),
            history: Vec::new(),
            coordinator: None,
            validation: None,
            epsilon_spent: 0,
            delta_spent: 0,
            round_log: Vec::new(),
            final_model: None,
            bonds: Vec::new(),
            challenges: Vec::new(),
            closing: None,
        });
        let created = Event::TaskCreated {
            id,
            creator: env.sender,
            escrow: self.reward,
        };
        state.record(EntityKind::Task, id, env, created.clone());
        let mut events = vec![created];
        for &dataset in &self.datasets {
            let selected = Event::DatasetSelected { dataset, task: id };
            state.record(EntityKind::Dataset, dataset, env, selected.clone());
            events.push(selected);
        }
        events
    }
}

impl Write for TaskCreate {
    fn write(&self, buf: &mut impl BufMut) {
        write_str(&self.purpose, buf);
        self.model_spec.write(buf);
        write_list(&self.datasets, buf);
        self.rounds.write(buf);
        self.epsilon.write(buf);
        write_list(&self.epsilon_schedule, buf);
        self.delta.write(buf);
        self.reward.write(buf);
    }
}

impl EncodeSize for TaskCreate {
    fn encode_size(&self) -> usize {
        str_size(&self.purpose)
            + 32
            + crate::codec::list_size(&self.datasets)
            + 4
            + 8
            + crate::codec::list_size(&self.epsilon_schedule)
            + 8
            + 16
    }
}

impl Read for TaskCreate {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, cfg: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            purpose: read_str(buf, cfg.string_bytes_max)?,
            model_spec: Digest::read_cfg(buf, &())?,
            datasets: read_list(buf, cfg.task_datasets_max, &())?,
            rounds: u32::read_cfg(buf, &())?,
            epsilon: u64::read_cfg(buf, &())?,
            epsilon_schedule: read_list(buf, EPSILON_SCHEDULE_STEPS_MAX, &())?,
            delta: u64::read_cfg(buf, &())?,
            reward: u128::read_cfg(buf, &())?,
        })
    }
}
