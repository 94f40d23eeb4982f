//! `deai verify task`: re-verifies a closed task from the ledger and the blobs alone, as a node
//! that took no part in it. For every round it re-sums the masked updates with the recorded
//! unmasking, re-applies the strategy, checks the aggregate and model hashes and recomputes the
//! scores on the revealed validation set ([`crate::fed::verify_round`]); across rounds it checks
//! that each round trained from the previous round's model and recomputes the ε each round
//! should have been charged ([`crate::fed::privacy`]); at the end, that the registered
//! model is the last round's and that the rewards follow the recorded scores.

use std::collections::BTreeMap;

use deai_ledger::{
    Digest, Event, Params, SignedTx, Task, TaskStatus, TxBody, validation_commitment,
};
use ed25519_dalek::VerifyingKey;
use serde::Serialize;

use crate::{
    client::{Client, ClientError},
    fed::{self, RecordedRound, RoundInfo, TaskSpec},
};

/// The verdict on one round.
#[derive(Debug, Clone, Serialize)]
pub struct RoundVerdict {
    /// Round number.
    pub round: u32,
    /// Whether everything matched.
    pub ok: bool,
    /// What did not, in words.
    pub mismatches: Vec<String>,
    /// Whether an upheld challenge invalidated it on the ledger: it earned nothing and its
    /// model is not the task's, so a mismatch here was caught and paid for by the coordinator.
    pub invalidated: bool,
    /// The validation accuracy of the model the round produced, on the validation data the
    /// task revealed at its close (absent when the round has no model or it cannot be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
}

impl RoundVerdict {
    /// The verdict on round `round` of `task` given what did not match, reported to
    /// `on_round` first.
    fn new(
        task: &Task,
        round: u32,
        mismatches: Vec<String>,
        accuracy: Option<f64>,
        on_round: &mut impl FnMut(&Self),
    ) -> Self {
        let verdict = Self {
            round,
            ok: mismatches.is_empty(),
            mismatches,
            invalidated: task.round_invalid(round),
            accuracy,
        };
        on_round(&verdict);
        verdict
    }
}

/// The verdict on a task.
#[derive(Debug, Clone, Serialize)]
pub struct TaskVerdict {
    /// The task.
    pub task: u64,
    /// Whether every check passed, rounds an upheld challenge invalidated aside (the ledger
    /// already holds them against their coordinator).
    pub ok: bool,
    /// Rounds checked.
    pub rounds: Vec<RoundVerdict>,
    /// Problems not tied to one round (validation reveal, final model, rewards).
    pub task_mismatches: Vec<String>,
    /// Rounds that failed and that the ledger still counts, by number.
    pub failed_rounds: Vec<u32>,
    /// Rounds an upheld challenge invalidated, by number (whether or not they re-check).
    pub invalidated_rounds: Vec<u32>,
}

/// Why verification could not even start.
#[derive(Debug, thiserror::Error)]
pub enum VerifyTaskError {
    /// A node could not be asked.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The task is not in a state that can be verified.
    #[error("task {task}: {reason}")]
    Task {
        /// The task.
        task: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Reads the `TaskClose` transaction of `task` from the block that holds it: the validation
/// reveal (salt, data hash) is in the transaction, not in the state.
pub(super) async fn close_tx(
    ledger: &Client,
    task: &Task,
) -> Result<deai_ledger::TaskClose, VerifyTaskError> {
    let bad = |reason: String| VerifyTaskError::Task {
        task: task.id,
        reason,
    };
    let entry = task
        .history
        .iter()
        .find(|h| matches!(h.event, Event::TaskSettling { .. }))
        .ok_or_else(|| bad("no TaskSettling event (its TaskClose) in its history".into()))?;
    let block = ledger.block(entry.height).await?;
    let params = Params::default();
    for hex_tx in &block.txs {
        let Ok(bytes) = hex::decode(hex_tx) else {
            continue;
        };
        let Ok(tx) = SignedTx::decode(&bytes, &params) else {
            continue;
        };
        if tx.id() == entry.tx_id
            && let TxBody::TaskClose(close) = tx.tx.body
        {
            return Ok(close);
        }
    }
    Err(bad(format!(
        "block {} does not hold its TaskClose transaction {}",
        entry.height, entry.tx_id
    )))
}

/// The validation accuracy of the model blob `hash` (`None` when it is missing or does not
/// decode as the spec's model).
async fn model_accuracy(
    blobs: &Client,
    spec: &TaskSpec,
    hash: Digest,
    validation: &deai_learn::data::Dataset,
) -> Option<f64> {
    let bytes = fetch_all(blobs, [hash]).await.remove(&hash)?;
    let kind = spec.model_kind().ok()?;
    let weights = fed::weights::decode(&kind, &bytes).ok()?;
    Some(deai_learn::model::evaluate(&kind, &weights, validation).accuracy)
}

pub(super) async fn fetch_all(
    blobs: &Client,
    hashes: impl IntoIterator<Item = Digest>,
) -> BTreeMap<Digest, Vec<u8>> {
    let mut out = BTreeMap::new();
    for h in hashes {
        if out.contains_key(&h) {
            continue;
        }
        // A missing or lying blob is reported by the round check, which sees it absent.
        if let Ok(bytes) = blobs.get_blob(&h).await {
            out.insert(h, bytes);
        }
    }
    out
}

/// Verifies closed task `task_id`: ledger facts from `ledger`, blobs from `blobs`.
pub async fn verify_task(
    ledger: &Client,
    blobs: &Client,
    task_id: u64,
    mut on_round: impl FnMut(&RoundVerdict),
) -> Result<TaskVerdict, VerifyTaskError> {
    let task: Task = ledger.get(&format!("/v1/tasks/{task_id}")).await?;
    // A settling task is the one worth verifying: its rounds can still be challenged.
    if !matches!(task.status, TaskStatus::Closed | TaskStatus::Settling) {
        return Err(VerifyTaskError::Task {
            task: task_id,
            reason: "is not closed: its validation data is revealed only at TaskClose".into(),
        });
    }
    let mut task_mismatches = Vec::new();
    let close = close_tx(ledger, &task).await?;
    if task.validation
        != Some(validation_commitment(
            &close.validation_salt,
            &close.validation_data,
        ))
    {
        task_mismatches
            .push("validation reveal does not match the commitment made before round 1".into());
    }
    let fixed = fetch_all(blobs, [task.model_spec, close.validation_data]).await;
    let spec = fixed
        .get(&task.model_spec)
        .ok_or_else(|| VerifyTaskError::Task {
            task: task_id,
            reason: format!("task spec blob {} is not available", task.model_spec),
        })
        .and_then(|b| {
            TaskSpec::from_json(b).map_err(|e| VerifyTaskError::Task {
                task: task_id,
                reason: format!("task spec: {e}"),
            })
        })?;
    if spec.hash() != task.model_spec {
        task_mismatches.push("spec blob does not hash to the task's model_spec".into());
    }
    // The ε schedule the ledger charged from, against the accountant's figure from the spec,
    // and each round's size against the ledger's own eligible count (nothing declared by the
    // creator or the coordinator is trusted).
    if let Err(e) = fed::privacy::check_task(&spec, &task) {
        task_mismatches.push(format!("privacy accounting: {e}"));
    }
    let validation = fixed
        .get(&close.validation_data)
        .ok_or_else(|| VerifyTaskError::Task {
            task: task_id,
            reason: format!("validation blob {} is not available", close.validation_data),
        })
        .and_then(|b| {
            fed::data::decode(b, &fed::data::DataLimits::default()).map_err(|e| {
                VerifyTaskError::Task {
                    task: task_id,
                    reason: format!("validation blob: {e}"),
                }
            })
        })?;
    let initial = spec
        .model_kind()
        .and_then(|k| spec.initial_weights().map(|w| (k, w)))
        .ok()
        .and_then(|(k, w)| fed::weights::encode(&k, &w).ok())
        .map(|b| fed::weights::model_hash(&b));
    let mut rounds = Vec::new();
    let mut previous: Option<Digest> = initial;
    let mut rounds_checker = RoundChecker::new(ledger, blobs, &spec, &task)?;
    for r in &task.round_log {
        let mut mismatches = Vec::new();
        if previous.is_some_and(|p| p != r.global_model) {
            mismatches.push(format!(
                "trained from {}, but the previous model is {}",
                r.global_model,
                previous.map(|p| p.to_string()).unwrap_or_default()
            ));
        }
        if r.is_expired() {
            // Closed as failed by `RoundExpire`: no result to check, and the next round trains
            // from the same model. Its ε stays charged (checked above with the others).
            if let Err(e) = rounds_checker.server.skip(r.number) {
                mismatches.push(e.to_string());
            }
            rounds.push(RoundVerdict::new(
                &task,
                r.number,
                mismatches,
                None,
                &mut on_round,
            ));
            continue;
        }
        let Some(outcome) = &r.outcome else {
            mismatches.push("round never closed".into());
            rounds.push(RoundVerdict {
                round: r.number,
                ok: false,
                mismatches,
                invalidated: false,
                accuracy: None,
            });
            continue;
        };
        let (check, _) = rounds_checker.check(r, outcome, Some(&validation)).await?;
        mismatches.extend(check.mismatches.iter().map(|m| m.to_string()));
        previous = Some(outcome.new_model);
        let accuracy = model_accuracy(blobs, &spec, outcome.new_model, &validation).await;
        rounds.push(RoundVerdict::new(
            &task,
            r.number,
            mismatches,
            accuracy,
            &mut on_round,
        ));
    }
    check_close(&task, ledger, &mut task_mismatches).await?;
    let failed_rounds: Vec<u32> = rounds
        .iter()
        .filter(|r| !r.ok && !r.invalidated)
        .map(|r| r.round)
        .collect();
    let invalidated_rounds: Vec<u32> = rounds
        .iter()
        .filter(|r| r.invalidated)
        .map(|r| r.round)
        .collect();
    Ok(TaskVerdict {
        task: task_id,
        ok: failed_rounds.is_empty() && task_mismatches.is_empty(),
        rounds,
        task_mismatches,
        failed_rounds,
        invalidated_rounds,
    })
}

/// What re-checking a task's rounds one after another needs: where to read, the task and its
/// spec, the owners' keys met so far, and the strategy's state stepped through the rounds.
pub(super) struct RoundChecker<'a> {
    pub(super) ledger: &'a Client,
    pub(super) blobs: &'a Client,
    pub(super) spec: &'a TaskSpec,
    pub(super) task: &'a Task,
    pub(super) owners: BTreeMap<u64, VerifyingKey>,
    pub(super) server: fed::strategy::ServerState,
}

impl<'a> RoundChecker<'a> {
    /// Before round 1. One strategy state serves the whole task: a server optimiser's step
    /// depends on every round before.
    pub(super) fn new(
        ledger: &'a Client,
        blobs: &'a Client,
        spec: &'a TaskSpec,
        task: &'a Task,
    ) -> Result<Self, VerifyTaskError> {
        let server = fed::strategy::ServerState::new(spec).map_err(|e| VerifyTaskError::Task {
            task: task.id,
            reason: format!("task spec: {e}"),
        })?;
        Ok(Self {
            ledger,
            blobs,
            spec,
            task,
            owners: BTreeMap::new(),
            server,
        })
    }

    /// Re-checks round `r` (which has `outcome`) from its blobs, stepping the strategy's state;
    /// scores are checked only with `validation`.
    pub(super) async fn check(
        &mut self,
        r: &deai_ledger::Round,
        outcome: &deai_ledger::RoundOutcome,
        validation: Option<&deai_learn::data::Dataset>,
    ) -> Result<(fed::RoundCheck, RoundInfo), VerifyTaskError> {
        let info = self.info(r).await?;
        let recorded = RecordedRound::from(outcome);
        let store = fetch_all(
            self.blobs,
            recorded.masked_updates.iter().copied().chain([
                recorded.unmasking,
                recorded.aggregate,
                recorded.new_model,
                r.global_model,
            ]),
        )
        .await;
        let fetch = |h: &Digest| store.get(h).cloned();
        let check = fed::check_round(
            self.spec,
            &info,
            &recorded,
            &fetch,
            validation,
            &mut self.server,
        );
        Ok((check, info))
    }

    /// Round `r`'s public facts, with its selected owners' keys read from the ledger (once per
    /// owner for the task).
    pub(super) async fn info(
        &mut self,
        r: &deai_ledger::Round,
    ) -> Result<RoundInfo, VerifyTaskError> {
        for &d in &r.selected {
            if let std::collections::btree_map::Entry::Vacant(e) = self.owners.entry(d) {
                let ds: deai_ledger::Dataset =
                    self.ledger.get(&format!("/v1/datasets/{d}")).await?;
                if let Ok(k) = VerifyingKey::from_bytes(&ds.owner.0) {
                    e.insert(k);
                }
            }
        }
        let owners = &self.owners;
        let info = RoundInfo {
            task: self.task.id,
            round: r.number,
            seed: r.seed,
            global_model: r.global_model,
            selected: r.selected.clone(),
            identities: r
                .selected
                .iter()
                .filter_map(|d| owners.get(d).map(|k| (*d, *k)))
                .collect(),
        };
        Ok(info)
    }
}

/// The registered model is the last valid round's, and each payout is
/// `floor(escrow · score_i / Σ scores)` of the valid rounds' scores, `escrow` being the reward
/// plus what upheld challenges slashed into it. A settling task has paid nothing yet.
async fn check_close(
    task: &Task,
    ledger: &Client,
    out: &mut Vec<String>,
) -> Result<(), VerifyTaskError> {
    if task.status == TaskStatus::Settling {
        return Ok(());
    }
    let last_model = task
        .last_valid_round()
        .and_then(|r| r.outcome.as_ref())
        .map(|o| o.new_model);
    if let Some(id) = task.final_model {
        let model: deai_ledger::Model = ledger.get(&format!("/v1/models/{id}")).await?;
        if Some(model.model_hash) != last_model {
            out.push(format!(
                "registered model {id} has hash {}, the last round produced {}",
                model.model_hash,
                last_model.map(|m| m.to_string()).unwrap_or_default()
            ));
        }
    } else if last_model.is_some() {
        out.push("no final model registered".into());
    }
    let totals = task.score_totals();
    let sum: u128 = totals.values().sum();
    let mut paid: BTreeMap<u64, u128> = BTreeMap::new();
    let mut escrow = task.reward;
    for h in &task.history {
        match &h.event {
            Event::RewardPaid {
                dataset, amount, ..
            } => *paid.entry(*dataset).or_default() += *amount,
            Event::ChallengeResolved { to_escrow, .. } => escrow += *to_escrow,
            _ => {}
        }
    }
    for (d, score) in &totals {
        let expected = if sum == 0 {
            0
        } else {
            mul_div(escrow, *score, sum)
        };
        let got = paid.get(d).copied().unwrap_or(0);
        if got != expected {
            out.push(format!(
                "dataset {d} was paid {got}, its scores give {expected}"
            ));
        }
    }
    Ok(())
}

/// `floor(a · b / c)` without overflow for the ranges on the ledger (reward < 2^128, scores
/// small): splits `a` so no intermediate product exceeds u128.
fn mul_div(a: u128, b: u128, c: u128) -> u128 {
    let (q, r) = (a / c, a % c);
    q * b + r * b / c
}
