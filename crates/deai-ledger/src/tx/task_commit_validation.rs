//! `TaskCommitValidation`: before its first round, the creator commits to the task's held-out
//! validation data, `commitment = validation_commitment(salt, data_hash)` where `data_hash` is
//! the BLAKE3 of the validation blob. `TaskClose` reveals `salt` and `data_hash`; verifiers fetch
//! the blob by its hash. Committing before any round means the creator cannot pick a validation
//! set after seeing the updates. (TaskCreate has no such field; this keeps its encoding.)

use super::task_set_coordinator::require_creator_open;
use super::{Action, Env};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::State;
use crate::types::Digest;
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Domain of validation commitments.
const VALIDATION_DOMAIN: &[u8] = b"deai/validation/v1";

/// `BLAKE3("deai/validation/v1" || salt || data_hash)`: what `TaskCommitValidation` records and
/// `TaskClose` must reproduce. The salt keeps a guessable validation set hidden until the reveal.
pub fn validation_commitment(salt: &Digest, data_hash: &Digest) -> Digest {
    let mut h = blake3::Hasher::new();
    h.update(VALIDATION_DOMAIN);
    h.update(&salt.0);
    h.update(&data_hash.0);
    Digest(*h.finalize().as_bytes())
}

/// Commit to a task's validation data (creator only, open task, before its first round; a
/// later commit before the first round replaces the earlier one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCommitValidation {
    /// The task.
    pub task: u64,
    /// [`validation_commitment`] of the salt and the validation blob's hash.
    pub commitment: Digest,
}

impl Action for TaskCommitValidation {
    fn check(&self, _: &Params) -> Result<(), TxError> {
        Ok(())
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let t = state.task_checked(self.task)?;
        require_creator_open(t, &env.sender)?;
        if !t.round_log.is_empty() {
            return Err(TxError::InvalidField {
                field: "task".into(),
                reason: format!(
                    "task {} already opened {} round(s); validation must be committed before",
                    self.task,
                    t.round_log.len()
                ),
            });
        }
        Ok(())
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        state.task_mut(self.task).validation = Some(self.commitment);
        let event = Event::ValidationCommitted {
            task: self.task,
            commitment: self.commitment,
        };
        state.record(EntityKind::Task, self.task, env, event.clone());
        vec![event]
    }
}

impl Write for TaskCommitValidation {
    fn write(&self, buf: &mut impl BufMut) {
        self.task.write(buf);
        self.commitment.write(buf);
    }
}

impl EncodeSize for TaskCommitValidation {
    fn encode_size(&self) -> usize {
        8 + 32
    }
}

impl Read for TaskCommitValidation {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, _: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            task: u64::read_cfg(buf, &())?,
            commitment: Digest::read_cfg(buf, &())?,
        })
    }
}
