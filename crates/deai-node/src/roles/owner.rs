//! The data-owner role: holds local datasets (never uploaded), and answers a coordinator's
//! training requests only for rounds the ledger opened with one of its datasets selected, for
//! tasks its consent policy admits.
//!
//! Routes (every request signed by the task's coordinator, every answer signed by this node):
//! - `POST /v1/fed/invite`: JSON [`Invite`]; the answer is the owner's first secure-aggregation
//!   message (its key advert) as raw bytes. Before answering, the owner checks the ledger
//!   (consent, selection, the ε charged against its own accountant, the spec's σ against its
//!   policy's floor) and records the session durably: a second invite for the same task,
//!   round and dataset is refused (`409 session_used`), and every round secret is fresh OS
//!   randomness.
//! - `POST /v1/fed/step/{task}/{round}/{dataset}`: one server message in, the owner's next
//!   message out (204 when it has nothing to send).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::post,
};
use deai_learn::data::Dataset;
use deai_ledger::{Address, Task, TaskStatus};
use deai_secagg::client::ClientPhase;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::{
    RoleContext, ledger_view,
    sessions::{SessionError, SessionLog},
    signed_response,
};
use crate::{
    api::ApiError,
    fed::{self, OwnerRound, privacy},
};

/// A dataset this node holds, by its ledger id.
#[derive(Clone)]
pub struct LocalDataset {
    /// The id `DatasetRegister` gave it.
    pub id: u64,
    /// The samples (they never leave this node).
    pub data: Arc<Dataset>,
    /// BLAKE3 of the encoded samples: must equal the ledger's commitment for the dataset.
    pub commitment: deai_ledger::Digest,
}

/// A coordinator's request to join a round.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invite {
    /// The task.
    pub task: u64,
    /// The round (open on the ledger).
    pub round: u32,
    /// Which of this node's datasets is asked.
    pub dataset: u64,
    /// Base URL of a blob store holding the task's spec and the round's global model.
    pub blobs: String,
}

type RoundKey = (u64, u32, u64);

struct Running {
    coordinator: VerifyingKey,
    round: OwnerRound,
}

/// Test hook: `DEAI_TEST_CRASH_AT=<task>:<round>:<step>` arms a [`Fault`] with
/// [`FaultAction::Abort`]: a real crash mid-round, at a reproducible moment, for the
/// dropout-recovery tests.
pub const CRASH_ENV: &str = "DEAI_TEST_CRASH_AT";

/// The fault [`CRASH_ENV`] arms, if the node was built with the `test-hooks` feature (only
/// test builds are: a release binary never reads the variable).
#[cfg(feature = "test-hooks")]
fn crash_from_env() -> Option<Fault> {
    let v = std::env::var(CRASH_ENV).ok()?;
    let mut it = v.split(':').map(str::parse::<u64>);
    match (it.next(), it.next(), it.next()) {
        (Some(Ok(task)), Some(Ok(r)), Some(Ok(s))) => Some(Fault {
            task,
            from_round: u32::try_from(r).ok()?,
            step: usize::try_from(s).ok()?,
            action: FaultAction::Abort,
        }),
        _ => None,
    }
}

#[cfg(not(feature = "test-hooks"))]
fn crash_from_env() -> Option<Fault> {
    None
}

/// What an injected fault does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Abort the process (a crash).
    Abort,
    /// Stop answering until [`OwnerRole::go_online`] (the machine went away).
    Offline,
}

/// A dropout at a chosen step (0 = the invite, 1 = shares, 2 = masked input, 3 = consistency
/// signature, 4 = unmasking) of
/// the first round of `task` numbered `from_round` or later that this owner is invited to. An
/// `Abort` fires when the answer to `step` is ready but before it is sent (the process dies
/// mid-step); `Offline` lets that answer go out and answers nothing after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// The task.
    pub task: u64,
    /// The earliest round.
    pub from_round: u32,
    /// The step after which it fires.
    pub step: usize,
    /// What happens.
    pub action: FaultAction,
}

/// The owner role's state.
#[derive(Clone)]
pub struct OwnerRole {
    ctx: RoleContext,
    /// Grows while the node runs (datasets added to its config are picked up); never shrinks.
    datasets: Arc<std::sync::RwLock<BTreeMap<u64, LocalDataset>>>,
    /// Woken when datasets are added, so the announcer tells the coordinators at once.
    added: Arc<tokio::sync::Notify>,
    sessions: SessionLog,
    rounds: Arc<Mutex<BTreeMap<RoundKey, (usize, Running)>>>,
    fault: Arc<Mutex<Option<Fault>>>,
    /// Rounds in which a fault fired, as `(task, round)`.
    fired: Arc<Mutex<Vec<(u64, u32)>>>,
    /// Set to stop answering (a dropout without killing the process).
    gone: Arc<std::sync::atomic::AtomicBool>,
    /// Set to make this owner attack the model (robustness tests and `deai demo --attack`).
    attack: Arc<Mutex<Option<fed::attack::OwnerAttack>>>,
}

impl OwnerRole {
    /// An owner holding `datasets`, recording the rounds it joins in `sessions`.
    pub fn new(ctx: RoleContext, datasets: Vec<LocalDataset>, sessions: SessionLog) -> Self {
        Self {
            ctx,
            datasets: Arc::new(std::sync::RwLock::new(
                datasets.into_iter().map(|d| (d.id, d)).collect(),
            )),
            added: Arc::default(),
            sessions,
            rounds: Arc::new(Mutex::new(BTreeMap::new())),
            fault: Arc::new(Mutex::new(crash_from_env())),
            fired: Arc::default(),
            gone: Arc::default(),
            attack: Arc::default(),
        }
    }

    /// Makes every round this owner joins from now on attack the model (`None`: honest again).
    /// For robustness tests and `deai demo --attack`; the protocol cannot tell, which is the
    /// point (docs/robustness.md).
    pub fn set_attack(&self, attack: Option<fed::attack::OwnerAttack>) {
        if let Ok(mut a) = self.attack.lock() {
            *a = attack;
        }
    }

    /// This owner's ledger address (the key its datasets were registered under).
    pub fn address(&self) -> deai_ledger::Address {
        self.ctx.address()
    }

    /// A client signing as this owner, `timeout` per call.
    pub fn peer(&self, timeout: std::time::Duration) -> super::peer::Peer {
        self.ctx.peer(timeout)
    }

    /// Ids of the datasets held.
    pub fn dataset_ids(&self) -> Vec<u64> {
        self.held().keys().copied().collect()
    }

    /// The dataset `id`, if held.
    pub fn dataset(&self, id: u64) -> Option<LocalDataset> {
        self.held().get(&id).cloned()
    }

    /// Starts holding `datasets` (those whose id is already held are left as they are) and
    /// returns the ids newly held.
    pub fn add_datasets(&self, datasets: Vec<LocalDataset>) -> Vec<u64> {
        let mut held = self
            .datasets
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut new = Vec::new();
        for d in datasets {
            if let std::collections::btree_map::Entry::Vacant(e) = held.entry(d.id) {
                new.push(d.id);
                e.insert(d);
            }
        }
        drop(held);
        if !new.is_empty() {
            self.added.notify_one();
        }
        new
    }

    /// Resolves when datasets are next added.
    pub async fn datasets_added(&self) {
        self.added.notified().await;
    }

    fn held(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u64, LocalDataset>> {
        // A panic while holding the lock cannot leave the map half-updated (inserts only).
        self.datasets
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every round this node agreed to take part in, as `(task, round, dataset)` (from its
    /// durable session log, so restarts keep them).
    pub fn sessions(&self) -> Vec<super::sessions::SessionKey> {
        self.sessions.keys()
    }

    /// From now on, answer nothing (as if the machine went away).
    pub fn go_offline(&self) {
        self.gone.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Answer again after [`Self::go_offline`] or an `Offline` fault.
    pub fn go_online(&self) {
        self.gone.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Arms a fault (replacing any armed one); it fires once.
    pub fn inject(&self, fault: Fault) {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner()) = Some(fault);
    }

    /// `(task, round)` of every fault that fired.
    pub fn fired(&self) -> Vec<(u64, u32)> {
        self.fired.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The owner's routes.
    pub fn router(self) -> Router {
        Router::new()
            .route("/v1/fed/invite", post(invite))
            .route("/v1/fed/step/{task}/{round}/{dataset}", post(step))
            .with_state(self)
    }

    fn offline(&self) -> Result<(), ApiError> {
        if self.gone.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "offline",
                message: "this owner is offline".into(),
            });
        }
        Ok(())
    }

    fn maybe_fail(&self, key: RoundKey, step: usize) {
        let mut armed = self.fault.lock().unwrap_or_else(|p| p.into_inner());
        let Some(f) = *armed else { return };
        if f.task != key.0 || key.1 < f.from_round || f.step != step {
            return;
        }
        *armed = None;
        drop(armed);
        self.fired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((key.0, key.1));
        let what = match f.action {
            FaultAction::Abort => "injected crash: aborting",
            FaultAction::Offline => "injected dropout: offline",
        };
        tracing::warn!(task = key.0, round = key.1, step, "{what}");
        match f.action {
            FaultAction::Abort => std::process::abort(),
            FaultAction::Offline => self.go_offline(),
        }
    }
}

fn refuse(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::FORBIDDEN,
        code,
        message: message.into(),
    }
}

/// Whether this node's own reading of the ledger lets `dataset` train for `task`'s open round:
/// the round is open and selects it, the dataset is ours, not revoked, and its consent policy
/// admits the task now. The ledger enforced all of it at `RoundOpen`; an owner checks again
/// because it must not trust a coordinator's word about what the ledger says.
fn check_consent(
    task: &Task,
    round: u32,
    dataset: &deai_ledger::Dataset,
    me: &Address,
    height: u64,
) -> Result<(), ApiError> {
    if task.status != TaskStatus::Open {
        return Err(refuse(
            "task_not_open",
            format!("task {} is not open", task.id),
        ));
    }
    let open = task
        .round_log
        .last()
        .filter(|r| r.number == round && r.is_open())
        .ok_or_else(|| {
            refuse(
                "round_not_open",
                format!("round {round} of task {} is not the open round", task.id),
            )
        })?;
    if !open.selected.contains(&dataset.id) {
        return Err(refuse(
            "not_selected",
            format!("dataset {} is not selected in round {round}", dataset.id),
        ));
    }
    if dataset.owner != *me {
        return Err(refuse(
            "not_my_dataset",
            format!("dataset {} belongs to {}", dataset.id, dataset.owner),
        ));
    }
    if dataset.revoked {
        return Err(refuse(
            "consent_revoked",
            format!("consent for dataset {} is revoked", dataset.id),
        ));
    }
    let p = &dataset.policy;
    let creator_ok = p
        .creators
        .as_ref()
        .is_none_or(|c| c.contains(&task.creator));
    if !p.purposes.contains(&task.purpose)
        || !creator_ok
        || task.reward < p.reward_min
        || task.created_height >= p.expiry_height
        || height >= p.expiry_height
        || dataset.epsilon_spent > p.epsilon_max
    {
        return Err(refuse(
            "consent_mismatch",
            format!(
                "dataset {}'s consent policy does not admit task {}",
                dataset.id, task.id
            ),
        ));
    }
    Ok(())
}

fn session_used(k: RoundKey) -> ApiError {
    ApiError {
        status: StatusCode::CONFLICT,
        code: "session_used",
        message: SessionError::Used {
            task: k.0,
            round: k.1,
            dataset: k.2,
        }
        .to_string(),
    }
}

/// The owner's own privacy checks before it trains (see [`fed::privacy`]): the spec's σ meets
/// this dataset's floor, the task's ε schedule covers the accountant's figure for every
/// participation count, and the open round selected what the spec asks for.
fn check_privacy(
    spec: &fed::TaskSpec,
    task: &Task,
    round: &deai_ledger::Round,
    dataset: &deai_ledger::Dataset,
) -> Result<(), ApiError> {
    privacy::check_sigma_floor(spec, dataset.policy.noise_multiplier_min)
        .map_err(|e| refuse("sigma_below_policy", e.to_string()))?;
    privacy::check_round(spec, task, round).map_err(|e| {
        let code = match e {
            privacy::PrivacyError::SelectionSize { .. } => "selection_mismatch",
            _ => "epsilon_undercharged",
        };
        refuse(code, e.to_string())
    })
}

async fn invite(
    State(role): State<OwnerRole>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    role.offline()?;
    let (signed, inv) = role
        .ctx
        .authenticate_json::<Invite>(&headers, &uri, &body, "invite")?;
    // The coordinator chooses where the owner fetches from: checked before anything is asked.
    let blobs = crate::client::Client::peer(&inv.blobs)
        .map_err(|e| ApiError::bad_request("bad_blob_url", e.to_string()))?
        .with_answer_bytes_max(role.ctx.access.peer_answer_bytes_max);
    let view = ledger_view(&role.ctx, inv.task).await?;
    let task = &view.task;
    let coordinator = task.coordinator.unwrap_or(task.creator);
    if coordinator.0 != signed.key.to_bytes() {
        return Err(refuse(
            "not_coordinator",
            format!("the signer is not task {}'s coordinator", task.id),
        ));
    }
    // Only the task's coordinator takes a slot of the replay guard.
    let (signer, nonce) = role.ctx.admit(&signed)?;
    let k = (inv.task, inv.round, inv.dataset);
    if role.sessions.contains(k) {
        return Err(session_used(k));
    }
    let local = role.dataset(inv.dataset).ok_or_else(|| {
        ApiError::not_found(
            "dataset_not_held",
            format!("this node holds no dataset {}", inv.dataset),
        )
    })?;
    let dataset = view.dataset(&role.ctx, inv.dataset).await?;
    check_consent(task, inv.round, &dataset, &role.ctx.address(), view.height)?;
    if dataset.commitment != local.commitment {
        return Err(refuse(
            "commitment_mismatch",
            format!(
                "the data held for dataset {} does not match its ledger commitment",
                inv.dataset
            ),
        ));
    }
    let open = task
        .round_log
        .last()
        .cloned()
        .ok_or_else(|| refuse("round_not_open", "no round"))?;
    let spec_bytes = blobs.get_blob(&task.model_spec).await.map_err(|e| {
        refuse(
            "spec_unavailable",
            format!("task spec {}: {e}", task.model_spec),
        )
    })?;
    let spec =
        fed::TaskSpec::from_json(&spec_bytes).map_err(|e| refuse("bad_spec", e.to_string()))?;
    if spec.hash() != task.model_spec {
        return Err(refuse(
            "bad_spec",
            "spec bytes do not hash to the task's model_spec",
        ));
    }
    let global_bytes = blobs.get_blob(&open.global_model).await.map_err(|e| {
        refuse(
            "model_unavailable",
            format!("global model {}: {e}", open.global_model),
        )
    })?;
    check_privacy(&spec, task, &open, &dataset)?;
    let info = view.round_info(&role.ctx, &open).await?;
    // Recorded before any secret is drawn or any message leaves: a second invite for this
    // session is refused even after a restart (see `sessions`).
    role.sessions.begin(k).map_err(|e| match e {
        SessionError::Used { .. } => session_used(k),
        SessionError::Io { .. } => ApiError::internal(e.to_string()),
    })?;
    tracing::info!(
        task = inv.task,
        round = inv.round,
        dataset = inv.dataset,
        "invited: training on the local data"
    );
    let key: SigningKey = role.ctx.key.clone();
    let data = local.data.clone();
    let dataset_id = inv.dataset;
    let attack = role.attack.lock().ok().and_then(|a| *a);
    let started = tokio::task::spawn_blocking(move || {
        let global = fed::owner::load_global(&spec, &info, &global_bytes)?;
        // Every round secret (training order, noise, rounding, SecAgg keys and seeds) comes
        // from fresh OS randomness, never from the node's long-term key: a key file stolen
        // later recovers nothing of past rounds.
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, seed.as_mut());
        match attack {
            Some(a) => a.start_alone(&spec, &info, dataset_id, &data, &global, &key, *seed),
            None => OwnerRound::start(&spec, &info, dataset_id, &data, &global, &key, *seed),
        }
    })
    .await
    .map_err(|e| ApiError::internal(format!("training task failed: {e}")))?
    .map_err(|e| ApiError::bad_request("round_refused", e.to_string()))?;
    let mut round = started;
    let advert = round
        .poll_transmit()
        .ok_or_else(|| ApiError::internal("the SecAgg client queued no advert"))?;
    role.rounds
        .lock()
        .map_err(|_| ApiError::internal("round table poisoned"))?
        .insert(
            k,
            (
                0,
                Running {
                    coordinator: signer,
                    round,
                },
            ),
        );
    let resp = signed_response(&role.ctx, nonce, StatusCode::OK, advert);
    role.maybe_fail(k, 0);
    Ok(resp)
}

async fn step(
    State(role): State<OwnerRole>,
    Path((task, round, dataset)): Path<(u64, u32, u64)>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    role.offline()?;
    let signed = role.ctx.authenticate(&headers, &uri, &body)?;
    let k = (task, round, dataset);
    let (steps, reply, over, nonce) = {
        let mut rounds = role
            .rounds
            .lock()
            .map_err(|_| ApiError::internal("round table poisoned"))?;
        let (steps, running) = rounds.get_mut(&k).ok_or_else(|| {
            ApiError::not_found(
                "no_such_round",
                format!("no running round {round} of task {task} for dataset {dataset}"),
            )
        })?;
        if running.coordinator != signed.key {
            return Err(refuse(
                "not_coordinator",
                "the signer did not start this round",
            ));
        }
        // Only the round's coordinator takes a slot of the replay guard.
        let (_, nonce) = role.ctx.admit(&signed)?;
        let reply = match running.round.handle_server_msg(&body) {
            Ok(()) => running.round.poll_transmit(),
            Err(e) => {
                // The SecAgg client aborted: it will never answer again, so forget it now.
                rounds.remove(&k);
                return Err(ApiError::bad_request("bad_server_message", e.to_string()));
            }
        };
        *steps += 1;
        let over = matches!(
            running.round.phase(),
            ClientPhase::Done | ClientPhase::Aborted
        );
        (*steps, reply, over, nonce)
    };
    if over {
        // The round is over for this owner: drop its state, so its round secrets (SecAgg keys,
        // self seed, shares) are wiped now rather than kept until the process ends.
        if let Ok(mut rounds) = role.rounds.lock() {
            rounds.remove(&k);
        }
    }
    let resp = match reply {
        Some(bytes) => signed_response(&role.ctx, nonce, StatusCode::OK, bytes),
        None => signed_response(&role.ctx, nonce, StatusCode::NO_CONTENT, Vec::new()),
    };
    role.maybe_fail(k, steps);
    Ok(resp)
}

/// Answer of `GET /v1/fed/owner`: what this owner holds (ids only, never data).
#[derive(Debug, Serialize)]
pub struct OwnerInfo {
    /// Owner key.
    pub owner: String,
    /// Datasets held.
    pub datasets: Vec<u64>,
}

/// `GET /v1/fed/owner`.
pub async fn info(State(role): State<OwnerRole>) -> impl IntoResponse {
    Json(OwnerInfo {
        owner: role.ctx.address().to_string(),
        datasets: role.dataset_ids(),
    })
}
