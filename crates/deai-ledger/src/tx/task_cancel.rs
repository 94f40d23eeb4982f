//! `TaskCancel`: the creator cancels an open task none of whose rounds recorded a result (none
//! opened, or every one opened expired); its unspent escrow returns to the creator. Once a round
//! has a result only `TaskClose` ends a task, so the creator cannot take back a reward
//! contributors have started to earn. (A task whose rounds all expired has no scores, so a
//! close would refund the whole escrow too; without this, a task whose last round expired would
//! hold its escrow for ever.) Coordinator bonds locked by its expired rounds are returned.

use super::{Action, Env};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::{State, TaskStatus};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Cancel an open task (creator only) and refund its escrow to the creator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCancel {
    /// The task.
    pub task: u64,
}

impl Action for TaskCancel {
    fn check(&self, _: &Params) -> Result<(), TxError> {
        Ok(())
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
        // Once contributors have trained, the escrow is theirs to earn: only TaskClose ends it.
        if let Some(done) = t.last_completed_round() {
            return Err(TxError::InvalidField {
                field: "task".into(),
                reason: format!(
                    "task {} recorded the result of round {}; close it with TaskClose",
                    self.task, done.number
                ),
            });
        }
        if let Some(open) = t.open_round() {
            return Err(TxError::RoundStillOpen {
                task: self.task,
                round: open.number,
            });
        }
        Ok(())
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        let task = state.task_mut(self.task);
        let refund = std::mem::take(&mut task.escrow);
        task.status = TaskStatus::Cancelled;
        let creator = task.creator;
        state.credit(&creator, refund);
        let event = Event::TaskCancelled {
            id: self.task,
            refund,
        };
        state.record(EntityKind::Task, self.task, env, event.clone());
        // Only expired rounds, so nothing a challenge could name: the bonds go back.
        let mut events = vec![event];
        events.extend(state.release_bonds(self.task, env));
        events
    }
}

impl Write for TaskCancel {
    fn write(&self, buf: &mut impl BufMut) {
        self.task.write(buf);
    }
}

impl EncodeSize for TaskCancel {
    fn encode_size(&self) -> usize {
        8
    }
}

impl Read for TaskCancel {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, _: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            task: u64::read_cfg(buf, &())?,
        })
    }
}
