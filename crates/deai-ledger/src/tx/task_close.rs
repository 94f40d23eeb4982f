//! `TaskClose`: the creator or coordinator closes a task after its last completed round. It
//! reveals the validation data (salt and blob hash, checked against the commitment made before
//! the first round), which lets anyone re-check the rounds' scores, and opens the challenge
//! window (`challenge_window_blocks`). When the window has passed and no challenge is pending
//! the task settles at the start of a block (at once, in this transaction, with a window of 0
//! and nothing pending): it pays the escrow to the owners of scored datasets in proportion to
//! their scores summed over the rounds no challenge invalidated, refunds the rest to the
//! creator, returns the coordinators' live bonds, and registers the final model (the new model
//! of the last valid round that recorded a result; expired rounds have none) with its lineage:
//! the task (whose round log lists every round) and the parent model.
//!
//! Payout: `pay_i = floor(escrow * score_i / Σ scores)` in exact integer arithmetic, paid in
//! ascending dataset order; the remainder (unscored share and rounding dust, all of it when
//! every score is 0) goes back to the creator, so `Σ pay_i + refund == escrow`.

use super::{Action, Env};
use crate::codec::{list_size, read_list, write_list};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::{Closing, Metric, State, Task, TaskStatus, share};
use crate::tx::validation_commitment;
use crate::types::Digest;
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Close a task: reveal validation data; rewards, refund and the final model follow the
/// challenge window.
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
            state.require_unblocked(crate::state::BlockTarget::Model(parent))?;
        }
        payouts(t)?;
        state.next_id(EntityKind::Model).map(|_| ())
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        let window = state.params().challenge_window_blocks;
        let settle_from = env.height.saturating_add(window);
        let task = state.task_mut(self.task);
        task.status = TaskStatus::Settling;
        task.closing = Some(Closing {
            closed_height: env.height,
            settle_from,
            parent: self.parent,
            metrics: self.metrics.clone(),
            tx_id: env.tx_id,
        });
        let pending = task.has_pending_challenge();
        let event = Event::TaskSettling {
            id: self.task,
            settle_from,
        };
        state.record(EntityKind::Task, self.task, env, event.clone());
        let mut events = vec![event];
        if window == 0 && !pending {
            events.extend(state.settle(self.task, env));
        }
        state.refresh_accountable(self.task);
        events
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
