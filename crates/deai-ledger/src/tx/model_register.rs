//! `ModelRegister`: the task's creator registers a model produced by the task, with its parent
//! model and metrics. The event is recorded in the model's, the task's and every selected
//! dataset's history, so data owners see which models used their data.

use super::{Action, Env};
use crate::codec::{list_size, read_list, write_list};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::{Metric, Model, State, TaskStatus};
use crate::types::Digest;
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Register a model produced by a task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRegister {
    /// BLAKE3 of the weights.
    pub model_hash: Digest,
    /// The task it came from (the sender must be its creator; the task must be open).
    pub task: u64,
    /// The model it was trained from, if any.
    pub parent: Option<u64>,
    /// Metrics in fixed point ([`crate::METRIC_SCALE`]).
    pub metrics: Vec<Metric>,
}

impl Action for ModelRegister {
    fn check(&self, params: &Params) -> Result<(), TxError> {
        crate::state::check_metrics(&self.metrics, params)
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let t = state.task_checked(self.task)?;
        if t.creator != env.sender {
            return Err(TxError::NotOwner {
                kind: EntityKind::Task,
                id: self.task,
                owner: t.creator,
                sender: env.sender,
            });
        }
        if t.status != TaskStatus::Open {
            return Err(TxError::TaskNotOpen { id: self.task });
        }
        if let Some(parent) = self.parent {
            state.model_checked(parent)?;
            state.require_unblocked(crate::state::BlockTarget::Model(parent))?;
        }
        state.next_id(EntityKind::Model).map(|_| ())
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        let id = state
            .next_id(EntityKind::Model)
            .expect("validated: id available");
        state.insert_model(Model {
            id,
            owner: env.sender,
            model_hash: self.model_hash,
            task: self.task,
            parent: self.parent,
            metrics: self.metrics.clone(),
            registered_height: env.height,
            history_root: Digest::default(),
            history: Vec::new(),
        });
        let event = Event::ModelRegistered {
            id,
            task: self.task,
            parent: self.parent,
            model_hash: self.model_hash,
        };
        state.record(EntityKind::Model, id, env, event.clone());
        state.record(EntityKind::Task, self.task, env, event.clone());
        let datasets = state
            .task(self.task)
            .map(|t| t.datasets.clone())
            .unwrap_or_default();
        for dataset in datasets {
            state.record(EntityKind::Dataset, dataset, env, event.clone());
        }
        vec![event]
    }
}

impl Write for ModelRegister {
    fn write(&self, buf: &mut impl BufMut) {
        self.model_hash.write(buf);
        self.task.write(buf);
        self.parent.write(buf);
        write_list(&self.metrics, buf);
    }
}

impl EncodeSize for ModelRegister {
    fn encode_size(&self) -> usize {
        32 + 8 + self.parent.encode_size() + list_size(&self.metrics)
    }
}

impl Read for ModelRegister {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, cfg: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            model_hash: Digest::read_cfg(buf, &())?,
            task: u64::read_cfg(buf, &())?,
            parent: Option::<u64>::read_cfg(buf, &())?,
            metrics: read_list(buf, cfg.model_metrics_max, &cfg.string_bytes_max)?,
        })
    }
}
