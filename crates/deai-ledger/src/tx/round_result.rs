//! `RoundResult`: the coordinator records the outcome of the open round and closes it: the
//! hash of every survivor's masked update, the survivors (a subset of the selected datasets),
//! the unmasking record, the aggregate, the new global model and each survivor's contribution
//! score. A round whose secure aggregation aborted (fewer than `t` survivors) is recorded with
//! no survivors, so the task can go on; otherwise at least `t` must survive. A round closed as
//! failed by `RoundExpire` takes no result (`round_expired`).

use super::round_open::distinct;
use super::{Action, Env};
use crate::codec::{list_size, read_list, write_list};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::{RoundOutcome, SCORE_SCALE, Score, State, TaskStatus, read_scores};
use crate::types::Digest;
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Record the result of a task's open round (coordinator only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundResult {
    /// The task.
    pub task: u64,
    /// The open round.
    pub round: u32,
    /// BLAKE3 of each survivor's masked update, in survivor order.
    pub masked_updates: Vec<Digest>,
    /// Datasets whose masked updates are in the sum, ascending.
    pub survivors: Vec<u64>,
    /// BLAKE3 of the unmasking record.
    pub unmasking: Digest,
    /// BLAKE3 of the aggregate.
    pub aggregate: Digest,
    /// BLAKE3 of the new global model.
    pub new_model: Digest,
    /// Scores of survivors, ascending by dataset, each `0..=SCORE_SCALE`.
    pub scores: Vec<Score>,
}

fn ascending(field: &str, ids: &[u64]) -> Result<(), TxError> {
    distinct(field, ids)?;
    if ids.windows(2).any(|w| w[0] > w[1]) {
        return Err(TxError::InvalidField {
            field: field.into(),
            reason: "datasets must be in ascending order".into(),
        });
    }
    Ok(())
}

impl RoundResult {
    /// What the round log records for this result, closed at `closed_height`.
    pub fn outcome(&self, closed_height: u64) -> RoundOutcome {
        RoundOutcome {
            closed_height,
            masked_updates: self.masked_updates.clone(),
            survivors: self.survivors.clone(),
            unmasking: self.unmasking,
            aggregate: self.aggregate,
            new_model: self.new_model,
            scores: self.scores.clone(),
        }
    }
}

impl Action for RoundResult {
    fn check(&self, params: &Params) -> Result<(), TxError> {
        let max = params.task_datasets_max as usize;
        TxError::limit("survivors", self.survivors.len(), max)?;
        TxError::limit("masked_updates", self.masked_updates.len(), max)?;
        TxError::limit("scores", self.scores.len(), max)?;
        if self.masked_updates.len() != self.survivors.len() {
            return Err(TxError::InvalidField {
                field: "masked_updates".into(),
                reason: format!(
                    "{} hashes for {} survivors",
                    self.masked_updates.len(),
                    self.survivors.len()
                ),
            });
        }
        ascending("survivors", &self.survivors)?;
        let scored: Vec<u64> = self.scores.iter().map(|s| s.dataset).collect();
        ascending("scores", &scored)?;
        if let Some(s) = self.scores.iter().find(|s| s.value > SCORE_SCALE) {
            return Err(TxError::InvalidField {
                field: "scores".into(),
                reason: format!(
                    "score {} of dataset {} above {SCORE_SCALE}",
                    s.value, s.dataset
                ),
            });
        }
        Ok(())
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let t = state.task_checked(self.task)?;
        if t.status != TaskStatus::Open {
            return Err(TxError::TaskNotOpen { id: self.task });
        }
        State::require_coordinator(t, &env.sender, false)?;
        if let Some(expired_height) = t.round(self.round).and_then(|r| r.expired_height) {
            return Err(TxError::RoundExpired {
                task: self.task,
                round: self.round,
                expired_height,
            });
        }
        let round =
            t.open_round()
                .filter(|r| r.number == self.round)
                .ok_or(TxError::RoundNotOpen {
                    task: self.task,
                    round: self.round,
                })?;
        if let Some(&id) = self
            .survivors
            .iter()
            .find(|id| round.selected.binary_search(id).is_err())
        {
            return Err(TxError::InvalidParticipant {
                dataset: id,
                field: "survivors".into(),
                reason: format!("not selected for round {}", self.round),
            });
        }
        let survivors = self.survivors.len();
        if survivors > 0 && survivors < round.secagg.t as usize {
            return Err(TxError::InvalidField {
                field: "survivors".into(),
                reason: format!(
                    "{survivors} survivors below threshold {} (an aborted round has none)",
                    round.secagg.t
                ),
            });
        }
        if let Some(s) = self
            .scores
            .iter()
            .find(|s| self.survivors.binary_search(&s.dataset).is_err())
        {
            return Err(TxError::InvalidParticipant {
                dataset: s.dataset,
                field: "scores".into(),
                reason: format!("did not survive round {}", self.round),
            });
        }
        Ok(())
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        let task = state.task_mut(self.task);
        let round = task
            .round_log
            .last_mut()
            .expect("validated: the round is open");
        round.outcome = Some(self.outcome(env.height));
        let event = Event::RoundClosed {
            task: self.task,
            round: self.round,
            new_model: self.new_model,
        };
        state.record(EntityKind::Task, self.task, env, event.clone());
        for &id in &self.survivors {
            state.record(EntityKind::Dataset, id, env, event.clone());
        }
        vec![event]
    }
}

impl Write for RoundResult {
    fn write(&self, buf: &mut impl BufMut) {
        self.task.write(buf);
        self.round.write(buf);
        write_list(&self.masked_updates, buf);
        write_list(&self.survivors, buf);
        self.unmasking.write(buf);
        self.aggregate.write(buf);
        self.new_model.write(buf);
        write_list(&self.scores, buf);
    }
}

impl EncodeSize for RoundResult {
    fn encode_size(&self) -> usize {
        8 + 4
            + list_size(&self.masked_updates)
            + list_size(&self.survivors)
            + 96
            + list_size(&self.scores)
    }
}

impl Read for RoundResult {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, cfg: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            task: u64::read_cfg(buf, &())?,
            round: u32::read_cfg(buf, &())?,
            masked_updates: read_list(buf, cfg.task_datasets_max, &())?,
            survivors: read_list(buf, cfg.task_datasets_max, &())?,
            unmasking: Digest::read_cfg(buf, &())?,
            aggregate: Digest::read_cfg(buf, &())?,
            new_model: Digest::read_cfg(buf, &())?,
            scores: read_scores(buf, cfg.task_datasets_max)?,
        })
    }
}
