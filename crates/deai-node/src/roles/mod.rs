//! The roles a node plays besides (or instead of) validating: data owner ([`owner`]) and
//! coordinator ([`coordinator`]). Roles are configuration; a node that is not a validator reads
//! the ledger and submits transactions through a validator's HTTP API (its `upstream`).
//!
//! Role nodes talk over HTTP with signed messages ([`peer`], [`crate::auth`]). The round logic
//! itself is the pure [`crate::fed`] module; this layer only moves its bytes and reads the ledger.

pub mod coordinator;
pub mod owner;
pub mod peer;
pub mod provider;
pub mod serve;
pub mod sessions;
pub mod setup;

use std::sync::{Arc, Mutex};

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use deai_ledger::{Address, Dataset, Round, StateKey, Task};
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::{
    api::{ApiError, types::TxState},
    auth::{self, Authenticated, ReplayGuard},
    client::{Client, ClientError},
    config::AccessConfig,
    fed,
    light_client::{LightClient, ReadError},
};

/// What every role handler needs: this node's key, the chain it serves, the validator it reads.
#[derive(Clone)]
pub struct RoleContext {
    /// This node's ed25519 key (its ledger account too).
    pub key: SigningKey,
    /// The chain id every signature is bound to.
    pub chain_id: String,
    /// A validator's API.
    pub ledger: Client,
    /// Replays and stale messages are refused. Only requests a route authorized are recorded.
    pub guard: ReplayGuard,
    /// Who may write here and what is read from peers (`[access]`).
    pub access: Arc<AccessConfig>,
    /// When set, ledger reads are checked as a light client (certified roots, proofs) instead
    /// of trusting `ledger`; a forged answer is refused as `ledger_forged`.
    pub light: Option<LightClient>,
    /// Datasets' owner keys as read (and checked) once: a dataset's owner never changes, and a
    /// round names up to thousands of datasets whose owners every party needs. Shared by the
    /// identities of one node.
    owners: Arc<Mutex<std::collections::BTreeMap<u64, VerifyingKey>>>,
    /// Held while reading owners missing from `owners`: the many identities of one node invited
    /// to one round read each missing owner once between them, not once each.
    owners_fill: Arc<tokio::sync::Mutex<()>>,
}

/// Dataset owners read at once when a round names datasets not read before.
const OWNER_READS_IN_FLIGHT: usize = 32;

/// Locks `m`. A poisoned lock only means another request panicked midway; the maps behind these
/// locks stay consistent because every update is a single insert.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RoleContext {
    /// A context for `key` on the chain behind `ledger` (asks it for the chain id), with the
    /// default `[access]` limits.
    pub async fn connect(key: SigningKey, ledger: Client) -> Result<Self, ClientError> {
        let status = ledger.status().await?;
        let chain_id = status.chain_id;
        Ok(Self {
            key,
            chain_id,
            ledger,
            guard: ReplayGuard::default(),
            access: Arc::default(),
            light: None,
            owners: Arc::default(),
            owners_fill: Arc::default(),
        })
    }

    /// The same context, checking every ledger read against certified roots of the chain that
    /// `genesis` starts (refusing an upstream that serves another chain).
    pub async fn verifying(mut self, genesis: &deai_ledger::Genesis) -> anyhow::Result<Self> {
        let light = LightClient::new(self.ledger.clone(), genesis)?;
        light.check_chain().await?;
        self.light = Some(light);
        Ok(self)
    }

    /// The same context under the `[access]` limits of `access` (a fresh replay guard sized by
    /// `replay_senders_max`).
    pub fn with_access(mut self, access: &AccessConfig) -> Self {
        self.guard = ReplayGuard::default().with_senders_max(access.replay_senders_max);
        self.access = Arc::new(access.clone());
        self
    }

    /// The same context acting as another identity: `key` signs, and requests must name it
    /// as their recipient (an owner node hosting many owners gives each its own). The replay
    /// guard, the ledger and its light client are shared.
    pub fn as_identity(&self, key: SigningKey) -> Self {
        Self {
            key,
            ..self.clone()
        }
    }

    /// This node's ledger address.
    pub fn address(&self) -> Address {
        Address(self.key.verifying_key().to_bytes())
    }

    /// This node's public key: the recipient every signed request to it names.
    pub fn me(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// A client that signs requests with this node's key, `timeout` per call, reading answers
    /// up to `peer_answer_bytes_max`.
    pub fn peer(&self, timeout: std::time::Duration) -> peer::Peer {
        peer::Peer::new(self.key.clone(), self.chain_id.clone(), timeout)
            .with_answer_bytes_max(self.access.peer_answer_bytes_max)
    }

    /// Checks a signed POST for this node (signature, recipient, freshness, the path with its
    /// query) without recording it: the route checks who may ask, then [`Self::admit`]s it.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        uri: &axum::http::Uri,
        body: &[u8],
    ) -> Result<Authenticated, ApiError> {
        auth::authenticate(
            headers,
            &self.chain_id,
            &self.me(),
            "POST",
            auth::signed_path(uri),
            blake3::hash(body).as_bytes(),
            auth::now_micros(),
        )
        .map_err(ApiError::from)
    }

    /// [`Self::authenticate`], then the body as the JSON of `T` (`what` names it in a refusal).
    pub fn authenticate_json<T: serde::de::DeserializeOwned>(
        &self,
        headers: &HeaderMap,
        uri: &axum::http::Uri,
        body: &[u8],
        what: &str,
    ) -> Result<(Authenticated, T), ApiError> {
        let signed = self.authenticate(headers, uri, body)?;
        let parsed = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request("bad_json", format!("{what}: {e}")))?;
        Ok((signed, parsed))
    }

    /// Records a request the route authorized in the replay guard (a replay is refused); the
    /// signer and the nonce to sign the answer with.
    pub fn admit(&self, signed: &Authenticated) -> Result<(VerifyingKey, u64), ApiError> {
        let key = self.guard.admit(signed).map_err(ApiError::from)?;
        Ok((key, signed.nonce))
    }
}

/// A raw-bytes answer signed by this node and bound to the request's nonce.
pub fn signed_response(
    ctx: &RoleContext,
    request_nonce: u64,
    status: StatusCode,
    body: Vec<u8>,
) -> Response {
    let signed = auth::sign_response(
        &ctx.key,
        &ctx.chain_id,
        request_nonce,
        status.as_u16(),
        &body,
    );
    let mut resp = (status, body).into_response();
    signed.insert_into(resp.headers_mut());
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    resp
}

/// A light-client read that failed: a forgery by name, a missing entry as not found, the rest as
/// an unavailable ledger.
fn refused(e: ReadError, what: &str, id: u64) -> ApiError {
    match e {
        ReadError::Upstream(ClientError::Api { status: 404, .. }) => ApiError::not_found(
            not_found_code(what),
            format!("no {what} {id} on the ledger"),
        ),
        ReadError::Upstream(e) => upstream(e),
        e if e.is_forgery() => {
            tracing::warn!(%e, "refusing a forged ledger answer");
            ApiError {
                status: StatusCode::BAD_GATEWAY,
                code: "ledger_forged",
                message: format!("refusing the ledger's answer for {what} {id}: {e}"),
            }
        }
        e => ApiError {
            status: StatusCode::BAD_GATEWAY,
            code: "ledger_unavailable",
            message: format!("cannot read {what} {id} from the ledger: {e}"),
        },
    }
}

fn not_found_code(what: &str) -> &'static str {
    match what {
        "task" => "task_not_found",
        "dataset" => "dataset_not_found",
        "offer" => "offer_not_found",
        "channel" => "channel_not_found",
        _ => "not_found",
    }
}

fn upstream(e: ClientError) -> ApiError {
    ApiError {
        status: StatusCode::BAD_GATEWAY,
        code: "ledger_unavailable",
        message: format!("cannot read the ledger: {e}"),
    }
}

/// A task as the ledger shows it, with the height it was read at.
pub struct LedgerView {
    /// The task.
    pub task: Task,
    /// Finalized height of the read.
    pub height: u64,
}

/// Reads `task` (and the height) from the validator, checked as a light client when `ctx` is
/// [`RoleContext::verifying`].
pub async fn ledger_view(ctx: &RoleContext, task: u64) -> Result<LedgerView, ApiError> {
    if let Some(light) = &ctx.light {
        let v = light
            .read::<Task>(StateKey::Task(task))
            .await
            .map_err(|e| refused(e, "task", task))?;
        return Ok(LedgerView {
            task: v.entry,
            height: v.height,
        });
    }
    let ledger = &ctx.ledger;
    let status = ledger.status().await.map_err(upstream)?;
    let task: Task = ledger
        .get(&format!("/v1/tasks/{task}"))
        .await
        .map_err(|e| match e {
            ClientError::Api { status: 404, .. } => {
                ApiError::not_found("task_not_found", format!("no task {task} on the ledger"))
            }
            e => upstream(e),
        })?;
    Ok(LedgerView {
        task,
        height: status.height,
    })
}

/// Reads dataset `id` from the validator, checked as a light client when `ctx` is
/// [`RoleContext::verifying`].
pub async fn read_dataset(ctx: &RoleContext, id: u64) -> Result<Dataset, ApiError> {
    read_entry(ctx, StateKey::Dataset(id), "dataset").await
}

/// Reads the ledger entry under `key` (`what` names its kind, as in `/v1/{what}s/{id}`) from
/// the validator, checked as a light client when `ctx` is [`RoleContext::verifying`].
pub async fn read_entry<T>(ctx: &RoleContext, key: StateKey, what: &str) -> Result<T, ApiError>
where
    T: serde::de::DeserializeOwned + deai_ledger::Committed,
{
    let id = match key {
        StateKey::Dataset(id)
        | StateKey::Task(id)
        | StateKey::Model(id)
        | StateKey::Epoch(id)
        | StateKey::Offer(id)
        | StateKey::Channel(id)
        | StateKey::Proposal(id) => id,
        StateKey::Account(_) | StateKey::Meta | StateKey::Blocked(_) | StateKey::Delegations(_) => {
            return Err(ApiError::internal(format!("{key} is not a numbered entry")));
        }
    };
    if let Some(light) = &ctx.light {
        return light
            .read::<T>(key)
            .await
            .map(|v| v.entry)
            .map_err(|e| refused(e, what, id));
    }
    ctx.ledger
        .get(&format!("/v1/{what}s/{id}"))
        .await
        .map_err(|e| match e {
            ClientError::Api { status: 404, .. } => ApiError::not_found(
                not_found_code(what),
                format!("no {what} {id} on the ledger"),
            ),
            e => upstream(e),
        })
}

impl LedgerView {
    /// A dataset of the ledger ([`read_dataset`]).
    pub async fn dataset(&self, ctx: &RoleContext, id: u64) -> Result<Dataset, ApiError> {
        read_dataset(ctx, id).await
    }

    /// The public facts of `round` that both sides of a round build on.
    pub async fn round_info(
        &self,
        ctx: &RoleContext,
        round: &Round,
    ) -> Result<fed::RoundInfo, ApiError> {
        use futures::{StreamExt, TryStreamExt};
        let fill = ctx.owners_fill.lock().await;
        let unread: Vec<u64> = {
            let known = lock(&ctx.owners);
            round
                .selected
                .iter()
                .copied()
                .filter(|id| !known.contains_key(id))
                .collect()
        };
        let read: Vec<(u64, VerifyingKey)> = futures::stream::iter(unread)
            .map(|id| async move {
                let d = self.dataset(ctx, id).await?;
                let key = VerifyingKey::from_bytes(&d.owner.0).map_err(|e| {
                    ApiError::internal(format!("dataset {id}'s owner is not an ed25519 key: {e}"))
                })?;
                Ok::<_, ApiError>((id, key))
            })
            .buffer_unordered(OWNER_READS_IN_FLIGHT)
            .try_collect()
            .await?;
        let mut owners = lock(&ctx.owners);
        owners.extend(read);
        drop(fill);
        let identities = round
            .selected
            .iter()
            .filter_map(|id| owners.get(id).map(|k| (*id, *k)))
            .collect();
        drop(owners);
        Ok(fed::RoundInfo {
            task: self.task.id,
            round: round.number,
            seed: round.seed,
            global_model: round.global_model,
            selected: round.selected.clone(),
            identities,
        })
    }
}

/// A transaction the ledger applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Its id.
    pub id: deai_ledger::TxId,
    /// The height of its block.
    pub height: u64,
    /// Its receipt (events, fee).
    pub receipt: deai_ledger::Receipt,
}

/// Signs `body` with this node's key at its next nonce, submits it to the validator and waits
/// until it is final ([`Client::send`]). A transaction refused by the mempool or inside its
/// block is an error naming the ledger's reason.
pub async fn send_tx(ctx: &RoleContext, body: deai_ledger::TxBody) -> Result<Applied, ApiError> {
    let wait = Some(std::time::Duration::from_secs(30));
    let sent = ctx
        .ledger
        .send(&ctx.key, body, None, wait)
        .await
        .map_err(|e| match e {
            ClientError::Api { code, message, .. } => ApiError::bad_request(
                "tx_refused",
                format!("the validator refused the transaction: {code}: {message}"),
            ),
            e @ ClientError::Refused { .. } => ApiError::bad_request("tx_refused", e.to_string()),
            e => upstream(e),
        })?;
    match sent.state {
        Some(TxState::Finalized {
            applied: true,
            height,
            receipt,
            ..
        }) => Ok(Applied {
            id: sent.id,
            height,
            receipt,
        }),
        _ => Err(upstream(ClientError::Protocol {
            url: ctx.ledger.base().into(),
            reason: format!("transaction {} is not reported applied", sent.id),
        })),
    }
}
