//! The coordinator role: runs a task's rounds. For each round it opens the round on the ledger
//! (selection from the ledger's public seed, the DP spend of the round), invites the selected
//! owners, relays their secure-aggregation messages group by group, aggregates what the groups'
//! sums reveal (never an individual update), scores the groups on the validation set, stores the
//! round's blobs, records the result on the ledger, and at the end closes the task.
//!
//! Routes (signed requests):
//! - `POST /v1/fed/join`: an owner announces where its node answers for its datasets (signed by
//!   the datasets' owner key, checked against the ledger).
//! - `POST /v1/fed/assign`: a task's creator hands over the private inputs (validation salt and
//!   blob hash; the spec and validation blobs are PUT into this node's blob store first).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    response::Response,
    routing::post,
};
use deai_learn::data::Dataset;
use deai_ledger::{
    Address, DELTA_SCALE, Digest, METRIC_SCALE, Metric, Round, RoundOpen, Task, TaskClose,
    TaskStatus, TxBody, validation_commitment,
};
use ed25519_dalek::VerifyingKey;
use futures::future::join_all;
use serde::{Deserialize, Serialize};

use super::{RoleContext, ledger_view, peer::Peer, signed_response};
use crate::{
    api::{
        ApiError,
        types::{Directory, JoinAccepted},
    },
    blobs::BlobStore,
    client::Client,
    fed::{self, CoordinatorRound, TaskSpec, privacy, strategy::ServerState},
};

/// Most datasets one announcement names (each is looked up on the ledger).
pub const JOIN_DATASETS_MAX: usize = 64;

/// An owner's announcement.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Join {
    /// Datasets the signer owns and answers for.
    pub datasets: Vec<u64>,
    /// Base URL of the signer's node.
    pub url: String,
}

/// A creator's hand-over of a task's private inputs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    /// The task.
    pub task: u64,
    /// The salt of the validation commitment.
    pub salt: Digest,
    /// BLAKE3 of the validation blob (already in this node's blob store).
    pub validation: Digest,
}

/// Private inputs of a task this node coordinates.
#[derive(Clone)]
pub struct Assignment {
    /// The spec (its hash is the task's `model_spec`).
    pub spec: TaskSpec,
    /// The validation set.
    pub validation: Arc<Dataset>,
    /// Its blob hash.
    pub validation_hash: Digest,
    /// The commitment salt.
    pub salt: Digest,
}

#[derive(Default)]
struct Progress {
    /// The strategy's state after the last round this node recorded; rebuilt from the ledger and
    /// this node's blobs when absent (after a restart, or after a round that failed midway).
    server: Option<ServerState>,
    /// The global model after the last completed round.
    global: Option<(Digest, Vec<f32>)>,
    /// Accuracy and loss after the last completed round.
    last_eval: Option<(f64, f64)>,
}

/// What one round did.
#[derive(Debug, Clone, Serialize)]
pub struct RoundReport {
    /// Round number.
    pub round: u32,
    /// Selected datasets.
    pub selected: Vec<u64>,
    /// Datasets in the aggregate.
    pub survivors: Vec<u64>,
    /// Selected but absent from the aggregate.
    pub dropped: Vec<u64>,
    /// Whether a dropped owner's masks had to be recovered.
    pub dropout_recovered: bool,
    /// Validation accuracy of the new model.
    pub accuracy: f64,
    /// Validation loss of the new model.
    pub loss: f64,
    /// ε the round added to the task's, fixed point at `EPSILON_SCALE` (as the ledger's).
    pub epsilon: u64,
    /// The same as an exact decimal.
    pub epsilon_decimal: String,
    /// The task's ε spent after it, fixed point (the task's `epsilon_spent` then).
    pub epsilon_spent: u64,
    /// The same as an exact decimal.
    pub epsilon_spent_decimal: String,
    /// BLAKE3 of the new model.
    pub new_model: Digest,
    /// Wall time of the round (ms).
    pub ms: f64,
}

/// What closing a task did.
#[derive(Debug, Clone, Serialize)]
pub struct CloseReport {
    /// The registered model's id.
    pub model: u64,
    /// Rewards paid, by dataset.
    pub rewards: BTreeMap<u64, String>,
    /// Refunded to the creator.
    pub refund: String,
}

/// Why coordinating failed.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// The ledger could not be read or refused a transaction.
    #[error("ledger: {0}")]
    Ledger(String),
    /// The task cannot run (not open, not ours, no inputs...).
    #[error("task {task}: {reason}")]
    Task {
        /// The task.
        task: u64,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The round logic refused.
    #[error(transparent)]
    Fed(#[from] fed::FedError),
    /// The blob store failed.
    #[error("blob store: {0}")]
    Blobs(String),
    /// Too few datasets can still take part (consent revoked or expired, their own ε spent).
    #[error(
        "task {task}: round {round} cannot open: {eligible} datasets eligible, a round needs {needed} (group_size_min)"
    )]
    Exhausted {
        /// The task.
        task: u64,
        /// The round that could not open.
        round: u32,
        /// Datasets eligible.
        eligible: u32,
        /// Datasets a round needs.
        needed: u32,
    },
}

impl From<ApiError> for CoordError {
    fn from(e: ApiError) -> Self {
        Self::Ledger(format!("{}: {}", e.code, e.message))
    }
}

/// The coordinator role.
#[derive(Clone)]
pub struct CoordinatorRole {
    ctx: RoleContext,
    peer: Peer,
    blobs: BlobStore,
    /// Where owners fetch this node's blobs.
    public_url: Arc<Mutex<String>>,
    /// Dataset id → (owner node URL, owner key).
    directory: Arc<Mutex<BTreeMap<u64, (String, VerifyingKey)>>>,
    assignments: Arc<Mutex<BTreeMap<u64, Assignment>>>,
    progress: Arc<Mutex<BTreeMap<u64, Progress>>>,
    /// `(node base URL, blob)` already uploaded there: each round's blobs are published before
    /// the round is recorded, and the close publishes the task's blobs again only where missing.
    published: Arc<Mutex<std::collections::BTreeSet<(String, Digest)>>>,
    /// What [`Self::drive`] did with each task, for the node's status.
    driven: Arc<Mutex<BTreeMap<u64, DrivenTask>>>,
    /// Round → the claim it lies about (`[roles] coordinator_lies`; empty: honest).
    lies: Arc<Mutex<BTreeMap<u32, fed::lies::Lie>>>,
}

/// A task this node drives, as its status reports it.
#[derive(Debug, Clone, Serialize)]
pub struct DrivenTask {
    /// The task.
    pub task: u64,
    /// `assigned` (waiting for its turn), `running`, `closed` or `failed`.
    pub state: &'static str,
    /// Each round it completed.
    pub rounds: Vec<RoundReport>,
    /// The registered model once closed.
    pub model: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
}

impl DrivenTask {
    /// A task assigned and not started yet.
    fn assigned(task: u64) -> Self {
        Self {
            task,
            state: "assigned",
            rounds: Vec::new(),
            model: None,
            error: None,
        }
    }
}

/// What a coordinator is doing (`GET /v1/status` of its node).
#[derive(Debug, Clone, Serialize)]
pub struct CoordinatorStatus {
    /// Datasets whose owners joined.
    pub datasets_joined: Vec<u64>,
    /// Tasks assigned to it, driven or waiting.
    pub tasks: Vec<DrivenTask>,
}

use super::lock;

impl CoordinatorRole {
    /// A coordinator storing blobs in `blobs`; owners get `peer_timeout` per message before they
    /// count as dropped.
    pub fn new(ctx: RoleContext, blobs: BlobStore, peer_timeout: Duration) -> Self {
        let peer = ctx.peer(peer_timeout);
        Self {
            ctx,
            peer,
            blobs,
            public_url: Arc::default(),
            directory: Arc::default(),
            assignments: Arc::default(),
            progress: Arc::default(),
            published: Arc::default(),
            driven: Arc::default(),
            lies: Arc::default(),
        }
    }

    /// Makes it a dishonest coordinator, for challenge tests and demos only: in each round of
    /// `lies` (of every task) it records and publishes the false claim named there
    /// ([`fed::lies::tell`]), and owners train on from what it published. Empty makes it honest.
    pub fn set_lies(&self, lies: BTreeMap<u32, fed::lies::Lie>) {
        *lock(&self.lies) = lies;
    }

    /// Sets the URL owners fetch this node's blobs from (known once the listener is bound).
    pub fn set_public_url(&self, url: String) {
        *lock(&self.public_url) = url;
    }

    /// The coordinator's routes.
    pub fn router(self) -> Router {
        Router::new()
            .route("/v1/fed/join", post(join))
            .route("/v1/fed/assign", post(assign))
            .route("/v1/fed/directory", axum::routing::get(directory))
            .with_state(self)
    }

    /// Datasets whose owners announced a node.
    pub fn known_datasets(&self) -> Vec<u64> {
        lock(&self.directory).keys().copied().collect()
    }

    fn assignment(&self, task: u64) -> Result<Assignment, CoordError> {
        lock(&self.assignments)
            .get(&task)
            .cloned()
            .ok_or_else(|| CoordError::Task {
                task,
                reason: "no private inputs: the creator must POST /v1/fed/assign first".into(),
            })
    }

    fn put_blob(&self, bytes: &[u8]) -> Result<Digest, CoordError> {
        self.blobs
            .put(bytes)
            .map_err(|e| CoordError::Blobs(e.to_string()))
    }

    /// Accepts a task's private inputs after checking them against the ledger (used by the
    /// `assign` route, and directly when the creator runs the coordinator itself).
    pub async fn accept_assignment(&self, creator: &Address, a: &Assign) -> Result<(), ApiError> {
        let view = ledger_view(&self.ctx, a.task).await?;
        let task = &view.task;
        let forbid = |code: &'static str, message: String| ApiError {
            status: StatusCode::FORBIDDEN,
            code,
            message,
        };
        if task.creator != *creator {
            return Err(forbid(
                "not_creator",
                format!("only task {}'s creator can assign it", task.id),
            ));
        }
        if task.coordinator.unwrap_or(task.creator) != self.ctx.address() {
            return Err(forbid(
                "not_coordinator",
                format!("task {} names another coordinator", task.id),
            ));
        }
        if task.validation != Some(validation_commitment(&a.salt, &a.validation)) {
            return Err(ApiError::bad_request(
                "commitment_mismatch",
                "salt and validation hash do not match the task's validation commitment",
            ));
        }
        let spec_bytes = self
            .blobs
            .get(&task.model_spec)
            .ok()
            .flatten()
            .ok_or_else(|| {
                ApiError::bad_request(
                    "spec_missing",
                    format!("PUT the task spec blob {} first", task.model_spec),
                )
            })?;
        let spec = TaskSpec::from_json(&spec_bytes)
            .map_err(|e| ApiError::bad_request("bad_spec", e.to_string()))?;
        let val_bytes = self
            .blobs
            .get(&a.validation)
            .ok()
            .flatten()
            .ok_or_else(|| {
                ApiError::bad_request(
                    "validation_missing",
                    format!("PUT the validation blob {} first", a.validation),
                )
            })?;
        let validation = fed::data::decode(&val_bytes, &fed::data::DataLimits::default())
            .map_err(|e| ApiError::bad_request("bad_validation", e.to_string()))?;
        lock(&self.assignments).insert(
            a.task,
            Assignment {
                spec,
                validation: Arc::new(validation),
                validation_hash: a.validation,
                salt: a.salt,
            },
        );
        Ok(())
    }

    /// Runs the task's next round end to end: open, exchange, aggregate, record.
    pub async fn run_round(&self, task_id: u64) -> Result<RoundReport, CoordError> {
        let started = Instant::now();
        let a = self.assignment(task_id)?;
        let task = ledger_view(&self.ctx, task_id).await?.task;
        let (mut server, (global_hash, global)) = self.catch_up(&task, &a.spec)?;
        let opened = self.open_round(task_id, &a.spec, global_hash).await?;
        let view = ledger_view(&self.ctx, task_id).await?;
        let info = view.round_info(&self.ctx, &opened.round).await?;
        let mut round = CoordinatorRound::new(&a.spec, &info, global)?;
        self.exchange(&mut round, &info).await;
        let mut outcome = round.finish(&mut server, &a.validation)?;
        let lie = lock(&self.lies).get(&info.round).copied();
        if let Some(lie) = lie {
            let claim = fed::lies::tell(&a.spec, &mut outcome, lie)?;
            tracing::warn!(
                task = task_id,
                round = info.round,
                claim = ?claim,
                "recording a false claim (coordinator_lies)"
            );
        }
        for (hash, bytes) in
            outcome
                .masked
                .iter()
                .chain([&outcome.record, &outcome.aggregate, &outcome.new_model])
        {
            let stored = self.put_blob(bytes)?;
            if stored != *hash {
                return Err(CoordError::Blobs(format!("blob {hash} hashed to {stored}")));
            }
        }
        // Blobs first: once the ledger records the round anyone may challenge it, and the
        // validators re-check from their own stores (the blob exchange spreads what one holds).
        let mut published: Vec<Digest> = outcome.blobs().map(|(h, _)| *h).collect();
        published.extend([task.model_spec, info.global_model]);
        self.publish(&self.ctx.ledger, &published).await?;
        let result = outcome.round_result(task_id, info.round);
        super::send_tx(&self.ctx, TxBody::RoundResult(result)).await?;
        {
            let mut progress = lock(&self.progress);
            let p = progress.entry(task_id).or_default();
            p.server = Some(server);
            p.global = Some((outcome.new_model.0, outcome.new_weights.clone()));
            p.last_eval = Some((outcome.accuracy, outcome.loss));
        }
        let dropped: Vec<u64> = info
            .selected
            .iter()
            .filter(|d| !outcome.survivors.contains(d))
            .copied()
            .collect();
        Ok(RoundReport {
            round: info.round,
            selected: info.selected.clone(),
            dropout_recovered: outcome.recovered_groups() > 0,
            survivors: outcome.survivors,
            dropped,
            accuracy: outcome.accuracy,
            loss: outcome.loss,
            epsilon: opened.epsilon,
            epsilon_decimal: deai_ledger::epsilon_decimal(opened.epsilon),
            epsilon_spent: opened.epsilon_spent,
            epsilon_spent_decimal: deai_ledger::epsilon_decimal(opened.epsilon_spent),
            new_model: outcome.new_model.0,
            ms: started.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// The strategy's state and the model the next round trains from, as of the task's last
    /// recorded round: this node's cached state when it is current, else rebuilt by replaying
    /// the recorded rounds from this node's blobs (a coordinator that restarted, or whose last
    /// round failed after it stepped). Before any round: the spec's initial weights, stored so
    /// owners can fetch them by hash.
    fn catch_up(
        &self,
        task: &Task,
        spec: &TaskSpec,
    ) -> Result<(ServerState, (Digest, Vec<f32>)), CoordError> {
        let (cached, cached_global) = {
            let mut progress = lock(&self.progress);
            let p = progress.entry(task.id).or_default();
            (p.server.take(), p.global.clone())
        };
        let mut server = match cached {
            Some(s) => s,
            None => ServerState::new(spec).map_err(fed::FedError::from)?,
        };
        let kind = spec.model_kind().map_err(fed::FedError::from)?;
        let mut last_model = None;
        for r in &task.round_log {
            last_model = r.outcome.as_ref().map(|o| o.new_model).or(last_model);
            if r.number <= server.stepped() {
                continue;
            }
            match &r.outcome {
                _ if r.is_expired() => server.skip(r.number)?,
                Some(outcome) => {
                    let global = self.own_blob(&r.global_model)?;
                    let aggregate = self.own_blob(&outcome.aggregate)?;
                    let step = fed::strategy::RecordedStep {
                        round: r.number,
                        seed: &r.seed,
                        selected: &r.selected,
                        scores: &outcome.scores,
                        global: &global,
                        aggregate: &aggregate,
                    };
                    server.replay(spec, step)?;
                }
                // Still open: the ledger refuses the next `RoundOpen` and says why.
                None => break,
            }
        }
        let global = match last_model {
            None => {
                let init = spec.initial_weights().map_err(fed::FedError::from)?;
                let bytes = fed::weights::encode(&kind, &init).map_err(fed::FedError::from)?;
                (self.put_blob(&bytes)?, init)
            }
            Some(hash) => match cached_global {
                Some((h, w)) if h == hash => (h, w),
                _ => {
                    let bytes = self.own_blob(&hash)?;
                    let weights =
                        fed::weights::decode(&kind, &bytes).map_err(fed::FedError::from)?;
                    (hash, weights)
                }
            },
        };
        Ok((server, global))
    }

    /// A blob this node stored for one of its rounds.
    fn own_blob(&self, hash: &Digest) -> Result<Vec<u8>, CoordError> {
        self.blobs
            .get(hash)
            .map_err(|e| CoordError::Blobs(e.to_string()))?
            .ok_or_else(|| CoordError::Blobs(format!("blob {hash} of an earlier round is missing")))
    }

    /// Opens the next round on the ledger. The coordinator names only how many datasets the
    /// round takes (the spec's `datasets_per_round`, or all eligible if fewer); the ledger draws
    /// which from the beacon of the block that includes the transaction, and charges each its
    /// next step of the task's ε schedule, so there is nothing to price here and nothing a
    /// restarted or replacement coordinator could get wrong. Retries when a block in between
    /// shrank the eligible set.
    async fn open_round(
        &self,
        task_id: u64,
        spec: &TaskSpec,
        global: Digest,
    ) -> Result<Opened, CoordError> {
        let view = ledger_view(&self.ctx, task_id).await?;
        let task = &view.task;
        if task.status != TaskStatus::Open {
            return Err(CoordError::Task {
                task: task_id,
                reason: "not open".into(),
            });
        }
        let round = task.rounds_opened() + 1;
        let spent_before = task.epsilon_spent;
        let mut last_err = String::new();
        for _attempt in 0..8 {
            let eligible = self.eligible(task_id).await?;
            let count = privacy::selection_size(spec, eligible);
            if count < spec.group_size_min {
                return Err(CoordError::Exhausted {
                    task: task_id,
                    round,
                    eligible,
                    needed: spec.group_size_min,
                });
            }
            let tx = RoundOpen {
                task: task_id,
                round,
                global_model: global,
                count,
                secagg: fed::groups::secagg_params(count as usize, spec.group_size_min),
                delta: spec.delta_per_round().min(DELTA_SCALE - 1),
            };
            match super::send_tx(&self.ctx, TxBody::RoundOpen(tx)).await {
                Ok(_) => {
                    let task = ledger_view(&self.ctx, task_id).await?.task;
                    let opened = task
                        .round_log
                        .last()
                        .filter(|r| r.number == round)
                        .cloned()
                        .ok_or_else(|| CoordError::Ledger("opened round not found".into()))?;
                    return Ok(Opened {
                        round: opened,
                        epsilon: task.epsilon_spent.saturating_sub(spent_before),
                        epsilon_spent: task.epsilon_spent,
                    });
                }
                // A block in between made a dataset ineligible (a revocation, an expiry, its
                // own ε cap): count again.
                Err(e) if e.message.contains("too_few_eligible") => last_err = e.to_string(),
                Err(e) => return Err(e.into()),
            }
        }
        Err(CoordError::Ledger(format!(
            "round {round} of task {task_id} could not be opened: {last_err}"
        )))
    }

    /// How many datasets are eligible for `task`'s next round.
    async fn eligible(&self, task: u64) -> Result<u32, CoordError> {
        let e = self
            .ctx
            .ledger
            .eligible(task)
            .await
            .map_err(|e| CoordError::Ledger(e.to_string()))?;
        Ok(u32::try_from(e.eligible.len()).unwrap_or(u32::MAX))
    }

    /// Invites the selected owners and relays the secure-aggregation messages until every
    /// group finished or aborted. An owner that does not answer is simply absent from the next
    /// step: dropout recovery is the protocol's job.
    async fn exchange(&self, round: &mut CoordinatorRound, info: &fed::RoundInfo) {
        let directory = lock(&self.directory).clone();
        let blobs = lock(&self.public_url).clone();
        let invites = info.selected.iter().filter_map(|&d| {
            let (url, key) = directory.get(&d)?.clone();
            let body = serde_json::to_vec(&super::owner::Invite {
                task: info.task,
                round: info.round,
                dataset: d,
                blobs: blobs.clone(),
            })
            .ok()?;
            let peer = self.peer.clone();
            Some(async move {
                let reply = peer.post(&url, "/v1/fed/invite", body, Some(&key)).await;
                (d, reply)
            })
        });
        for (d, reply) in join_all(invites).await {
            match reply {
                Ok(bytes) => {
                    if let Err(e) = round.handle_client_msg(d, &bytes) {
                        tracing::warn!(dataset = d, error = %e, "advert refused");
                    }
                }
                Err(e) => tracing::warn!(dataset = d, error = %e, "owner did not join"),
            }
        }
        loop {
            match round.advance() {
                Ok(fed::Phase::Finished) | Err(_) => break,
                Ok(_) => {}
            }
            let outgoing: Vec<_> = std::iter::from_fn(|| round.poll_transmit()).collect();
            if outgoing.is_empty() {
                continue;
            }
            let calls = outgoing.into_iter().filter_map(|(d, msg)| {
                let (url, key) = directory.get(&d)?.clone();
                let path = format!("/v1/fed/step/{}/{}/{d}", info.task, info.round);
                let peer = self.peer.clone();
                Some(async move { (d, peer.post(&url, &path, msg, Some(&key)).await) })
            });
            for (d, reply) in join_all(calls).await {
                match reply {
                    Ok(bytes) if !bytes.is_empty() => {
                        if let Err(e) = round.handle_client_msg(d, &bytes) {
                            tracing::warn!(dataset = d, error = %e, "message refused");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(dataset = d, error = %e, "owner dropped"),
                }
            }
        }
    }

    /// Closes the task: reveals the validation data; once the challenge window has passed, the
    /// ledger pays rewards by the valid rounds' scores, refunds the rest and registers the final
    /// model, and the report says what it paid.
    pub async fn close_task(&self, task_id: u64) -> Result<CloseReport, CoordError> {
        let a = self.assignment(task_id)?;
        let (accuracy, loss) = lock(&self.progress)
            .get(&task_id)
            .and_then(|p| p.last_eval)
            .unwrap_or((0.0, f64::NAN));
        let metric = |name: &str, v: f64| Metric {
            name: name.into(),
            value: if v.is_finite() {
                (v * METRIC_SCALE as f64).round() as i64
            } else {
                0
            },
        };
        let tx = TaskClose {
            task: task_id,
            validation_salt: a.salt,
            validation_data: a.validation_hash,
            parent: None,
            metrics: vec![metric("accuracy", accuracy), metric("loss", loss)],
        };
        super::send_tx(&self.ctx, TxBody::TaskClose(tx)).await?;
        let task = self.settled(task_id).await?;
        let mut rewards = BTreeMap::new();
        let mut refund = 0u128;
        for entry in &task.history {
            match &entry.event {
                deai_ledger::Event::RewardPaid {
                    dataset, amount, ..
                } => {
                    rewards.insert(*dataset, amount.to_string());
                }
                deai_ledger::Event::TaskClosed { refund: r, .. } => refund = *r,
                _ => {}
            }
        }
        Ok(CloseReport {
            model: task.final_model.unwrap_or(0),
            rewards,
            refund: refund.to_string(),
        })
    }

    /// Task `task_id` once it has settled: a closed task pays only after its challenge window
    /// (and any challenge pending in it) has passed.
    async fn settled(&self, task_id: u64) -> Result<Task, CoordError> {
        let mut logged = false;
        loop {
            let task = ledger_view(&self.ctx, task_id).await?.task;
            match task.status {
                TaskStatus::Settling => {
                    if !logged {
                        tracing::info!(
                            task = task_id,
                            settle_from = task.closing.as_ref().map(|c| c.settle_from),
                            "task closed; rewards are paid once its challenge window has passed"
                        );
                        logged = true;
                    }
                    tokio::time::sleep(SETTLE_POLL).await;
                }
                _ => return Ok(task),
            }
        }
    }

    /// Runs one task to its end: every remaining round (stopping early if too few datasets
    /// can still take part), publication of its blobs to `publish`, and the close.
    pub async fn run_task(
        &self,
        task_id: u64,
        publish: &Client,
        mut on_round: impl FnMut(&RoundReport),
    ) -> Result<CloseReport, CoordError> {
        loop {
            let task = ledger_view(&self.ctx, task_id).await?.task;
            if task.status != TaskStatus::Open {
                return Err(CoordError::Task {
                    task: task_id,
                    reason: "is no longer open".into(),
                });
            }
            if task.rounds_opened() >= task.rounds {
                break;
            }
            match self.run_round(task_id).await {
                Ok(r) => on_round(&r),
                Err(CoordError::Exhausted { round, .. }) if round > 1 => {
                    tracing::warn!(
                        task = task_id,
                        round,
                        "too few datasets left: closing early"
                    );
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        // Blobs first: once the ledger says the task is closed, everything a verifier needs is
        // already where it will look.
        self.publish_task(publish, task_id).await?;
        let close = self.close_task(task_id).await?;
        Ok(close)
    }

    /// Runs every task assigned to this node, one after another, for as long as the node runs
    /// (what `deai node` does for a coordinator). A task that fails is logged and not retried.
    pub async fn drive(self, publish: Client) {
        let mut done = std::collections::BTreeSet::new();
        loop {
            let next = lock(&self.assignments)
                .keys()
                .copied()
                .find(|t| !done.contains(t));
            let Some(task) = next else {
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            };
            done.insert(task);
            tracing::info!(task, "task assigned: starting its rounds");
            self.record(task, |t| t.state = "running");
            let outcome = self
                .run_task(task, &publish, |r| {
                    tracing::info!(
                        task,
                        round = r.round,
                        survivors = r.survivors.len(),
                        accuracy = r.accuracy,
                        epsilon = r.epsilon_spent_decimal.as_str(),
                        "round done"
                    );
                    self.record(task, |t| t.rounds.push(r.clone()));
                })
                .await;
            match outcome {
                Ok(c) => {
                    tracing::info!(task, model = c.model, "task closed");
                    self.record(task, |t| {
                        t.state = "closed";
                        t.model = Some(c.model);
                    });
                }
                Err(e) => {
                    tracing::error!(task, error = %e, "task failed");
                    self.record(task, |t| {
                        t.state = "failed";
                        t.error = Some(e.to_string());
                    });
                }
            }
        }
    }

    fn record(&self, task: u64, f: impl FnOnce(&mut DrivenTask)) {
        let mut driven = lock(&self.driven);
        let t = driven
            .entry(task)
            .or_insert_with(|| DrivenTask::assigned(task));
        f(t);
    }

    /// What this coordinator is doing: who joined, and each assigned task's progress.
    pub fn status(&self) -> CoordinatorStatus {
        let driven = lock(&self.driven).clone();
        let tasks = lock(&self.assignments)
            .keys()
            .map(|&task| {
                driven
                    .get(&task)
                    .cloned()
                    .unwrap_or_else(|| DrivenTask::assigned(task))
            })
            .collect();
        CoordinatorStatus {
            datasets_joined: self.known_datasets(),
            tasks,
        }
    }

    /// Publishes every blob a verifier of `task_id` needs (spec, validation set, each round's
    /// models, masked updates, unmasking record and aggregate) to another node's store.
    pub async fn publish_task(&self, to: &Client, task_id: u64) -> Result<usize, CoordError> {
        let a = self.assignment(task_id)?;
        let task = ledger_view(&self.ctx, task_id).await?.task;
        let mut hashes = vec![task.model_spec, a.validation_hash];
        for r in &task.round_log {
            hashes.push(r.global_model);
            if let Some(o) = &r.outcome {
                hashes.extend(o.masked_updates.iter().copied());
                hashes.extend([o.unmasking, o.aggregate, o.new_model]);
            }
        }
        hashes.sort_unstable();
        hashes.dedup();
        self.publish(to, &hashes).await?;
        // The task is closing: nothing will ask to publish its blobs again.
        let base = to.base().to_string();
        let mut published = lock(&self.published);
        for h in &hashes {
            published.remove(&(base.clone(), *h));
        }
        Ok(hashes.len())
    }

    /// Publishes blobs to another node's store (e.g. the validator), so verifiers can fetch
    /// them after this node is gone; a blob this node already uploaded there is not sent again.
    pub async fn publish(&self, to: &Client, hashes: &[Digest]) -> Result<(), CoordError> {
        let base = to.base().to_string();
        let todo: Vec<Digest> = {
            let done = lock(&self.published);
            hashes
                .iter()
                .filter(|h| !done.contains(&(base.clone(), **h)))
                .copied()
                .collect()
        };
        if todo.is_empty() {
            return Ok(());
        }
        let blobs_err = |e: crate::client::ClientError| CoordError::Blobs(e.to_string());
        let (chain_id, recipient) = to.blob_recipient().await.map_err(blobs_err)?;
        for h in todo {
            let bytes = self
                .blobs
                .get(&h)
                .map_err(|e| CoordError::Blobs(e.to_string()))?
                .ok_or_else(|| CoordError::Blobs(format!("blob {h} missing")))?;
            to.put_blob_to(&self.ctx.key, &chain_id, &recipient, &bytes)
                .await
                .map_err(blobs_err)?;
            lock(&self.published).insert((base.clone(), h));
        }
        Ok(())
    }
}

struct Opened {
    round: Round,
    epsilon: u64,
    epsilon_spent: u64,
}

/// How often a closing coordinator looks whether its task has settled.
const SETTLE_POLL: Duration = Duration::from_millis(500);

async fn join(
    State(role): State<CoordinatorRole>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (signed, j) = role
        .ctx
        .authenticate_json::<Join>(&headers, &uri, &body, "join")?;
    let not_owner = |message: String| ApiError {
        status: StatusCode::FORBIDDEN,
        code: "not_owner",
        message,
    };
    // Only an owner of every dataset it names may join; anyone else never reaches the guard.
    if j.datasets.is_empty() || j.datasets.len() > JOIN_DATASETS_MAX {
        return Err(not_owner(format!(
            "a join names 1 to {JOIN_DATASETS_MAX} datasets the signer owns, not {}",
            j.datasets.len()
        )));
    }
    // This node will POST round messages there: the same rules as any peer-given URL.
    crate::client::check_peer_url(&j.url)
        .map_err(|e| ApiError::bad_request("bad_peer_url", e.to_string()))?;
    let mut accepted = Vec::new();
    for &d in &j.datasets {
        let ds: deai_ledger::Dataset = role
            .ctx
            .ledger
            .get(&format!("/v1/datasets/{d}"))
            .await
            .map_err(|e| match e {
                crate::client::ClientError::Api { status: 404, .. } => {
                    not_owner(format!("there is no dataset {d} on the ledger"))
                }
                e => ApiError::bad_request("unknown_dataset", format!("dataset {d}: {e}")),
            })?;
        if ds.owner.0 != signed.key.to_bytes() {
            return Err(not_owner(format!("dataset {d} is not the signer's")));
        }
        accepted.push(d);
    }
    let (signer, nonce) = role.ctx.admit(&signed)?;
    let mut dir = lock(&role.directory);
    for &d in &accepted {
        if dir.insert(d, (j.url.clone(), signer)).is_none() {
            tracing::info!(dataset = d, url = %j.url, "owner joined");
        }
    }
    drop(dir);
    let body = serde_json::to_vec(&JoinAccepted { accepted })
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(signed_response(&role.ctx, nonce, StatusCode::OK, body))
}

/// `GET /v1/fed/directory`: datasets whose owners joined, and tasks assigned (public facts).
async fn directory(State(role): State<CoordinatorRole>) -> axum::Json<Directory> {
    let tasks: Vec<u64> = lock(&role.assignments).keys().copied().collect();
    axum::Json(Directory {
        datasets: role.known_datasets(),
        tasks,
    })
}

async fn assign(
    State(role): State<CoordinatorRole>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (signed, a) = role
        .ctx
        .authenticate_json::<Assign>(&headers, &uri, &body, "assign")?;
    // Only the task's creator takes a slot of the replay guard.
    let task = ledger_view(&role.ctx, a.task).await?.task;
    if task.creator.0 != signed.key.to_bytes() {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "not_creator",
            message: format!("only task {}'s creator can assign it", task.id),
        });
    }
    let (signer, nonce) = role.ctx.admit(&signed)?;
    role.accept_assignment(&Address(signer.to_bytes()), &a)
        .await?;
    Ok(signed_response(
        &role.ctx,
        nonce,
        StatusCode::OK,
        b"{}".to_vec(),
    ))
}
