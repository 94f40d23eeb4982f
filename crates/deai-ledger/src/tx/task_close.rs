//! `TaskClose`: the creator or coordinator closes a task after its last completed round. It
//! reveals the validation data (salt and blob hash, checked against the commitment made before
//! the first round), pays the escrow to the owners of scored datasets in proportion to their
//! scores summed over all rounds, refunds the rest to the creator, and registers the final
//! model (the new model of the last round that recorded a result; expired rounds have none)
//! with its lineage: the task (whose round log lists every round) and the parent model.
//!
//! Payout: `pay_i = floor(escrow * score_i / Σ scores)` in exact integer arithmetic, paid in
//! ascending dataset order; the remainder (unscored share and rounding dust, all of it when
//! every score is 0) goes back to the creator, so `Σ pay_i + refund == escrow`.

use super::{Action, Env};
use crate::codec::{list_size, read_list, write_list};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::{Metric, Model, State, Task, TaskStatus, share};
use crate::tx::validation_commitment;
use crate::types::Digest;
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Close a task: reveal validation data, pay rewards, refund, register the final model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskClose {
    /// The task.
    pub task: u64,
    /// The salt of the validation commitment.
    pub validation_salt: Digest,
    /// BLAKE3 of the validation blob (fetchable from the blob store by this hash).
    pub validation_data: Digest,
    /// The model the task trained from, if any.
    pub parent: Option<u64>,
    /// Final metrics in fixed point ([`crate::METRIC_SCALE`]).
    pub metrics: Vec<Metric>,
}

/// Each scored dataset's payout from `task`'s escrow (ascending ids; zero payouts omitted).
pub(crate) fn payouts(task: &Task) -> Result<Vec<(u64, u128)>, TxError> {
    let totals = task.score_totals();
    let sum: u128 = totals.values().sum();
    if sum == 0 {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (dataset, score) in totals {
        let amount =
            share(task.escrow, score, sum).ok_or_else(|| TxError::overflow("reward payout"))?;
        if amount > 0 {
            out.push((dataset, amount));
        }
    }
    Ok(out)
}

impl TaskClose {
    fn check_rounds(&self, t: &Task) -> Result<(), TxError> {
        if let Some(open) = t.open_round() {
            return Err(TxError::RoundStillOpen {
                task: self.task,
                round: open.number,
            });
        }
        if t.last_completed_round().is_none() {
            return Err(TxError::InvalidField {
                field: "task".into(),
                reason: format!(
                    "task {} has no completed round (cancel it instead)",
                    self.task
                ),
            });
        }
        Ok(())
    }

    fn check_validation(&self, t: &Task) -> Result<(), TxError> {
        let got = validation_commitment(&self.validation_salt, &self.validation_data);
        if t.validation != Some(got) {
            return Err(TxError::ValidationMismatch {
                task: self.task,
                committed: t.validation,
                got,
            });
        }
        Ok(())
    }
}

impl Action for TaskClose {
    fn check(&self, params: &Params) -> Result<(), TxError> {
        crate::state::check_metrics(&self.metrics, params)
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let t = state.task_checked(self.task)?;
        if t.status != TaskStatus::Open {
            return Err(TxError::TaskNotOpen { id: self.task });
        }
        State::require_coordinator(t, &env.sender, true)?;
        self.check_rounds(t)?;
        self.check_validation(t)?;
        if let Some(parent) = self.parent {
            state.model_checked(parent)?;
        }
        payouts(t)?;
        state.next_id(EntityKind::Model).map(|_| ())
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        let (pays, creator, escrow, model_hash) = {
            let t = state.task(self.task).expect("validated: task exists");
            let last = t.last_completed_round().and_then(|r| r.outcome.as_ref());
            let model_hash = last
                .map(|o| o.new_model)
                .expect("validated: a round with a result");
            let pays = payouts(t).expect("validated: payouts fit");
            (pays, t.creator, t.escrow, model_hash)
        };
        let mut events = Vec::new();
        let mut paid = 0u128;
        for (dataset, amount) in pays {
            let owner = state.dataset(dataset).expect("scored datasets exist").owner;
            state.credit(&owner, amount);
            paid += amount;
            let event = Event::RewardPaid {
                task: self.task,
                dataset,
                owner,
                amount,
            };
            state.record(EntityKind::Task, self.task, env, event.clone());
            state.record(EntityKind::Dataset, dataset, env, event.clone());
            events.push(event);
        }
        let refund = escrow - paid;
        state.credit(&creator, refund);
        let model = self.register_model(state, env, creator, model_hash, &mut events);
        let task = state.task_mut(self.task);
        task.escrow = 0;
        task.status = TaskStatus::Closed;
        task.final_model = Some(model);
        let closed = Event::TaskClosed {
            id: self.task,
            paid,
            refund,
            model,
        };
        state.record(EntityKind::Task, self.task, env, closed.clone());
        events.push(closed);
        events
    }
}

impl TaskClose {
    fn register_model(
        &self,
        state: &mut State,
        env: &Env,
        creator: crate::Address,
        model_hash: Digest,
        events: &mut Vec<Event>,
    ) -> u64 {
        let id = state
            .next_id(EntityKind::Model)
            .expect("validated: id available");
        state.insert_model(Model {
            id,
            owner: creator,
            model_hash,
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
            model_hash,
        };
        state.record(EntityKind::Model, id, env, event.clone());
        state.record(EntityKind::Task, self.task, env, event.clone());
        events.push(event);
        id
    }
}

impl Write for TaskClose {
    fn write(&self, buf: &mut impl BufMut) {
        self.task.write(buf);
        self.validation_salt.write(buf);
        self.validation_data.write(buf);
        self.parent.write(buf);
        write_list(&self.metrics, buf);
    }
}

impl EncodeSize for TaskClose {
    fn encode_size(&self) -> usize {
        8 + 64 + self.parent.encode_size() + list_size(&self.metrics)
    }
}

impl Read for TaskClose {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, cfg: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            task: u64::read_cfg(buf, &())?,
            validation_salt: Digest::read_cfg(buf, &())?,
            validation_data: Digest::read_cfg(buf, &())?,
            parent: Option::<u64>::read_cfg(buf, &())?,
            metrics: read_list(buf, cfg.model_metrics_max, &cfg.string_bytes_max)?,
        })
    }
}
