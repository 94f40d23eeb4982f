//! The provider role: answers paid queries for the offers whose provider is this node's key
//! (`[roles.provider]`), and claims what they earned.
//!
//! `POST /v1/infer/{offer}` carries one or more inputs and the payer's cumulative voucher
//! ([`wire`]). The provider checks the voucher against the channel as the ledger recorded it
//! (open, paying this offer, not near expiry, within the deposit: [`deai_ledger::Channel::voucher_terms`]),
//! its signature only when it is a voucher it has not seen, and that it covers every query the
//! channel was answered so far plus this request's. A new voucher is written to the channel log
//! ([`journal`]) before the answer leaves. It runs the integer engine and answers the outputs
//! with their sequences; each answered receipt's leaf joins the channel's pending batch, which
//! is signed with one signature ([`deai_ledger::SignedLeaves`]) and sent with the answer that
//! brings a new voucher, asks for it, or fills `receipt_interval`. A request without a good
//! voucher gets 402 with a code naming what was wrong. `GET /v1/infer/{offer}` says what the
//! offer takes (input length, price, model hash) and the model blob is served from this node's
//! blob store, so anyone can re-execute an answer.
//!
//! The claim loop ([`claims`]) follows the chain's height, refreshes the offers served, brings
//! the log up to date every `sync_ms` and redeems each channel's highest voucher before the
//! channel expires.
//!
//! Threat model: the payer may send anything (no voucher, a forged or replayed one, one for
//! another channel or offer, a lower amount, more than the deposit, inputs of the wrong
//! length): each is refused before any work is done. The provider trusts its upstream's
//! channel reads, or checks them as a light client when the node is given the genesis.

mod claims;
pub mod client;
pub mod journal;
pub mod wire;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use deai_infer::{Input, Output, QuantModel};
use deai_ledger::{
    Channel, Digest, Limits, Offer, OfferStatus, QueryReceipt, SignedLeaves, SignedVoucher,
    StateKey, TxError, payment::RECEIPT_BATCH_MAX,
};
use serde::Serialize;

use self::journal::{Journal, Paid};
use super::RoleContext;
use crate::{api::ApiError, blobs::BlobStore, config::ProviderConfig};

/// An offer this node serves, with its decoded model.
struct Served {
    offer: Offer,
    model: Arc<QuantModel>,
}

/// A channel as the ledger showed it last, and what this node was paid on it.
struct ChannelEntry {
    ledger: Option<Channel>,
    paid: Paid,
    /// Sequences below this are reserved in the log: a restarted provider starts here, so no
    /// sequence names two answers.
    reserved: u64,
    /// Leaves of the receipts answered and not signed yet.
    pending: Vec<Digest>,
    /// The log's last line for the channel is behind `paid`.
    dirty: bool,
}

impl ChannelEntry {
    fn new(paid: Paid) -> Self {
        Self {
            ledger: None,
            reserved: paid.next_sequence,
            paid,
            pending: Vec::new(),
            dirty: false,
        }
    }
}

/// Sequences reserved in the log at a time: one log line per this many queries of a channel.
const SEQUENCE_RESERVE: u64 = 1 << 16;

/// What a checked voucher bought.
struct Charged {
    /// Sequence of the request's first answer.
    first: u64,
    /// What the channel has spent with these queries.
    spent: u128,
    /// The voucher is higher than any before it.
    new_voucher: bool,
}

/// The provider role (cheap to clone; clones share the state).
#[derive(Clone)]
pub struct ProviderRole {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: RoleContext,
    cfg: ProviderConfig,
    blobs: BlobStore,
    limits: Limits,
    journal: Journal,
    offers: RwLock<HashMap<u64, Arc<Served>>>,
    channels: Mutex<BTreeMap<u64, ChannelEntry>>,
    /// The chain's finalized height as last read.
    height: AtomicU64,
    /// Queries answered (drives `wrong_answer_every`).
    answered: AtomicU64,
    /// Serve without payment (the benchmark's baseline; never from configuration).
    free: bool,
}

/// What `GET /v1/infer/{offer}` tells a client.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct OfferInfo {
    /// The offer.
    pub offer: u64,
    /// The provider's address.
    pub provider: String,
    /// BLAKE3 of the quantized model blob (fetch it from this node's `/v1/blobs/{hash}`).
    pub model_hash: Digest,
    /// The architecture, e.g. `mlp 64-128-10`.
    pub arch: String,
    /// Bytes of one input.
    pub input_len: usize,
    /// Largest value of an input byte.
    pub input_max: u8,
    /// Price of one query, base units (decimal string).
    #[serde(with = "deai_ledger::amount")]
    pub price_per_query: u128,
    /// Most queries per request.
    pub batch_max: u32,
}

impl ProviderRole {
    /// The role for `ctx`'s key, keeping its channel log in `state_dir` and its models in
    /// `blobs`.
    pub async fn open(
        ctx: RoleContext,
        cfg: ProviderConfig,
        blobs: BlobStore,
        state_dir: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let genesis: deai_ledger::Genesis = ctx
            .ledger
            .get("/v1/genesis")
            .await
            .map_err(|e| anyhow::anyhow!("provider: cannot read the chain's genesis: {e}"))?;
        if cfg.batch_max == 0 || cfg.batch_max > RECEIPT_BATCH_MAX {
            anyhow::bail!(
                "[roles.provider] batch_max is {}; it must be 1 to {RECEIPT_BATCH_MAX}",
                cfg.batch_max
            );
        }
        if cfg.receipt_interval == 0 || cfg.receipt_interval > RECEIPT_BATCH_MAX {
            anyhow::bail!(
                "[roles.provider] receipt_interval is {}; it must be 1 to {RECEIPT_BATCH_MAX}",
                cfg.receipt_interval
            );
        }
        let limits = genesis.params.limits();
        let (journal, paid) = Journal::open(state_dir, &genesis.params)?;
        let channels = paid
            .into_iter()
            .map(|(id, paid)| (id, ChannelEntry::new(paid)))
            .collect();
        let height = ctx.ledger.status().await.map(|s| s.height).unwrap_or(0);
        Ok(Self {
            inner: Arc::new(Inner {
                ctx,
                cfg,
                blobs,
                limits,
                journal,
                offers: RwLock::default(),
                channels: Mutex::new(channels),
                height: AtomicU64::new(height),
                answered: AtomicU64::new(0),
                free: false,
            }),
        })
    }

    /// The same role answering without vouchers or receipts: the baseline `deai bench infer`
    /// compares paid queries with. Only a program can ask for it; no configuration does.
    pub fn without_payment(self) -> Self {
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|_| {
            panic!("without_payment is called on a fresh role, before it is shared")
        });
        Self {
            inner: Arc::new(Inner {
                free: true,
                ..inner
            }),
        }
    }

    /// The routes: `POST` and `GET /v1/infer/{offer}`.
    pub fn router(self) -> Router {
        Router::new()
            .route("/v1/infer/{offer}", get(info).post(query))
            .with_state(self)
    }

    /// Starts the claim loop and the log's sync loop (see [`claims`]).
    pub fn spawn_claims(&self) -> tokio::task::JoinHandle<()> {
        let (claims, sync) = (self.clone(), self.clone());
        tokio::spawn(async move {
            tokio::join!(claims::run(claims), claims::sync(sync));
        })
    }

    /// Writes the log's line of every channel that spent since its last one, then syncs the
    /// log to disk (every `sync_ms`, before a claim, and when the node stops).
    pub fn flush_journal(&self) {
        let journal = &self.inner.journal;
        let mut channels = self.lock_channels();
        for (id, e) in channels.iter_mut().filter(|(_, e)| e.dirty) {
            match journal.record(*id, &e.paid, e.reserved, false) {
                Ok(()) => e.dirty = false,
                Err(err) => tracing::error!(error = %err, "provider: cannot write the channel log"),
            }
        }
        drop(channels);
        if let Err(e) = journal.sync() {
            tracing::error!(error = %e, "provider: cannot sync the channel log");
        }
    }

    /// What the channel has paid as this node records it (for tests and status).
    pub fn paid(&self, channel: u64) -> Option<Paid> {
        self.lock_channels().get(&channel).map(|e| e.paid.clone())
    }

    fn lock_channels(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, ChannelEntry>> {
        self.inner
            .channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The served offer `id`, reading it (and its model) on first use.
    async fn served(&self, id: u64) -> Result<Arc<Served>, ApiError> {
        if let Some(s) = self.cached_offer(id) {
            return Ok(s);
        }
        let offer: Offer = super::read_entry(&self.inner.ctx, StateKey::Offer(id), "offer").await?;
        self.admit_offer(offer).await
    }

    fn cached_offer(&self, id: u64) -> Option<Arc<Served>> {
        let offers = self.inner.offers.read().unwrap_or_else(|p| p.into_inner());
        offers.get(&id).cloned()
    }

    /// Checks that `offer` is this node's and loads its model (from the blob store, else the
    /// upstream's), replacing what was cached for it.
    async fn admit_offer(&self, offer: Offer) -> Result<Arc<Served>, ApiError> {
        let id = offer.id;
        if offer.provider != self.inner.ctx.address() {
            return Err(ApiError::not_found(
                "offer_not_served",
                format!(
                    "offer {id} is provided by {}, not by this node ({})",
                    offer.provider,
                    self.inner.ctx.address()
                ),
            ));
        }
        let model = match self.cached_offer(id) {
            Some(s) if s.offer.quant_hash == offer.quant_hash => s.model.clone(),
            _ => Arc::new(self.load_model(&offer).await?),
        };
        let served = Arc::new(Served { offer, model });
        let mut offers = self.inner.offers.write().unwrap_or_else(|p| p.into_inner());
        offers.insert(id, served.clone());
        Ok(served)
    }

    async fn load_model(&self, offer: &Offer) -> Result<QuantModel, ApiError> {
        let hash = offer.quant_hash;
        let blobs = &self.inner.blobs;
        let bytes = match blobs.get(&hash) {
            Ok(Some(b)) => b,
            _ => {
                let bytes = self.inner.ctx.ledger.get_blob(&hash).await.map_err(|e| {
                    ApiError::unavailable(
                        "model_unavailable",
                        format!(
                            "offer {}'s model blob {hash} is neither in this node's blob store \
                                 nor at its validator ({e}); upload it with `deai blob put`",
                            offer.id
                        ),
                    )
                })?;
                if let Err(e) = blobs.put_expected(&hash, &bytes) {
                    tracing::warn!(%hash, error = %e, "cannot keep the offer's model blob");
                }
                bytes
            }
        };
        QuantModel::decode(&bytes).map_err(|e| {
            ApiError::internal(format!(
                "offer {}'s model blob {hash} is not a deai-qm1 model: {e}",
                offer.id
            ))
        })
    }

    /// The channel `id` as the ledger shows it, reading it when not known yet (or `refresh`).
    async fn channel(&self, id: u64, refresh: bool) -> Result<Channel, ApiError> {
        if !refresh && let Some(c) = self.lock_channels().get(&id).and_then(|e| e.ledger.clone()) {
            return Ok(c);
        }
        let c: Channel = super::read_entry(&self.inner.ctx, StateKey::Channel(id), "channel")
            .await
            .map_err(|mut e| {
                // A query naming a channel the ledger does not have is a payment problem.
                if e.status == StatusCode::NOT_FOUND {
                    e.status = StatusCode::PAYMENT_REQUIRED;
                }
                e
            })?;
        let mut channels = self.lock_channels();
        let entry = channels.entry(id).or_insert_with(|| {
            ChannelEntry::new(Paid {
                voucher: None,
                spent: 0,
                next_sequence: 0,
            })
        });
        entry.ledger = Some(c.clone());
        Ok(c)
    }

    /// Checks `voucher` for `n` queries of `served` and records them as paid: the receipts'
    /// first sequence and the channel's new total. A new voucher, or sequences past the log's
    /// reservation, are written to the log before this returns; the spent total at the next
    /// flush.
    async fn charge(
        &self,
        served: &Served,
        voucher: SignedVoucher,
        n: u64,
    ) -> Result<Charged, Refusal> {
        let id = voucher.voucher.channel_id;
        let offer = &served.offer;
        let mut channel = self.channel(id, false).await?;
        if channel.offer != offer.id {
            return Err(refuse(
                "channel_other_offer",
                format!(
                    "channel {id} pays offer {}, not offer {}",
                    channel.offer, offer.id
                ),
                None,
            ));
        }
        let seen = self
            .lock_channels()
            .get(&id)
            .is_some_and(|e| e.paid.voucher.as_ref() == Some(&voucher));
        if !seen {
            // A voucher above the deposit read may follow a top-up: read the channel again once.
            if voucher.voucher.cumulative_amount > channel.deposit {
                channel = self.channel(id, true).await?;
            }
            channel
                .voucher_signed(&voucher)
                .map_err(|e| self.refuse_terms(id, e))?;
        }
        let height = self.inner.height.load(Ordering::Relaxed);
        let last = channel
            .expiry_height
            .saturating_sub(self.inner.cfg.claim_margin_blocks);
        if height >= last {
            return Err(refuse(
                "channel_expiring",
                format!(
                    "channel {id} expires at height {} and the chain is at {height}: this \
                     provider needs {} blocks to claim; extend it with `deai channel top-up \
                     --expiry-height`",
                    channel.expiry_height, self.inner.cfg.claim_margin_blocks
                ),
                None,
            ));
        }
        channel
            .voucher_terms(&self.inner.ctx.chain_id, offer.status, &voucher, height)
            .map_err(|e| self.refuse_terms(id, e))?;
        let cost = offer.price_per_query.saturating_mul(u128::from(n));
        let amount = voucher.voucher.cumulative_amount;
        let mut channels = self.lock_channels();
        let entry = channels
            .get_mut(&id)
            .expect("read above: the channel is known");
        let spent = entry.paid.spent;
        let need = spent.saturating_add(cost);
        if amount < need {
            return Err(refuse(
                "voucher_too_low",
                format!(
                    "the voucher pays {amount} in total; channel {id} has spent {spent} and \
                     these {n} queries cost {cost}: send a voucher of at least {need}"
                ),
                Some(spent),
            ));
        }
        let higher = entry
            .paid
            .voucher
            .as_ref()
            .is_none_or(|v| v.voucher.cumulative_amount < amount);
        let first = entry.paid.next_sequence;
        let next = first.saturating_add(n);
        let reserve = next > entry.reserved;
        if higher || reserve {
            // The log first: an answer leaves only once its voucher and sequences are recorded.
            let reserved = if reserve {
                next.saturating_add(SEQUENCE_RESERVE)
            } else {
                entry.reserved
            };
            let paid = Paid {
                voucher: if higher {
                    Some(voucher)
                } else {
                    entry.paid.voucher.clone()
                },
                spent: need,
                next_sequence: next,
            };
            self.inner
                .journal
                .record(id, &paid, reserved, higher)
                .map_err(|e| {
                    tracing::error!(error = %e, path = %self.inner.journal.path().display(), "cannot record a payment");
                    Refusal::from(ApiError::internal(format!("cannot record the payment: {e}")))
                })?;
            entry.paid = paid;
            entry.reserved = reserved;
            entry.dirty = false;
        } else {
            entry.paid.spent = need;
            entry.paid.next_sequence = next;
            entry.dirty = true;
        }
        Ok(Charged {
            first,
            spent: need,
            new_voucher: higher,
        })
    }

    /// Adds `leaves` to `channel`'s pending batch and takes the batch when it is to be signed
    /// now: `asked`, or it reached the receipt interval (or the largest batch less one request).
    fn pend(&self, channel: u64, leaves: Vec<Digest>, asked: bool) -> Option<Vec<Digest>> {
        let cfg = &self.inner.cfg;
        let limit = (cfg.receipt_interval as usize)
            .min(RECEIPT_BATCH_MAX as usize + 1 - cfg.batch_max as usize);
        let mut channels = self.lock_channels();
        let entry = channels.get_mut(&channel)?;
        entry.pending.extend(leaves);
        let due = asked || entry.pending.len() >= limit;
        (due && !entry.pending.is_empty()).then(|| std::mem::take(&mut entry.pending))
    }

    fn refuse_terms(&self, channel: u64, e: TxError) -> Refusal {
        let spent = self.lock_channels().get(&channel).map(|c| c.paid.spent);
        let code = match &e {
            TxError::ChannelNotOpen { .. } => "channel_closed",
            TxError::ChannelExpired { .. } => "channel_expired",
            TxError::OfferNotActive { .. } => "offer_suspended",
            TxError::WrongChainId { .. } => "voucher_wrong_chain",
            TxError::VoucherNotNewer { .. } => "voucher_too_low",
            TxError::VoucherOverdrawn { .. } => "voucher_overdrawn",
            TxError::VoucherBadSignature { .. } => "voucher_bad_signature",
            _ => "voucher_refused",
        };
        refuse(code, e.to_string(), spent)
    }

    /// Runs the engine on `inputs` (on the blocking pool when the batch is heavy).
    async fn run(&self, model: Arc<QuantModel>, inputs: Vec<Input>) -> Vec<Output> {
        const INLINE_OPS_MAX: u64 = 4_000_000;
        let heavy = model.ops().saturating_mul(inputs.len() as u64) > INLINE_OPS_MAX;
        let mut outputs = if heavy {
            tokio::task::spawn_blocking(move || deai_infer::infer_batch(&model, &inputs))
                .await
                .unwrap_or_default()
        } else {
            deai_infer::infer_batch(&model, &inputs)
        };
        let every = self.inner.cfg.wrong_answer_every;
        let start = self
            .inner
            .answered
            .fetch_add(outputs.len() as u64, Ordering::Relaxed);
        if every > 0 {
            for (i, out) in outputs.iter_mut().enumerate() {
                if (start + i as u64 + 1).is_multiple_of(every) {
                    *out = wrong(out);
                }
            }
        }
        outputs
    }
}

/// A different, well-formed answer: the runner-up class made the argmax.
fn wrong(out: &Output) -> Output {
    let mut logits = out.logits.clone();
    let other = (out.class as usize + 1) % logits.len().max(1);
    if let Some(l) = logits.get_mut(other) {
        *l = i32::MAX;
    }
    if let Some(l) = logits
        .get_mut(out.class as usize)
        .filter(|_| other != out.class as usize)
    {
        *l = i32::MIN;
    }
    let class = logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))
        .map_or(0, |(i, _)| i as u32);
    Output { logits, class }
}

/// A refused query: the API error and, when known, what the channel has spent (sent in
/// [`wire::SPENT_HEADER`] so a client that lost count can catch up).
struct Refusal {
    error: ApiError,
    spent: Option<u128>,
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Self { error, spent: None }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut resp = self.error.into_response();
        if let Some(spent) = self.spent
            && let Ok(v) = HeaderValue::from_str(&spent.to_string())
        {
            resp.headers_mut().insert(wire::SPENT_HEADER, v);
        }
        resp
    }
}

/// A 402 naming what was wrong with the payment, with the channel's spent total when known.
fn refuse(code: &'static str, message: String, spent: Option<u128>) -> Refusal {
    Refusal {
        error: ApiError {
            status: StatusCode::PAYMENT_REQUIRED,
            code,
            message,
        },
        spent,
    }
}

fn offer_id(s: &str) -> Result<u64, ApiError> {
    s.parse().map_err(|_| {
        ApiError::bad_request(
            "bad_id",
            format!("an offer id is a decimal number, got {s:?}"),
        )
    })
}

/// `GET /v1/infer/{offer}`: what the offer takes.
async fn info(
    State(p): State<ProviderRole>,
    Path(offer): Path<String>,
) -> Result<Json<OfferInfo>, ApiError> {
    let served = p.served(offer_id(&offer)?).await?;
    let shape = served.model.input_shape();
    Ok(Json(OfferInfo {
        offer: served.offer.id,
        provider: served.offer.provider.to_string(),
        model_hash: served.offer.quant_hash,
        arch: served.model.arch().to_string(),
        input_len: shape.len,
        input_max: shape.max,
        price_per_query: served.offer.price_per_query,
        batch_max: p.inner.cfg.batch_max,
    }))
}

/// `POST /v1/infer/{offer}`: answers the inputs in the body, paid by the voucher header.
async fn query(
    State(p): State<ProviderRole>,
    Path(offer): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match answer(&p, &offer, &headers, &body).await {
        Ok(r) => r,
        Err(r) => r.into_response(),
    }
}

async fn answer(
    p: &ProviderRole,
    offer: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Refusal> {
    let served = p.served(offer_id(offer)?).await?;
    if served.offer.status == OfferStatus::Suspended {
        return Err(ApiError {
            status: StatusCode::GONE,
            code: "offer_suspended",
            message: format!(
                "offer {} lost a dispute and is suspended; it answers no more queries",
                served.offer.id
            ),
        }
        .into());
    }
    let asked = !p.inner.free && headers.contains_key(wire::SIGN_HEADER);
    // A request of no query only collects the channel's pending signature.
    let inputs = if asked && body.is_empty() {
        Vec::new()
    } else {
        split_inputs(&served.model, body, p.inner.cfg.batch_max)?
    };
    let n = inputs.len() as u64;
    if p.inner.free {
        let outputs = p.run(served.model.clone(), inputs).await;
        let answer = wire::Answer {
            first_sequence: 0,
            outputs: outputs.iter().map(Output::to_bytes).collect(),
            signed: None,
        };
        return Ok(octets(answer.encode()));
    }
    let voucher = voucher_of(headers, &p.inner.limits)?;
    let channel = voucher.voucher.channel_id;
    let mut receipt = QueryReceipt {
        chain_id: p.inner.ctx.chain_id.clone(),
        offer_id: served.offer.id,
        channel_id: channel,
        sequence: 0,
        input_hash: Digest([0; 32]),
        output: Vec::new(),
        model_hash: served.offer.quant_hash,
        voucher_amount: voucher.voucher.cumulative_amount,
    };
    let charged = p.charge(&served, voucher, n).await?;
    let outputs = if inputs.is_empty() {
        Vec::new()
    } else {
        p.run(served.model.clone(), inputs).await
    };
    let len = served.model.input_shape().len.max(1);
    let mut leaves = Vec::with_capacity(outputs.len());
    let mut bytes = Vec::with_capacity(outputs.len());
    for (i, (out, input)) in outputs.iter().zip(body.chunks(len)).enumerate() {
        receipt.sequence = charged.first + i as u64;
        receipt.input_hash = Digest::hash(input);
        receipt.output = out.to_bytes();
        leaves.push(receipt.leaf());
        bytes.push(std::mem::take(&mut receipt.output));
    }
    let signed = p
        .pend(channel, leaves, asked || charged.new_voucher)
        .map(|leaves| SignedLeaves::sign(leaves, &p.inner.ctx.key));
    let answer = wire::Answer {
        first_sequence: charged.first,
        outputs: bytes,
        signed,
    };
    let mut resp = octets(answer.encode());
    if let Ok(v) = HeaderValue::from_str(&charged.spent.to_string()) {
        resp.headers_mut().insert(wire::SPENT_HEADER, v);
    }
    Ok(resp)
}

fn octets(body: Vec<u8>) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    resp
}

/// The body as `n ≥ 1` inputs of the model, each checked.
fn split_inputs(model: &QuantModel, body: &[u8], batch_max: u32) -> Result<Vec<Input>, ApiError> {
    let len = model.input_shape().len;
    if body.is_empty() || len == 0 || !body.len().is_multiple_of(len) {
        return Err(ApiError::bad_request(
            "bad_input",
            format!(
                "the body has {} bytes; send whole inputs of {len} bytes each ({})",
                body.len(),
                model.arch()
            ),
        ));
    }
    let n = body.len() / len;
    if n > batch_max as usize {
        return Err(ApiError::bad_request(
            "batch_too_large",
            format!("{n} queries in one request; this provider takes at most {batch_max}"),
        ));
    }
    body.chunks(len)
        .enumerate()
        .map(|(i, chunk)| {
            deai_infer::decode_input(model, chunk)
                .map_err(|e| ApiError::bad_request("bad_input", format!("input {i}: {e}")))
        })
        .collect()
}

/// The voucher header, decoded.
fn voucher_of(headers: &HeaderMap, limits: &Limits) -> Result<SignedVoucher, Refusal> {
    let Some(value) = headers.get(wire::VOUCHER_HEADER) else {
        return Err(refuse(
            "voucher_required",
            format!(
                "a paid query carries the payer's voucher in the {} header (hex); open a \
                 channel to this offer with `deai channel open` and query with `deai infer`",
                wire::VOUCHER_HEADER
            ),
            None,
        ));
    };
    let bytes = hex::decode(value.as_bytes()).map_err(|e| {
        refuse(
            "voucher_malformed",
            format!("the {} header is not hex: {e}", wire::VOUCHER_HEADER),
            None,
        )
    })?;
    SignedVoucher::decode_limits(&bytes, limits).map_err(|e| {
        refuse(
            "voucher_malformed",
            format!("the voucher does not decode: {e}"),
            None,
        )
    })
}
