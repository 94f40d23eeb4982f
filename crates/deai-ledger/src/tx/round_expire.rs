//! `RoundExpire`: anyone closes a round that passed its deadline without a result, as failed.
//!
//! A coordinator that opens a round and never reports would otherwise hold the task for ever:
//! no new round opens and the creator cannot name another coordinator while a round is open.
//! Once the block height is above the round's [`crate::Round::deadline_height`] (its opening
//! height + `round_timeout_blocks`), any account may send `RoundExpire`; from then on the round
//! is closed (`Round::expired_height` set, `Round::is_open()` false): a `RoundResult` for it is
//! refused (`round_expired`), the creator may change the coordinator, and the next `RoundOpen`
//! takes the next round number. An expired round uses up one of the task's rounds, like an
//! aborted one.
//!
//! The round's ε and δ stay charged to the task and to every selected dataset: owners may
//! already have released masked updates, so privacy may have been spent. The transaction pays
//! nothing to anyone (the sender pays its fee as usual) and the coordinator forfeits only the
//! round; bonds that a stalled coordinator loses come with a later issue.
//!
//! Refusals: unknown task (`unknown_id`); a round never opened or one with a result
//! (`round_not_open`); a round already expired (`round_expired`); a block at or below the
//! deadline (`round_not_expired`).

use super::{Action, Env};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::{State, TaskStatus};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Close a task's open round as failed once its deadline has passed (any sender).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundExpire {
    /// The task.
    pub task: u64,
    /// The open round past its deadline.
    pub round: u32,
}

impl Action for RoundExpire {
    fn check(&self, _: &Params) -> Result<(), TxError> {
        Ok(())
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let t = state.task_checked(self.task)?;
        let not_open = TxError::RoundNotOpen {
            task: self.task,
            round: self.round,
        };
        let r = t.round(self.round).ok_or(not_open.clone())?;
        if let Some(expired_height) = r.expired_height {
            return Err(TxError::RoundExpired {
                task: self.task,
                round: self.round,
                expired_height,
            });
        }
        if !r.is_open() {
            return Err(not_open);
        }
        // An open round implies an open task (TaskCancel and TaskClose wait for it); checked
        // anyway so the invariant cannot be broken through here.
        if t.status != TaskStatus::Open {
            return Err(TxError::TaskNotOpen { id: self.task });
        }
        if env.height <= r.deadline_height {
            return Err(TxError::RoundNotExpired {
                task: self.task,
                round: self.round,
                deadline_height: r.deadline_height,
                height: env.height,
            });
        }
        Ok(())
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        let task = state.task_mut(self.task);
        let index = usize::try_from(self.round - 1).expect("validated: round >= 1 fits usize");
        let round = &mut task.round_log[index];
        round.expired_height = Some(env.height);
        let selected = round.selected.clone();
        let event = Event::RoundExpired {
            task: self.task,
            round: self.round,
        };
        state.record(EntityKind::Task, self.task, env, event.clone());
        for id in selected {
            state.record(EntityKind::Dataset, id, env, event.clone());
        }
        vec![event]
    }
}

impl Write for RoundExpire {
    fn write(&self, buf: &mut impl BufMut) {
        self.task.write(buf);
        self.round.write(buf);
    }
}

impl EncodeSize for RoundExpire {
    fn encode_size(&self) -> usize {
        8 + 4
    }
}

impl Read for RoundExpire {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, _: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            task: u64::read_cfg(buf, &())?,
            round: u32::read_cfg(buf, &())?,
        })
    }
}
