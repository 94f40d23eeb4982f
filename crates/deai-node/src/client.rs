//! An HTTP client for a node's API, used by the CLI, the demo, the roles and tests.
//!
//! Whatever a node answers is read within bounds: a success body up to the client's
//! `answer_bytes_max`, an error body up to [`ERROR_BODY_BYTES_MAX`], and what of a peer's text
//! reaches an error message is [`quote`]d (at most [`QUOTE_CHARS_MAX`] characters, no control
//! characters). Redirects are never followed: a node that answers 3xx gets no second request
//! to a URL nobody checked. [`Client::peer`] builds a client for a URL a peer chose, refusing
//! anything but plain `http(s)://host[:port][/path]` of sane length.

use std::time::Duration;

use deai_ledger::{Address, Digest, SignedTx, Tx, TxBody, TxId};
use ed25519_dalek::SigningKey;
use serde::de::DeserializeOwned;

use crate::api::types::{
    AccountView, BatchItem, BatchRequest, BatchResponse, BlockView, EligibleView, ErrorBody,
    FinalityView, ProofView, PutBlobResponse, StatusView, SubmitRequest, SubmitResponse, TxState,
};
use crate::blob_access::Identity;

/// Most bytes of an error answer read (the rest is not read at all).
pub const ERROR_BODY_BYTES_MAX: u64 = 64 << 10;
/// Most characters of a peer's text quoted in an error message.
pub const QUOTE_CHARS_MAX: usize = 300;
/// Longest URL a peer may give us.
pub const PEER_URL_BYTES_MAX: usize = 2048;
/// Most bytes of a success answer read by default (the default largest blob).
pub const ANSWER_BYTES_MAX: u64 = crate::config::BLOB_MAX_BYTES_DEFAULT;

/// Why a request to a node failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A URL given by a peer that this node will not fetch from.
    #[error("refusing URL {url}: {reason}")]
    BadUrl {
        /// The URL, quoted.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The node answered more than the client reads.
    #[error("{url} answered more than {max} bytes; refusing the rest")]
    TooLarge {
        /// The URL asked.
        url: String,
        /// The bound.
        max: u64,
    },
    /// The node could not be reached.
    #[error("cannot reach the node at {url}: {source}; is `deai node` running?")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// The cause.
        source: reqwest::Error,
    },
    /// The node answered with an error.
    #[error("the node refused: {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The stable error code.
        code: String,
        /// The node's message.
        message: String,
    },
    /// The answer was not what the API promises.
    #[error("unexpected answer from {url}: {reason}")]
    Protocol {
        /// The URL asked.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// A node served bytes that do not hash to the blob asked for: it is faulty or lying.
    #[error(
        "{url} served bytes hashing to {got}, not blob {expected}; the node is faulty or lying, fetch the blob elsewhere"
    )]
    BlobMismatch {
        /// The URL asked.
        url: String,
        /// The blob asked for.
        expected: Digest,
        /// What the served bytes hash to.
        got: Digest,
    },
    /// A node served more bytes than the caller accepts for one blob.
    #[error("{url} served more than {max} bytes for one blob; refusing the rest")]
    BlobTooLarge {
        /// The URL asked.
        url: String,
        /// The caller's limit.
        max: u64,
    },
    /// A transaction finalized but the ledger refused it inside its block, or the mempool
    /// dropped it.
    #[error("transaction {id} was refused: {reason}")]
    Refused {
        /// The transaction.
        id: TxId,
        /// The ledger's or the mempool's reason.
        reason: String,
    },
    /// A transaction did not finalize in time.
    #[error("transaction {id} not finalized after {waited_ms} ms (last status: {last})")]
    Timeout {
        /// The transaction.
        id: String,
        /// How long we waited.
        waited_ms: u64,
        /// The last status seen.
        last: String,
    },
}

/// The error an error answer stands for: the API's error shape with its code and message
/// quoted, or a quoted start of whatever else came (a redirect included).
async fn error_answer(url: String, resp: reqwest::Response) -> ClientError {
    let status = resp.status();
    let bytes = read_bounded(resp, ERROR_BODY_BYTES_MAX)
        .await
        .unwrap_or_else(|partial| partial);
    match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(ErrorBody { error }) => ClientError::Api {
            status: status.as_u16(),
            code: quote(error.code.as_bytes()),
            message: quote(error.message.as_bytes()),
        },
        Err(_) => ClientError::Protocol {
            url,
            reason: format!(
                "status {status} with a body that is not the API's error shape: {}",
                quote(&bytes)
            ),
        },
    }
}

/// The error of a request to `url` that got no answer.
fn unreachable(url: &str) -> impl Fn(reqwest::Error) -> ClientError + '_ {
    move |source| ClientError::Unreachable {
        url: url.to_string(),
        source,
    }
}

/// Reads `resp`'s body up to `max` bytes: `Err` with what was read when it is longer or broke off.
pub async fn read_bounded(mut resp: reqwest::Response, max: u64) -> Result<Vec<u8>, Vec<u8>> {
    if resp.content_length().is_some_and(|n| n > max) {
        return Err(Vec::new());
    }
    let mut bytes = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = usize::try_from(max).unwrap_or(usize::MAX) - bytes.len();
                if chunk.len() > room {
                    bytes.extend_from_slice(&chunk[..room]);
                    return Err(bytes);
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(bytes),
            Err(_) => return Err(bytes),
        }
    }
}

/// A peer's bytes as they may appear in a message: UTF-8 (lossy), control characters shown as
/// `�`, at most [`QUOTE_CHARS_MAX`] characters, a longer text marked as cut.
pub fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text
        .chars()
        .take(QUOTE_CHARS_MAX)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if text.chars().nth(QUOTE_CHARS_MAX).is_some() {
        out.push_str(&format!(" [cut: {} bytes in all]", bytes.len()));
    }
    out
}

/// Checks a URL a peer chose before anything is fetched from it: `http` or `https`, a host, no
/// credentials, no fragment, at most [`PEER_URL_BYTES_MAX`] bytes.
pub fn check_peer_url(url: &str) -> Result<reqwest::Url, ClientError> {
    let bad = |reason| ClientError::BadUrl {
        url: quote(url.as_bytes()),
        reason,
    };
    if url.len() > PEER_URL_BYTES_MAX {
        return Err(bad("longer than 2048 bytes"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| bad("not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("only http and https are fetched"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("credentials in a URL are refused"));
    }
    if parsed.fragment().is_some() || parsed.query().is_some() {
        return Err(bad("a base URL has no query or fragment"));
    }
    Ok(parsed)
}

fn http_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
}

/// A client of one node's HTTP API.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    answer_bytes_max: u64,
}

impl Client {
    /// A client for the node at `base` (e.g. `http://127.0.0.1:7650`).
    pub fn new(base: impl Into<String>) -> Self {
        let base = base.into().trim_end_matches('/').to_string();
        let http = http_builder()
            .build()
            .expect("a client with a timeout and no redirects always builds");
        Self {
            base,
            http,
            answer_bytes_max: ANSWER_BYTES_MAX,
        }
    }

    /// The same client with its connections made from the local address `local` (one of the
    /// loopback addresses, say, to act as another host on one machine).
    pub fn bound_to(mut self, local: std::net::IpAddr) -> Self {
        self.http = http_builder()
            .local_address(local)
            .build()
            .expect("a client with a timeout, no redirects and a local address always builds");
        self
    }

    /// A client for a URL a peer chose ([`check_peer_url`] first).
    pub fn peer(base: &str) -> Result<Self, ClientError> {
        check_peer_url(base)?;
        Ok(Self::new(base))
    }

    /// Reads at most `max` bytes of a success answer.
    pub fn with_answer_bytes_max(mut self, max: u64) -> Self {
        self.answer_bytes_max = max;
        self
    }

    /// The node's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path`, parsed as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(unreachable(&url))?;
        self.parse(url, resp).await
    }

    async fn parse<T: DeserializeOwned>(
        &self,
        url: String,
        resp: reqwest::Response,
    ) -> Result<T, ClientError> {
        let status = resp.status();
        if !status.is_success() {
            return Err(error_answer(url, resp).await);
        }
        let max = self.answer_bytes_max;
        let bytes = read_bounded(resp, max)
            .await
            .map_err(|_| ClientError::TooLarge {
                url: url.clone(),
                max,
            })?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol {
            url,
            reason: e.to_string(),
        })
    }

    /// `POST path` with raw `body` and extra `headers`; the answer's headers and body on
    /// success. A refusal is [`ClientError::Api`], with the answer's headers beside it.
    pub async fn post_octets(
        &self,
        path: &str,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> Result<(reqwest::header::HeaderMap, Vec<u8>), (ClientError, reqwest::header::HeaderMap)>
    {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| (unreachable(&url)(e), Default::default()))?;
        let answer_headers = resp.headers().clone();
        if !resp.status().is_success() {
            return Err((error_answer(url, resp).await, answer_headers));
        }
        let max = self.answer_bytes_max;
        let bytes = read_bounded(resp, max).await.map_err(|_| {
            (
                ClientError::TooLarge {
                    url: url.clone(),
                    max,
                },
                answer_headers.clone(),
            )
        })?;
        Ok((answer_headers, bytes))
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<StatusView, ClientError> {
        self.get("/v1/status").await
    }

    /// `GET /v1/accounts/{address}`.
    pub async fn account(&self, address: &Address) -> Result<AccountView, ClientError> {
        self.get(&format!("/v1/accounts/{address}")).await
    }

    /// `GET /v1/blocks/{height}`.
    pub async fn block(&self, height: u64) -> Result<BlockView, ClientError> {
        self.get(&format!("/v1/blocks/{height}")).await
    }

    /// `GET /v1/blocks/{height}/finality`.
    pub async fn finality(&self, height: u64) -> Result<FinalityView, ClientError> {
        self.get(&format!("/v1/blocks/{height}/finality")).await
    }

    /// `GET /v1/validators`.
    pub async fn validators(&self) -> Result<crate::api::types::ValidatorsView, ClientError> {
        self.get("/v1/validators").await
    }

    /// `GET /v1/epochs/{epoch}/change`.
    pub async fn set_change(
        &self,
        epoch: u64,
    ) -> Result<crate::api::types::SetChangeView, ClientError> {
        self.get(&format!("/v1/epochs/{epoch}/change")).await
    }

    /// `GET /v1/proofs/{kind}/{id}`.
    pub async fn proof(&self, kind: &str, id: &str) -> Result<ProofView, ClientError> {
        self.get(&format!("/v1/proofs/{kind}/{id}")).await
    }

    /// `GET /v1/proposals`, newest first; with `status`, only those in it (`voting`, `passed`,
    /// `rejected`, `vetoed`, `no_quorum`, `executed`).
    pub async fn proposals(
        &self,
        status: Option<&str>,
    ) -> Result<Vec<crate::api::types::ProposalView>, ClientError> {
        let Some(status) = status else {
            return self.get("/v1/proposals").await;
        };
        // Encoded as a form value, so whatever a caller passes stays one query parameter.
        let mut url = reqwest::Url::parse("http://query.invalid/").expect("a fixed valid URL");
        url.query_pairs_mut().append_pair("status", status);
        let query = url.query().unwrap_or_default();
        self.get(&format!("/v1/proposals?{query}")).await
    }

    /// `GET /v1/proposals/{id}`.
    pub async fn proposal(
        &self,
        id: u64,
    ) -> Result<crate::api::types::ProposalDetailView, ClientError> {
        self.get(&format!("/v1/proposals/{id}")).await
    }

    /// `GET /v1/governance`.
    pub async fn governance(&self) -> Result<crate::api::types::GovernanceView, ClientError> {
        self.get("/v1/governance").await
    }

    /// `GET /v1/tasks/{task}/eligible`.
    pub async fn eligible(&self, task: u64) -> Result<EligibleView, ClientError> {
        self.get(&format!("/v1/tasks/{task}/eligible")).await
    }

    /// Submits a signed transaction; returns its id.
    pub async fn submit(&self, tx: &SignedTx) -> Result<TxId, ClientError> {
        let answer: SubmitResponse = self.post_json("/v1/txs", &SubmitRequest::of(tx)).await?;
        Ok(answer.id)
    }

    /// Submits many signed transactions in one request (`POST /v1/txs/batch`, at most the node's
    /// `http.batch_txs_max`); returns what became of each, in order.
    pub async fn submit_batch(&self, txs: &[SignedTx]) -> Result<Vec<BatchItem>, ClientError> {
        let answer: BatchResponse = self
            .post_json("/v1/txs/batch", &BatchRequest::of(txs))
            .await?;
        Ok(answer.results)
    }

    /// POSTs `body` as JSON to `path` and reads the answer.
    async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .post(&url)
            .json(body)
            .send()
            .await
            .map_err(unreachable(&url))?;
        self.parse(url, resp).await
    }

    /// `GET /v1/txs/{id}`; `None` while the node does not know it.
    pub async fn tx(&self, id: &TxId) -> Result<Option<TxState>, ClientError> {
        match self.get(&format!("/v1/txs/{id}")).await {
            Ok(v) => Ok(Some(v)),
            Err(ClientError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Polls until the transaction is final (finalized or dropped); returns that state.
    pub async fn wait_final(&self, id: &TxId, timeout: Duration) -> Result<TxState, ClientError> {
        let start = std::time::Instant::now();
        let mut last = None;
        while start.elapsed() < timeout {
            if let Some(state) = self.tx(id).await? {
                if state.is_final() {
                    return Ok(state);
                }
                last = Some(state);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(ClientError::Timeout {
            id: id.to_string(),
            waited_ms: timeout.as_millis() as u64,
            last: last.map_or_else(|| "unknown".into(), |s| format!("{s:?}")),
        })
    }

    /// Signs `body` with `key` at the sender's next nonce (asked of the node), offering `fee`
    /// (the ledger's minimum if `None`), submits it and, with `wait`, waits that long for it to
    /// be final. A transaction the ledger refused inside its block, or the mempool dropped, is
    /// [`ClientError::Refused`]: final is not the same as applied.
    pub async fn send(
        &self,
        key: &SigningKey,
        body: TxBody,
        fee: Option<u128>,
        wait: Option<Duration>,
    ) -> Result<Sent, ClientError> {
        let sender = Address(key.verifying_key().to_bytes());
        let status = self.status().await?;
        let account = self.account(&sender).await?;
        let tx = Tx {
            chain_id: status.chain_id,
            sender,
            nonce: account.account.nonce,
            fee: fee.unwrap_or(status.fee_min),
            body,
        };
        let id = self.submit(&SignedTx::sign(tx, key)).await?;
        let Some(wait) = wait else {
            return Ok(Sent { id, state: None });
        };
        let state = self.wait_final(&id, wait).await?;
        match &state {
            TxState::Finalized { applied: true, .. } => Ok(Sent {
                id,
                state: Some(state),
            }),
            TxState::Finalized { receipt, .. } => Err(ClientError::Refused {
                id,
                reason: match &receipt.result {
                    Err(e) => e.to_string(),
                    Ok(()) => "not applied".into(),
                },
            }),
            TxState::Rejected { code, reason } => Err(ClientError::Refused {
                id,
                reason: format!("{code}: {reason}"),
            }),
            TxState::Pending => Err(ClientError::Protocol {
                url: self.base.clone(),
                reason: "a pending transaction was reported final".into(),
            }),
        }
    }
}

/// A submitted transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Its id.
    pub id: TxId,
    /// Its final state, when the sender waited for it (always applied).
    pub state: Option<TxState>,
}

impl Client {
    /// `GET /v1/identity`: the key and chain a signed request to this node must name.
    pub async fn identity(&self) -> Result<Identity, ClientError> {
        self.get("/v1/identity").await
    }

    /// The chain id and key a blob upload to this node is signed for (what [`Client::put_blob`]
    /// asks before each upload), for callers that upload many ([`Client::put_blob_to`]).
    pub async fn blob_recipient(
        &self,
    ) -> Result<(String, ed25519_dalek::VerifyingKey), ClientError> {
        let id = self.identity().await?;
        let key = parse_identity_key(&self.base, &id)?;
        Ok((id.chain_id, key))
    }

    /// Uploads `bytes` to the node's blob store (`PUT /v1/blobs/{hash}`), signed with `key` for
    /// the node as it names itself ([`Client::identity`]); returns their hash. Storing a blob
    /// the node already holds is fine. The node stores it only from a key it accepts (its own,
    /// one it lists, or a funded ledger account).
    pub async fn put_blob(&self, key: &SigningKey, bytes: &[u8]) -> Result<Digest, ClientError> {
        let (chain_id, to) = self.blob_recipient().await?;
        self.put_blob_to(key, &chain_id, &to, bytes).await
    }

    /// [`Client::put_blob`] for a node whose key the caller knows (from the ledger): signed for
    /// `to` on `chain_id`, so no other node accepts it.
    pub async fn put_blob_to(
        &self,
        key: &SigningKey,
        chain_id: &str,
        to: &ed25519_dalek::VerifyingKey,
        bytes: &[u8],
    ) -> Result<Digest, ClientError> {
        let hash = crate::blobs::hash_bytes(bytes);
        let path = format!("/v1/blobs/{hash}");
        let url = format!("{}{path}", self.base);
        let nonce = crate::auth::NonceClock::process().next();
        let signed =
            crate::auth::sign_request_hashed(key, chain_id, to, "PUT", &path, nonce, &hash.0);
        let resp = signed
            .apply(self.http.put(&url))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .map_err(unreachable(&url))?;
        let answer: PutBlobResponse = self.parse(url.clone(), resp).await?;
        if answer.hash != hash || answer.size != bytes.len() as u64 {
            return Err(ClientError::Protocol {
                url,
                reason: format!(
                    "stored {} ({} bytes), not {hash} ({} bytes)",
                    answer.hash,
                    answer.size,
                    bytes.len()
                ),
            });
        }
        Ok(hash)
    }

    /// Downloads blob `hash` and checks that the bytes hash to it, refusing more than
    /// [`BLOB_DOWNLOAD_MAX_BYTES`].
    pub async fn get_blob(&self, hash: &Digest) -> Result<Vec<u8>, ClientError> {
        self.get_blob_max(hash, BLOB_DOWNLOAD_MAX_BYTES).await
    }

    /// Like [`Client::get_blob`], refusing more than `max_bytes` (the download stops there).
    pub async fn get_blob_max(
        &self,
        hash: &Digest,
        max_bytes: u64,
    ) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}/v1/blobs/{hash}", self.base);
        let mut resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(unreachable(&url))?;
        if !resp.status().is_success() {
            return Err(error_answer(url, resp).await);
        }
        let too_large = || ClientError::BlobTooLarge {
            url: url.clone(),
            max: max_bytes,
        };
        if resp.content_length().is_some_and(|n| n > max_bytes) {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        let mut hasher = blake3::Hasher::new();
        while let Some(chunk) = resp.chunk().await.map_err(unreachable(&url))? {
            if (bytes.len() + chunk.len()) as u64 > max_bytes {
                return Err(too_large());
            }
            hasher.update(&chunk);
            bytes.extend_from_slice(&chunk);
        }
        let got = Digest(*hasher.finalize().as_bytes());
        if got != *hash {
            return Err(ClientError::BlobMismatch {
                url,
                expected: *hash,
                got,
            });
        }
        Ok(bytes)
    }
}

/// The recipient key a node names in its identity.
fn parse_identity_key(
    base: &str,
    id: &Identity,
) -> Result<ed25519_dalek::VerifyingKey, ClientError> {
    let mut raw = [0u8; 32];
    hex::decode_to_slice(&id.key, &mut raw)
        .ok()
        .and_then(|()| ed25519_dalek::VerifyingKey::from_bytes(&raw).ok())
        .ok_or_else(|| ClientError::Protocol {
            url: format!("{base}/v1/identity"),
            reason: format!("{} is not an ed25519 public key", quote(id.key.as_bytes())),
        })
}

/// The most bytes [`Client::get_blob`] accepts for one blob: the default blob limit of a node.
pub const BLOB_DOWNLOAD_MAX_BYTES: u64 = crate::config::BLOB_MAX_BYTES_DEFAULT;
