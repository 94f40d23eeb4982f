//! The provider role: answers paid queries for the offers whose provider is this node's key
//! (`[roles.provider]`), and claims what they earned.
//!
//! `POST /v1/infer/{offer}` carries one or more inputs and the payer's cumulative voucher
//! ([`wire`]). The provider checks the voucher against the channel as the ledger recorded it
//! (open, paying this offer, not near expiry, within the deposit: [`deai_ledger::Channel::voucher_terms`]),
//! its signature only when it is a voucher it has not seen, and that it covers every query the
//! channel was answered so far plus this request's. It records the channel's new state
//! ([`journal`]) before answering, runs the integer engine, and answers one receipt per query,
//! all signed with one signature ([`deai_ledger::payment::sign_receipts`]). A request without
//! a good voucher gets 402 with a code naming what was wrong. `GET /v1/infer/{offer}` says what
//! the offer takes (input length, price, model hash) and the model blob is served from this
//! node's blob store, so anyone can re-execute an answer.
//!
//! The claim loop ([`claims`]) follows the chain's height, refreshes the offers served, syncs the
//! log and redeems each channel's highest voucher before the channel expires.
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
    Channel, Digest, Limits, Offer, OfferStatus, QueryReceipt, SignedVoucher, StateKey, TxError,
    payment::sign_receipts,
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
        let limits = genesis.params.limits();
        let (journal, paid) = Journal::open(state_dir, &genesis.params)?;
        let channels = paid
            .into_iter()
            .map(|(id, paid)| (id, ChannelEntry { ledger: None, paid }))
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

    /// Starts the claim loop (see [`claims`]).
    pub fn spawn_claims(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(claims::run(self.clone()))
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
        let entry = channels.entry(id).or_insert_with(|| ChannelEntry {
            ledger: None,
            paid: Paid {
                voucher: None,
                spent: 0,
                next_sequence: 0,
            },
        });
        entry.ledger = Some(c.clone());
        Ok(c)
    }

    /// Checks `voucher` for `n` queries of `served` and records them as paid: the receipts'
    /// first sequence and the channel's new total.
    async fn charge(
        &self,
        served: &Served,
        voucher: SignedVoucher,
        n: u64,
    ) -> Result<(u64, u128), Refusal> {
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
        let paid = &mut entry.paid;
        let need = paid.spent.saturating_add(cost);
        if amount < need {
            return Err(refuse(
                "voucher_too_low",
                format!(
                    "the voucher pays {amount} in total; channel {id} has spent {} and these {n} \
                     queries cost {cost}: send a voucher of at least {need}",
                    paid.spent
                ),
                Some(paid.spent),
            ));
        }
        let higher = paid
            .voucher
            .as_ref()
            .is_none_or(|v| v.voucher.cumulative_amount < amount);
        let first = paid.next_sequence;
        paid.spent = need;
        paid.next_sequence = first.saturating_add(n);
        if higher {
            paid.voucher = Some(voucher);
        }
        self.inner
            .journal
            .record(id, paid, higher)
            .map_err(|e| {
                tracing::error!(error = %e, path = %self.inner.journal.path().display(), "cannot record a payment");
                Refusal::from(ApiError::internal(format!("cannot record the payment: {e}")))
            })?;
        Ok((first, need))
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
    let inputs = split_inputs(&served.model, body, p.inner.cfg.batch_max)?;
    let n = inputs.len() as u64;
    if p.inner.free {
        let outputs = p.run(served.model.clone(), inputs).await;
        let frames: Vec<Vec<u8>> = outputs.iter().map(Output::to_bytes).collect();
        return Ok(octets(wire::encode_frames(&frames)));
    }
    let voucher = voucher_of(headers, &p.inner.limits)?;
    let channel = voucher.voucher.channel_id;
    let amount = voucher.voucher.cumulative_amount;
    let input_hashes: Vec<Digest> = body
        .chunks(served.model.input_shape().len)
        .map(Digest::hash)
        .collect();
    let (first, spent) = p.charge(&served, voucher, n).await?;
    let outputs = p.run(served.model.clone(), inputs).await;
    let receipts = outputs
        .into_iter()
        .zip(input_hashes)
        .enumerate()
        .map(|(i, (out, input_hash))| QueryReceipt {
            chain_id: p.inner.ctx.chain_id.clone(),
            offer_id: served.offer.id,
            channel_id: channel,
            sequence: first + i as u64,
            input_hash,
            output: out.to_bytes(),
            model_hash: served.offer.quant_hash,
            voucher_amount: amount,
        })
        .collect();
    let signed = sign_receipts(receipts, &p.inner.ctx.key);
    let frames: Vec<Vec<u8>> = signed.iter().map(|r| r.encode()).collect();
    let mut resp = octets(wire::encode_frames(&frames));
    if let Ok(v) = HeaderValue::from_str(&spent.to_string()) {
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
