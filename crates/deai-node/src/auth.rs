//! Signed messages between nodes: every request and every answer carries the sender's ed25519 node
//! key, a nonce and a signature, so a node refuses unsigned, forged, stale and replayed messages,
//! each with a named reason ([`AuthError::code`]).
//!
//! Headers (the same names on requests and answers):
//! - [`HDR_KEY`] `x-deai-key`: the sender's ed25519 public key, 64 hex;
//! - [`HDR_NONCE`] `x-deai-nonce`: on a request, the sender's clock in microseconds since the Unix
//!   epoch, strictly increasing per sender ([`NonceClock`]); on an answer, the nonce of the request
//!   it answers;
//! - [`HDR_TO`] `x-deai-to` (requests only): the recipient node's ed25519 public key, 64 hex;
//! - [`HDR_SIG`] `x-deai-sig`: the ed25519 signature, 128 hex, over
//!   - a request: `"deai/peer-request/v2" || chain_id || recipient key || method || path with
//!     query || nonce || BLAKE3(body)`,
//!   - an answer: `"deai/peer-response/v1" || chain_id || request nonce || status || BLAKE3(body)`,
//!
//!   where strings are prefixed by their length (u32, big endian), the nonce is a big-endian u64
//!   and the status a big-endian u16. The domain tags keep a request signature from ever being a
//!   valid answer signature and the other way round; the chain id keeps a message of one chain
//!   from being replayed on another; the recipient key keeps a request captured by (or sent to)
//!   one node from being replayed to any other; the path is signed with its query, so a request
//!   cannot be moved to another query; the request nonce binds an answer to its request, so a
//!   recorded answer cannot be passed off as the answer to another one.
//!
//! A receiver checks, in order ([`authenticate`]): all four headers present and well formed, the
//! recipient is itself, the nonce is within the freshness window of its own clock, the signature
//! (`verify_strict`: no weak keys, no malleable signatures). None of that remembers anything. Then
//! the route decides whether this key may ask this (a role check, a ledger lookup), and only a
//! request that passed it is [admitted](ReplayGuard::admit): the [`ReplayGuard`] checks that it
//! has not accepted this nonce from that key before and records it. A stranger's self-signed keys
//! therefore never take a slot of the guard: only keys a route authorized do. Concurrent requests from one sender may arrive out of
//! order, so a nonce below the newest one seen is still accepted (once) if it is no more than
//! [`REORDER_WINDOW`] older; anything older than that is refused as a replay. Only a message that
//! passed the signature check is recorded, so forged messages cannot move a sender's nonces forward
//! and lock it out.
//!
//! Known limits: a receiver that restarts forgets the nonces it saw, so a message captured less
//! than one window earlier can be replayed to it once after the restart (older ones are stale);
//! senders' and receivers' clocks must agree to within the window. An answer is bound to the
//! request's nonce, not to the requester's key: two requesters using the same microsecond nonce
//! could be served each other's recorded answers by a man in the middle.
//!
//! ```
//! use deai_node::auth::{self, NonceClock, ReplayGuard};
//! let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
//! let clock = NonceClock::default();
//! let to = ed25519_dalek::SigningKey::from_bytes(&[8; 32]).verifying_key();
//! let nonce = clock.next();
//! let signed = auth::sign_request(&key, "deai-dev", &to, "POST", "/v1/fed/join", nonce, b"{}");
//! let guard = ReplayGuard::default();
//! let headers = signed.to_header_map();
//! let verify = || auth::verify_request(&headers, "deai-dev", &to, "POST", "/v1/fed/join", b"{}", &guard, nonce);
//! assert_eq!(verify().unwrap(), key.verifying_key());
//! // The same message again is a replay.
//! assert_eq!(verify().unwrap_err().code(), "replayed");
//! ```

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use crate::api::ApiError;

/// Header carrying the sender's ed25519 public key (64 hex).
pub const HDR_KEY: &str = "x-deai-key";
/// Header carrying the nonce: the sender's clock in microseconds (requests), or the request's nonce
/// (answers).
pub const HDR_NONCE: &str = "x-deai-nonce";
/// Header carrying the ed25519 signature (128 hex).
pub const HDR_SIG: &str = "x-deai-sig";
/// Header carrying the recipient node's ed25519 public key (64 hex), on requests.
pub const HDR_TO: &str = "x-deai-to";

/// Domain tag of signed requests.
pub const REQUEST_DOMAIN: &[u8] = b"deai/peer-request/v2";
/// Domain tag of signed answers.
pub const RESPONSE_DOMAIN: &[u8] = b"deai/peer-response/v1";
/// How far a request's nonce may be from the receiver's clock, either way.
pub const FRESHNESS_WINDOW: Duration = Duration::from_secs(120);
/// Most senders a [`ReplayGuard`] remembers at once (each seen within the last window).
pub const SENDERS_MAX: usize = 100_000;
/// How much older than the newest nonce seen from a sender a request may be and still be accepted
/// (once): concurrent requests signed a moment apart can overtake each other on the way.
pub const REORDER_WINDOW: Duration = Duration::from_secs(30);
/// Most nonces a [`ReplayGuard`] remembers per sender inside the reorder window; a sender faster
/// than this loses the oldest of its reorder allowance, never its replay protection.
pub const RECENT_NONCES_MAX: usize = 4096;

/// Why a signed message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A signing header is absent: the message is unsigned.
    #[error(
        "unsigned message: header {0} is missing; peers sign every message (x-deai-key, x-deai-nonce, x-deai-sig)"
    )]
    Missing(&'static str),
    /// A signing header is present but not in its format.
    #[error("header {header} is malformed: {reason}")]
    BadHeader {
        /// The header.
        header: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The key header is not an ed25519 public key.
    #[error("header x-deai-key is not an ed25519 public key")]
    BadKey,
    /// The signature does not verify over this message with this key.
    #[error(
        "the signature does not match this key and message (chain id, recipient, method, path with query, nonce, body); was the message changed, or signed for another chain?"
    )]
    BadSig,
    /// The nonce is too far from the receiver's clock.
    #[error("nonce {nonce} is {}s away from this node's clock ({now}), outside the {}s window; check the sender's clock", nonce.abs_diff(*now) / 1_000_000, window_micros / 1_000_000)]
    Stale {
        /// The message's nonce (microseconds).
        nonce: u64,
        /// The receiver's clock (microseconds).
        now: u64,
        /// The allowed distance (microseconds).
        window_micros: u64,
    },
    /// The nonce was accepted from this key before, or is too old to tell.
    #[error(
        "nonce {nonce} was already used by this key, or is not above {floor}, the oldest it may \
         still use: a replayed message"
    )]
    Replayed {
        /// The message's nonce.
        nonce: u64,
        /// Nonces at or below this are refused from the key (newest seen − reorder window).
        floor: u64,
    },
    /// The key is not one this receiver accepts (or not the one expected).
    #[error("key {key} is not allowed to send this")]
    NotAllowed {
        /// The sender's key, hex.
        key: String,
    },
    /// An answer signed for another request.
    #[error("the answer is signed for request nonce {got}, not for ours ({expected})")]
    WrongRequest {
        /// Our request's nonce.
        expected: u64,
        /// The nonce the answer carries.
        got: u64,
    },
    /// The request was signed for another node.
    #[error(
        "this request is signed for node {to}, not for this node ({me}); a request is accepted \
         only by the node it was signed for"
    )]
    WrongRecipient {
        /// The recipient the request names, hex.
        to: String,
        /// This node's key, hex.
        me: String,
    },
    /// The receiver remembers as many senders as it may; retry later.
    #[error("this node is tracking the most senders it may ({max}); retry later")]
    TooManySenders {
        /// The limit.
        max: usize,
    },
}

impl AuthError {
    /// A stable code for scripts: `unsigned`, `bad_header`, `bad_key`, `bad_signature`, `stale`,
    /// `replayed`, `not_allowed`, `wrong_request`, `wrong_recipient`, `too_many_senders`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing(_) => "unsigned",
            Self::BadHeader { .. } => "bad_header",
            Self::BadKey => "bad_key",
            Self::BadSig => "bad_signature",
            Self::Stale { .. } => "stale",
            Self::Replayed { .. } => "replayed",
            Self::NotAllowed { .. } => "not_allowed",
            Self::WrongRequest { .. } => "wrong_request",
            Self::WrongRecipient { .. } => "wrong_recipient",
            Self::TooManySenders { .. } => "too_many_senders",
        }
    }

    /// The HTTP status a receiver answers: 401, 403 for a key not allowed, 503 when full.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotAllowed { .. } => StatusCode::FORBIDDEN,
            Self::TooManySenders { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError {
            status: e.status(),
            code: e.code(),
            message: e.to_string(),
        }
    }
}

/// The three signing headers of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// The signer's public key, hex.
    pub key: String,
    /// The nonce (a request's own, or the answered request's).
    pub nonce: u64,
    /// The signature, hex.
    pub sig: String,
    /// The recipient's public key, hex (requests only).
    pub to: Option<String>,
}

impl SignedHeaders {
    fn new(key: &SigningKey, nonce: u64, message: &[u8], to: Option<&VerifyingKey>) -> Self {
        Self {
            key: hex::encode(key.verifying_key().as_bytes()),
            nonce,
            sig: hex::encode(key.sign(message).to_bytes()),
            to: to.map(|k| hex::encode(k.as_bytes())),
        }
    }

    /// Adds the headers to an outgoing request.
    pub fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let request = request
            .header(HDR_KEY, &self.key)
            .header(HDR_NONCE, self.nonce.to_string())
            .header(HDR_SIG, &self.sig);
        match &self.to {
            Some(to) => request.header(HDR_TO, to),
            None => request,
        }
    }

    /// Sets the headers in `headers` (an answer's, or a request being built by hand).
    pub fn insert_into(&self, headers: &mut HeaderMap) {
        let hex_value = |s: &str| HeaderValue::from_str(s).expect("hex is a valid header value");
        headers.insert(HDR_KEY, hex_value(&self.key));
        headers.insert(HDR_NONCE, HeaderValue::from(self.nonce));
        headers.insert(HDR_SIG, hex_value(&self.sig));
        if let Some(to) = &self.to {
            headers.insert(HDR_TO, hex_value(to));
        }
    }

    /// The headers as a map of their own.
    pub fn to_header_map(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        self.insert_into(&mut h);
        h
    }
}

/// Signs a request for the node whose key is `to`: `method` as sent (uppercase), `path` with
/// its query as sent.
pub fn sign_request(
    key: &SigningKey,
    chain_id: &str,
    to: &VerifyingKey,
    method: &str,
    path: &str,
    nonce: u64,
    body: &[u8],
) -> SignedHeaders {
    let body_hash = *blake3::hash(body).as_bytes();
    sign_request_hashed(key, chain_id, to, method, path, nonce, &body_hash)
}

/// [`sign_request`] given the body's BLAKE3 instead of the body (a blob upload: the blob's name
/// is that hash, so the body can be streamed, never held).
pub fn sign_request_hashed(
    key: &SigningKey,
    chain_id: &str,
    to: &VerifyingKey,
    method: &str,
    path: &str,
    nonce: u64,
    body_hash: &[u8; 32],
) -> SignedHeaders {
    let message = request_message(chain_id, to, method, path, nonce, body_hash);
    SignedHeaders::new(key, nonce, &message, Some(to))
}

/// Signs an answer to the request that carried `request_nonce`.
pub fn sign_response(
    key: &SigningKey,
    chain_id: &str,
    request_nonce: u64,
    status: u16,
    body: &[u8],
) -> SignedHeaders {
    SignedHeaders::new(
        key,
        request_nonce,
        &response_message(chain_id, request_nonce, status, body),
        None,
    )
}

/// The bytes a request's signature covers.
pub fn request_message(
    chain_id: &str,
    to: &VerifyingKey,
    method: &str,
    path: &str,
    nonce: u64,
    body_hash: &[u8; 32],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(REQUEST_DOMAIN.len() + chain_id.len() + path.len() + 96);
    m.extend_from_slice(REQUEST_DOMAIN);
    put_str(&mut m, chain_id);
    m.extend_from_slice(to.as_bytes());
    put_str(&mut m, method);
    put_str(&mut m, path);
    m.extend_from_slice(&nonce.to_be_bytes());
    m.extend_from_slice(body_hash);
    m
}

/// The bytes an answer's signature covers.
pub fn response_message(chain_id: &str, request_nonce: u64, status: u16, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(RESPONSE_DOMAIN.len() + chain_id.len() + 48);
    m.extend_from_slice(RESPONSE_DOMAIN);
    put_str(&mut m, chain_id);
    m.extend_from_slice(&request_nonce.to_be_bytes());
    m.extend_from_slice(&status.to_be_bytes());
    m.extend_from_slice(blake3::hash(body).as_bytes());
    m
}

fn put_str(m: &mut Vec<u8>, s: &str) {
    // Headers, chain ids and paths are far below 4 GiB; a longer one is a caller bug.
    let len = u32::try_from(s.len()).expect("a signed field is under 4 GiB");
    m.extend_from_slice(&len.to_be_bytes());
    m.extend_from_slice(s.as_bytes());
}

/// The signing headers of a message, parsed.
struct Parsed {
    key: VerifyingKey,
    nonce: u64,
    sig: Signature,
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, AuthError> {
    let v = headers.get(name).ok_or(AuthError::Missing(name))?;
    v.to_str().map_err(|_| AuthError::BadHeader {
        header: name,
        reason: "not ASCII".into(),
    })
}

fn parse(headers: &HeaderMap) -> Result<Parsed, AuthError> {
    let key_hex = header(headers, HDR_KEY)?;
    let nonce = header(headers, HDR_NONCE)?;
    let sig_hex = header(headers, HDR_SIG)?;
    let mut key = [0u8; 32];
    hex::decode_to_slice(key_hex, &mut key).map_err(|_| AuthError::BadHeader {
        header: HDR_KEY,
        reason: "expected 64 hex characters".into(),
    })?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| AuthError::BadKey)?;
    let nonce = nonce.parse::<u64>().map_err(|_| AuthError::BadHeader {
        header: HDR_NONCE,
        reason: format!("{nonce:?} is not a decimal u64"),
    })?;
    let mut sig = [0u8; 64];
    hex::decode_to_slice(sig_hex, &mut sig).map_err(|_| AuthError::BadHeader {
        header: HDR_SIG,
        reason: "expected 128 hex characters".into(),
    })?;
    Ok(Parsed {
        key,
        nonce,
        sig: Signature::from_bytes(&sig),
    })
}

/// The nonce a request carries (for signing the answer once the request was verified).
pub fn request_nonce(headers: &HeaderMap) -> Option<u64> {
    headers.get(HDR_NONCE)?.to_str().ok()?.parse().ok()
}

/// A request whose signature, recipient and freshness checked out, not yet admitted: the route
/// decides whether the key may ask this, then [`ReplayGuard::admit`]s it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a request is not replay-checked until it is admitted"]
pub struct Authenticated {
    /// The sender's key.
    pub key: VerifyingKey,
    /// Its nonce (the answer is signed for it).
    pub nonce: u64,
    /// The receiver's clock when it was checked.
    now_micros: u64,
}

/// Checks a signed request for this node (`me`) without recording anything: headers, recipient,
/// freshness against `now_micros`, signature. `method` and `path` are as received (`path` with
/// its query); `body_hash` is the BLAKE3 of the body.
pub fn authenticate(
    headers: &HeaderMap,
    chain_id: &str,
    me: &VerifyingKey,
    method: &str,
    path: &str,
    body_hash: &[u8; 32],
    now_micros: u64,
) -> Result<Authenticated, AuthError> {
    let p = parse(headers)?;
    let to = header(headers, HDR_TO)?;
    if !to.eq_ignore_ascii_case(&hex::encode(me.as_bytes())) {
        return Err(AuthError::WrongRecipient {
            to: to.chars().take(64).collect(),
            me: hex::encode(me.as_bytes()),
        });
    }
    check_fresh(p.nonce, now_micros, FRESHNESS_WINDOW)?;
    let message = request_message(chain_id, me, method, path, p.nonce, body_hash);
    p.key
        .verify_strict(&message, &p.sig)
        .map_err(|_| AuthError::BadSig)?;
    Ok(Authenticated {
        key: p.key,
        nonce: p.nonce,
        now_micros,
    })
}

fn check_fresh(nonce: u64, now_micros: u64, window: Duration) -> Result<(), AuthError> {
    let window_micros = u64::try_from(window.as_micros()).unwrap_or(u64::MAX);
    if nonce.abs_diff(now_micros) > window_micros {
        return Err(AuthError::Stale {
            nonce,
            now: now_micros,
            window_micros,
        });
    }
    Ok(())
}

/// [`authenticate`] and [`ReplayGuard::admit`] at once, for a route that admits every signer
/// (tests, examples). A route that checks who may call it authenticates, checks, then admits.
#[allow(clippy::too_many_arguments)] // the fields of one signed message
pub fn verify_request(
    headers: &HeaderMap,
    chain_id: &str,
    me: &VerifyingKey,
    method: &str,
    path: &str,
    body: &[u8],
    guard: &ReplayGuard,
    now_micros: u64,
) -> Result<VerifyingKey, AuthError> {
    let body_hash = *blake3::hash(body).as_bytes();
    let a = authenticate(headers, chain_id, me, method, path, &body_hash, now_micros)?;
    guard.admit(&a)
}

/// Verifies an answer to our request `request_nonce`: signed by `expected_key`, for that request.
pub fn verify_response(
    headers: &HeaderMap,
    chain_id: &str,
    request_nonce: u64,
    status: u16,
    body: &[u8],
    expected_key: &VerifyingKey,
) -> Result<(), AuthError> {
    let p = parse(headers)?;
    if p.key != *expected_key {
        return Err(AuthError::NotAllowed {
            key: hex::encode(p.key.as_bytes()),
        });
    }
    if p.nonce != request_nonce {
        return Err(AuthError::WrongRequest {
            expected: request_nonce,
            got: p.nonce,
        });
    }
    let message = response_message(chain_id, request_nonce, status, body);
    p.key
        .verify_strict(&message, &p.sig)
        .map_err(|_| AuthError::BadSig)
}

/// For axum handlers: verifies the request made of these parts against the node's clock, or the
/// [`ApiError`] to answer (401 with the [`AuthError::code`]; 403 for a key not allowed).
///
/// Pass the URI the client sent: inside a nested router, that is axum's `OriginalUri`.
pub fn verify_http_request(
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
    body: &[u8],
    chain_id: &str,
    me: &VerifyingKey,
    guard: &ReplayGuard,
) -> Result<VerifyingKey, ApiError> {
    verify_request(
        headers,
        chain_id,
        me,
        method.as_str(),
        signed_path(uri),
        body,
        guard,
        now_micros(),
    )
    .map_err(ApiError::from)
}

/// What of a request's URI a signature covers: the path with its query, exactly as sent.
pub fn signed_path(uri: &Uri) -> &str {
    uri.path_and_query().map_or(uri.path(), |p| p.as_str())
}

/// This machine's clock in microseconds since the Unix epoch (0 if it is set before 1970).
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A sender's nonces: its clock in microseconds, but strictly increasing even when called twice in
/// one microsecond or when the clock steps back. Clones share the sequence.
#[derive(Debug, Clone, Default)]
pub struct NonceClock {
    last: Arc<AtomicU64>,
}

impl NonceClock {
    /// The process's one clock: every signer in a process that draws from it never reuses a
    /// nonce, however many clients it builds for the same key.
    pub fn process() -> Self {
        static CLOCK: std::sync::OnceLock<NonceClock> = std::sync::OnceLock::new();
        CLOCK.get_or_init(NonceClock::default).clone()
    }

    /// The next nonce, from this machine's clock.
    pub fn next(&self) -> u64 {
        self.next_at(now_micros())
    }

    /// The next nonce given the clock reads `now_micros`: `max(now, last + 1)`.
    pub fn next_at(&self, now_micros: u64) -> u64 {
        let step = |last: u64| now_micros.max(last.saturating_add(1));
        let prev = self
            .last
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| Some(step(last)))
            .unwrap_or_else(|last| last);
        step(prev)
    }
}

/// A receiver's memory of senders: per key, the nonces accepted within the reorder window below
/// the newest one; a freshness window against the receiver's clock; optionally the only keys it
/// accepts. Clones share one memory.
///
/// Memory is bounded: a key whose newest nonce is older than the freshness window is forgotten (any
/// replay of it would be stale anyway), at most `senders_max` keys are remembered at once, and at
/// most [`RECENT_NONCES_MAX`] nonces per key.
#[derive(Debug, Clone)]
pub struct ReplayGuard {
    inner: Arc<Mutex<GuardState>>,
    window_micros: u64,
    reorder_micros: u64,
    senders_max: usize,
}

#[derive(Debug, Default)]
struct GuardState {
    senders: BTreeMap<[u8; 32], Seen>,
    allowed: Option<BTreeSet<[u8; 32]>>,
    swept_at: u64,
}

/// What a guard remembers of one sender.
#[derive(Debug, Default)]
struct Seen {
    /// Nonces at or below this are refused.
    floor: u64,
    /// Accepted nonces above `floor`.
    recent: BTreeSet<u64>,
}

impl Seen {
    fn newest(&self) -> u64 {
        self.recent.last().copied().unwrap_or(self.floor)
    }

    fn accept(&mut self, nonce: u64, reorder: u64) -> Result<(), AuthError> {
        if nonce <= self.floor || self.recent.contains(&nonce) {
            return Err(AuthError::Replayed {
                nonce,
                floor: self.floor,
            });
        }
        self.recent.insert(nonce);
        self.floor = self.floor.max(self.newest().saturating_sub(reorder));
        let floor = self.floor;
        self.recent.retain(|&n| n > floor);
        while self.recent.len() > RECENT_NONCES_MAX {
            if let Some(oldest) = self.recent.pop_first() {
                self.floor = oldest;
            }
        }
        Ok(())
    }
}

impl Default for ReplayGuard {
    fn default() -> Self {
        Self::new(FRESHNESS_WINDOW)
    }
}

impl ReplayGuard {
    /// A guard accepting nonces within `window` of the receiver's clock, from any key.
    pub fn new(window: Duration) -> Self {
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Self {
            inner: Arc::default(),
            window_micros: micros(window),
            reorder_micros: micros(REORDER_WINDOW.min(window)),
            senders_max: SENDERS_MAX,
        }
    }

    /// Remembers at most `senders_max` keys at once (more are refused until older ones expire).
    pub fn with_senders_max(mut self, senders_max: usize) -> Self {
        self.senders_max = senders_max;
        self
    }

    /// The freshness window.
    pub fn window(&self) -> Duration {
        Duration::from_micros(self.window_micros)
    }

    /// From now on, accepts only these keys.
    pub fn allow_only(&self, keys: impl IntoIterator<Item = VerifyingKey>) {
        let keys = keys.into_iter().map(|k| k.to_bytes()).collect();
        self.lock().allowed = Some(keys);
    }

    /// From now on, accepts any key (the default).
    pub fn allow_all(&self) {
        self.lock().allowed = None;
    }

    /// How many senders are remembered now.
    pub fn senders(&self) -> usize {
        self.lock().senders.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GuardState> {
        // The state is maps of integers, consistent after any panic mid-update.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an authenticated request the route has authorized; refuses a replay. Call it
    /// only after the route checked that the key may ask this, so that keys nobody authorized
    /// never take one of the guard's `senders_max` slots.
    pub fn admit(&self, a: &Authenticated) -> Result<VerifyingKey, AuthError> {
        self.accept(&a.key, a.nonce, a.now_micros)?;
        Ok(a.key)
    }

    /// Accepts `nonce` from `key` at receiver time `now_micros`, or says why not. Call only for a
    /// message whose signature verified, from a key the route authorized.
    pub fn accept(&self, key: &VerifyingKey, nonce: u64, now_micros: u64) -> Result<(), AuthError> {
        if nonce.abs_diff(now_micros) > self.window_micros {
            return Err(AuthError::Stale {
                nonce,
                now: now_micros,
                window_micros: self.window_micros,
            });
        }
        let key = key.to_bytes();
        let mut st = self.lock();
        if st.allowed.as_ref().is_some_and(|a| !a.contains(&key)) {
            return Err(AuthError::NotAllowed {
                key: hex::encode(key),
            });
        }
        if !st.senders.contains_key(&key) {
            // Sweep once per window; when full, at most once a second (a sweep walks every key).
            let since = now_micros.saturating_sub(st.swept_at);
            let full = st.senders.len() >= self.senders_max;
            if since >= self.window_micros || (full && since >= 1_000_000) {
                self.sweep(&mut st, now_micros);
            }
            if st.senders.len() >= self.senders_max {
                return Err(AuthError::TooManySenders {
                    max: self.senders_max,
                });
            }
        }
        let reorder = self.reorder_micros;
        st.senders.entry(key).or_default().accept(nonce, reorder)
    }

    fn sweep(&self, st: &mut GuardState, now_micros: u64) {
        let window = self.window_micros;
        st.senders
            .retain(|_, seen| seen.newest().saturating_add(window) >= now_micros);
        st.swept_at = now_micros;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use proptest::prelude::*;

    use super::*;

    const CHAIN: &str = "deai-test";
    const PATH: &str = "/v1/fed/train?round=3";
    const T0: u64 = 1_700_000_000_000_000;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    /// The receiving node.
    fn me() -> VerifyingKey {
        key(100).verifying_key()
    }

    fn signed(nonce: u64, body: &[u8]) -> HeaderMap {
        sign_request(&key(1), CHAIN, &me(), "POST", PATH, nonce, body).to_header_map()
    }

    fn verify(h: &HeaderMap, body: &[u8], guard: &ReplayGuard) -> Result<VerifyingKey, AuthError> {
        verify_request(h, CHAIN, &me(), "POST", PATH, body, guard, T0)
    }

    #[test]
    fn round_trip_names_the_sender() {
        let guard = ReplayGuard::default();
        let h = signed(T0, b"update");
        assert_eq!(
            verify(&h, b"update", &guard).unwrap(),
            key(1).verifying_key()
        );
        assert_eq!(request_nonce(&h), Some(T0));
        assert_eq!(guard.senders(), 1);
    }

    #[test]
    fn every_tamper_fails_and_leaves_the_guard_untouched() {
        let guard = ReplayGuard::default();
        let h = signed(T0, b"update");
        let bad = |r: Result<VerifyingKey, AuthError>| r.unwrap_err().code();
        let other =
            |m: &str, p: &str, c: &str, b: &[u8]| verify_request(&h, c, &me(), m, p, b, &guard, T0);
        assert_eq!(bad(other("POST", PATH, CHAIN, b"updatf")), "bad_signature");
        assert_eq!(
            bad(other("POST", "/v1/fed/train?round=4", CHAIN, b"update")),
            "bad_signature"
        );
        assert_eq!(bad(other("PUT", PATH, CHAIN, b"update")), "bad_signature");
        assert_eq!(
            bad(other("POST", PATH, "deai-other", b"update")),
            "bad_signature"
        );
        // The nonce header changed: the signature covered the old one.
        let mut n = h.clone();
        n.insert(HDR_NONCE, HeaderValue::from(T0 + 1));
        assert_eq!(bad(verify(&n, b"update", &guard)), "bad_signature");
        // Another (valid) key claimed as the sender.
        let mut k = h.clone();
        let claimed = hex::encode(key(2).verifying_key().as_bytes());
        k.insert(HDR_KEY, HeaderValue::from_str(&claimed).unwrap());
        assert_eq!(bad(verify(&k, b"update", &guard)), "bad_signature");
        // One bit of the signature flipped.
        let mut s = h.clone();
        let mut sig = hex::decode(h[HDR_SIG].to_str().unwrap()).unwrap();
        sig[10] ^= 1;
        s.insert(HDR_SIG, HeaderValue::from_str(&hex::encode(sig)).unwrap());
        assert_eq!(bad(verify(&s, b"update", &guard)), "bad_signature");
        // A response signature is not a request signature.
        let mut r = sign_response(&key(1), CHAIN, T0, 200, b"update").to_header_map();
        r.insert(HDR_TO, h[HDR_TO].clone());
        assert_eq!(bad(verify(&r, b"update", &guard)), "bad_signature");
        // None of these moved the sender's nonce: the genuine message still passes.
        assert_eq!(guard.senders(), 0);
        verify(&h, b"update", &guard).unwrap();
    }

    #[test]
    fn unsigned_and_malformed_headers_are_named() {
        let guard = ReplayGuard::default();
        let h = signed(T0, b"x");
        for name in [HDR_KEY, HDR_NONCE, HDR_SIG] {
            let mut m = h.clone();
            m.remove(name);
            assert_eq!(
                verify(&m, b"x", &guard).unwrap_err(),
                AuthError::Missing(name)
            );
        }
        let code = |name: &'static str, value: &str| {
            let mut m = h.clone();
            m.insert(name, HeaderValue::from_str(value).unwrap());
            verify(&m, b"x", &guard).unwrap_err().code()
        };
        assert_eq!(code(HDR_KEY, "zz"), "bad_header");
        assert_eq!(code(HDR_NONCE, "-1"), "bad_header");
        assert_eq!(code(HDR_NONCE, "12abc"), "bad_header");
        assert_eq!(code(HDR_SIG, &"ab".repeat(63)), "bad_header");
        // 32 bytes that are no point on the curve.
        let not_a_point = format!("02{}", "ff".repeat(31));
        assert_eq!(code(HDR_KEY, &not_a_point), "bad_key");
        assert_eq!(AuthError::Missing(HDR_KEY).code(), "unsigned");
    }

    #[test]
    fn replays_are_refused_and_each_nonce_is_accepted_once() {
        let guard = ReplayGuard::default();
        verify(&signed(T0, b"a"), b"a", &guard).unwrap();
        let reorder = REORDER_WINDOW.as_micros() as u64;
        let again = verify(&signed(T0, b"a"), b"a", &guard).unwrap_err();
        assert_eq!(
            again,
            AuthError::Replayed {
                nonce: T0,
                floor: T0 - reorder
            }
        );
        // A request signed a moment earlier that arrives later is accepted, once.
        verify(&signed(T0 - 5, b"b"), b"b", &guard).unwrap();
        let late_again = verify(&signed(T0 - 5, b"b"), b"b", &guard).unwrap_err();
        assert_eq!(late_again.code(), "replayed");
        // Older than the reorder window below the newest: refused, even never seen.
        let ancient = verify(&signed(T0 - reorder, b"d"), b"d", &guard).unwrap_err();
        assert_eq!(
            ancient,
            AuthError::Replayed {
                nonce: T0 - reorder,
                floor: T0 - reorder
            }
        );
        verify(&signed(T0 + 1, b"c"), b"c", &guard).unwrap();
        // Clones share one memory; another sender has its own sequence.
        let clone = guard.clone();
        assert_eq!(
            verify(&signed(T0 + 1, b"c"), b"c", &clone)
                .unwrap_err()
                .code(),
            "replayed"
        );
        let other = sign_request(&key(2), CHAIN, &me(), "POST", PATH, T0, b"a").to_header_map();
        verify(&other, b"a", &clone).unwrap();
    }

    #[test]
    fn stale_and_future_nonces_are_refused_even_by_a_fresh_guard() {
        let window = FRESHNESS_WINDOW.as_micros() as u64;
        let guard = ReplayGuard::default();
        for nonce in [T0 - window - 1, T0 + window + 1, 0] {
            let e = verify(&signed(nonce, b"a"), b"a", &guard).unwrap_err();
            assert_eq!(e.code(), "stale", "{nonce}: {e}");
        }
        verify(&signed(T0 - window, b"a"), b"a", &guard).unwrap();
        verify(&signed(T0 + window, b"a"), b"a", &guard).unwrap();
    }

    #[test]
    fn guard_forgets_quiet_senders_and_stays_bounded() {
        let guard = ReplayGuard::new(Duration::from_secs(1)).with_senders_max(2);
        let t = |s: u64| T0 + s * 1_000_000;
        guard.accept(&key(1).verifying_key(), t(0), t(0)).unwrap();
        guard.accept(&key(2).verifying_key(), t(0), t(0)).unwrap();
        let full = guard
            .accept(&key(3).verifying_key(), t(0), t(0))
            .unwrap_err();
        assert_eq!(full, AuthError::TooManySenders { max: 2 });
        assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
        // Key 1 stays active; key 2 goes quiet for more than the window and is forgotten.
        guard.accept(&key(1).verifying_key(), t(1), t(1)).unwrap();
        guard.accept(&key(3).verifying_key(), t(2), t(2)).unwrap();
        assert_eq!(guard.senders(), 2);
        // Forgetting key 2 is safe: its old nonce is stale by now.
        let replay = guard
            .accept(&key(2).verifying_key(), t(0), t(2))
            .unwrap_err();
        assert_eq!(replay.code(), "stale");
    }

    #[test]
    fn allow_list_refuses_other_keys() {
        let guard = ReplayGuard::default();
        guard.allow_only([key(2).verifying_key()]);
        let e = verify(&signed(T0, b"a"), b"a", &guard).unwrap_err();
        assert_eq!(e.code(), "not_allowed");
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        assert_eq!(guard.senders(), 0);
        guard.allow_all();
        verify(&signed(T0, b"a"), b"a", &guard).unwrap();
    }

    #[test]
    fn answers_are_bound_to_their_request() {
        let server = key(9);
        let expect = server.verifying_key();
        let answer = sign_response(&server, CHAIN, T0, 200, b"ok").to_header_map();
        verify_response(&answer, CHAIN, T0, 200, b"ok", &expect).unwrap();
        let code = |nonce, status, body: &[u8], chain, k: &VerifyingKey| {
            verify_response(&answer, chain, nonce, status, body, k)
                .unwrap_err()
                .code()
        };
        assert_eq!(code(T0 + 1, 200, b"ok", CHAIN, &expect), "wrong_request");
        assert_eq!(code(T0, 500, b"ok", CHAIN, &expect), "bad_signature");
        assert_eq!(code(T0, 200, b"ko", CHAIN, &expect), "bad_signature");
        assert_eq!(code(T0, 200, b"ok", "deai-other", &expect), "bad_signature");
        assert_eq!(
            code(T0, 200, b"ok", CHAIN, &key(8).verifying_key()),
            "not_allowed"
        );
        // An answer re-labelled for another request still carries the old signature.
        let mut moved = answer.clone();
        moved.insert(HDR_NONCE, HeaderValue::from(T0 + 1));
        let e = verify_response(&moved, CHAIN, T0 + 1, 200, b"ok", &expect).unwrap_err();
        assert_eq!(e.code(), "bad_signature");
        // A request signature over the same bytes is no answer.
        let req = sign_request(&server, CHAIN, &me(), "POST", PATH, T0, b"ok").to_header_map();
        assert_eq!(
            verify_response(&req, CHAIN, T0, 200, b"ok", &expect)
                .unwrap_err()
                .code(),
            "bad_signature"
        );
        assert_eq!(
            verify_response(&HeaderMap::new(), CHAIN, T0, 200, b"ok", &expect)
                .unwrap_err()
                .code(),
            "unsigned"
        );
    }

    #[test]
    fn nonce_clock_is_strictly_increasing() {
        let clock = NonceClock::default();
        assert_eq!(clock.next_at(100), 100);
        assert_eq!(clock.next_at(100), 101, "same microsecond");
        assert_eq!(clock.next_at(50), 102, "clock stepped back");
        assert_eq!(clock.clone().next_at(500), 500, "clones share the sequence");
        assert_eq!(clock.next_at(400), 501);
        let threads: Vec<Vec<u64>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..1000).map(|_| clock.next()).collect()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut all: Vec<u64> = threads.concat();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "no nonce handed out twice");
        assert!(now_micros().abs_diff(clock.next()) < 10_000_000);
    }

    #[test]
    fn http_helper_reads_path_and_query_and_answers_401() {
        let guard = ReplayGuard::default();
        let now = now_micros();
        let k = key(1);
        let uri: Uri = "/v1/fed/train?round=3".parse().unwrap();
        let h = sign_request(&k, CHAIN, &me(), "POST", "/v1/fed/train?round=3", now, b"b")
            .to_header_map();
        let check = |h: &HeaderMap, uri: &Uri| {
            verify_http_request(h, &Method::POST, uri, b"b", CHAIN, &me(), &guard)
        };
        // Another query than the one signed: refused, and nothing recorded.
        let moved: Uri = "/v1/fed/train?round=4".parse().unwrap();
        assert_eq!(check(&h, &moved).unwrap_err().code, "bad_signature");
        let bare: Uri = "/v1/fed/train".parse().unwrap();
        assert_eq!(check(&h, &bare).unwrap_err().code, "bad_signature");
        let who = check(&h, &uri).unwrap();
        assert_eq!(who, k.verifying_key());
        let e = check(&h, &uri).unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::UNAUTHORIZED, "replayed"));
        let e = check(&HeaderMap::new(), &uri).unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::UNAUTHORIZED, "unsigned"));
    }

    #[test]
    fn a_request_for_another_node_is_refused_by_name() {
        let guard = ReplayGuard::default();
        let other = key(101).verifying_key();
        let h = sign_request(&key(1), CHAIN, &other, "POST", PATH, T0, b"a").to_header_map();
        let e = verify(&h, b"a", &guard).unwrap_err();
        assert_eq!(e.code(), "wrong_recipient");
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
        // Claiming this node in the header does not help: the signature names the other one.
        let mut claimed = h.clone();
        let mine = hex::encode(me().as_bytes());
        claimed.insert(HDR_TO, HeaderValue::from_str(&mine).unwrap());
        assert_eq!(
            verify(&claimed, b"a", &guard).unwrap_err().code(),
            "bad_signature"
        );
        let mut none = h.clone();
        none.remove(HDR_TO);
        assert_eq!(verify(&none, b"a", &guard).unwrap_err().code(), "unsigned");
        assert_eq!(guard.senders(), 0);
    }

    #[test]
    fn authentication_alone_takes_no_guard_slot() {
        // Finding 11: a flood of self-signed strangers that a route refuses after authenticating
        // them leaves every slot for the keys it admits.
        let guard = ReplayGuard::default().with_senders_max(4);
        for seed in 0..200u8 {
            let k = SigningKey::from_bytes(&[seed.wrapping_add(17); 32]);
            let h = sign_request(&k, CHAIN, &me(), "POST", PATH, T0, b"x").to_header_map();
            let hash = *blake3::hash(b"x").as_bytes();
            let a = authenticate(&h, CHAIN, &me(), "POST", PATH, &hash, T0).unwrap();
            assert_eq!(a.key, k.verifying_key());
        }
        assert_eq!(guard.senders(), 0);
        verify(&signed(T0, b"x"), b"x", &guard).unwrap();
        assert_eq!(guard.senders(), 1);
    }

    proptest! {
        /// Whatever order nonces arrive in, each is accepted at most once, and one inside the
        /// reorder window below the newest accepted is accepted the first time.
        #[test]
        fn every_nonce_is_accepted_at_most_once(
            offsets in proptest::collection::vec(0u64..60_000_000, 1..300),
        ) {
            let guard = ReplayGuard::default();
            let k = key(1).verifying_key();
            let reorder = REORDER_WINDOW.as_micros() as u64;
            let mut accepted = BTreeSet::new();
            let mut newest = 0u64;
            for off in offsets {
                let nonce = T0 + off;
                let fresh = !accepted.contains(&nonce);
                let in_window = newest == 0 || nonce > newest.saturating_sub(reorder);
                let ok = guard.accept(&k, nonce, T0 + 30_000_000).is_ok();
                prop_assert!(!ok || fresh, "nonce {nonce} accepted twice");
                if fresh && in_window {
                    prop_assert!(ok, "nonce {nonce} refused inside the reorder window");
                }
                if ok {
                    accepted.insert(nonce);
                    newest = newest.max(nonce);
                }
            }
        }

        #[test]
        fn any_single_byte_body_change_fails(
            body in proptest::collection::vec(any::<u8>(), 1..512),
            at in any::<prop::sample::Index>(),
            delta in 1u8..=255,
        ) {
            let guard = ReplayGuard::default();
            let h = signed(T0, &body);
            let mut changed = body.clone();
            let i = at.index(body.len());
            changed[i] = changed[i].wrapping_add(delta);
            prop_assert_eq!(verify(&h, &changed, &guard).unwrap_err(), AuthError::BadSig);
            let answer = sign_response(&key(1), CHAIN, T0, 200, &body).to_header_map();
            let e = verify_response(&answer, CHAIN, T0, 200, &changed, &key(1).verifying_key());
            prop_assert_eq!(e.unwrap_err(), AuthError::BadSig);
            prop_assert!(verify(&h, &body, &guard).is_ok());
        }

        #[test]
        fn signed_fields_never_run_into_each_other(
            a in "[a-z/]{0,6}", b in "[a-z/]{0,6}", c in "[a-z/]{0,6}",
        ) {
            // Moving bytes between chain id, method and path changes the signed message.
            let to = key(3).verifying_key();
            let ab = request_message(&a, &to, &b, &c, 1, &[0; 32]);
            let shifted = request_message(&format!("{a}{b}"), &to, "", &c, 1, &[0; 32]);
            prop_assert!(b.is_empty() || ab != shifted);
        }
    }
}
