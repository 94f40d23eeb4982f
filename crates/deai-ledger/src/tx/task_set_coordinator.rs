//! `TaskSetCoordinator`: the creator of an open task names the address that runs its rounds
//! (`RoundOpen`, `RoundResult`). Without one, the creator is the coordinator. May be changed
//! between rounds, never while a round is open (the open round's result comes from whoever
//! opened it).

use super::{Action, Env};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::{State, Task, TaskStatus};
use crate::types::Address;
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Designate a task's coordinator (creator only, open task, no round open).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSetCoordinator {
    /// The task.
    pub task: u64,
    /// The address that will open and close rounds.
    pub coordinator: Address,
}

/// Err unless `sender` created `task` and the task is open.
pub(super) fn require_creator_open(task: &Task, sender: &Address) -> Result<(), TxError> {
    if task.creator != *sender {
        return Err(TxError::NotOwner {
            kind: EntityKind::Task,
            id: task.id,
            owner: task.creator,
            sender: *sender,
        });
    }
    if task.status != TaskStatus::Open {
        return Err(TxError::TaskNotOpen { id: task.id });
    }
    Ok(())
}

impl Action for TaskSetCoordinator {
    fn check(&self, _: &Params) -> Result<(), TxError> {
        Ok(())
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let t = state.task_checked(self.task)?;
        require_creator_open(t, &env.sender)?;
        if let Some(r) = t.open_round() {
            return Err(TxError::RoundStillOpen {
                task: self.task,
                round: r.number,
            });
        }
        Ok(())
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        state.task_mut(self.task).coordinator = Some(self.coordinator);
        let event = Event::CoordinatorSet {
            task: self.task,
            coordinator: self.coordinator,
        };
        state.record(EntityKind::Task, self.task, env, event.clone());
        vec![event]
    }
}

impl Write for TaskSetCoordinator {
    fn write(&self, buf: &mut impl BufMut) {
        self.task.write(buf);
        self.coordinator.write(buf);
    }
}

impl EncodeSize for TaskSetCoordinator {
    fn encode_size(&self) -> usize {
        8 + 32
    }
}

impl Read for TaskSetCoordinator {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, _: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            task: u64::read_cfg(buf, &())?,
            coordinator: Address::read_cfg(buf, &())?,
        })
    }
}
