//! `TaskCreate`: post a training task and move its reward into escrow. Every dataset named by
//! the filter must exist, be live, not expired, and admit the task under its consent policy.

use super::{Action, Env};
use crate::codec::{read_list, read_str, str_size, write_list, write_str};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{DELTA_SCALE, Limits, Params};
use crate::state::{State, Task, TaskStatus, TaskTerms};
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
    /// DP δ, fixed point ([`crate::DELTA_SCALE`]), < 1.
    pub delta: u64,
    /// Reward moved into escrow (> 0).
    #[serde(with = "crate::types::amount")]
    pub reward: u128,
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
        self.delta.write(buf);
        self.reward.write(buf);
    }
}

impl EncodeSize for TaskCreate {
    fn encode_size(&self) -> usize {
        str_size(&self.purpose) + 32 + crate::codec::list_size(&self.datasets) + 4 + 8 + 8 + 16
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
            delta: u64::read_cfg(buf, &())?,
            reward: u128::read_cfg(buf, &())?,
        })
    }
}
