//! An HTTP client for a node's API, used by the CLI, the demo and tests.

use std::time::Duration;

use deai_ledger::{Address, Digest, SignedTx, Tx, TxBody, TxId};
use ed25519_dalek::SigningKey;
use serde::de::DeserializeOwned;

use crate::api::types::{
    AccountView, BlockView, EligibleView, ErrorBody, ProofView, PutBlobResponse, StatusView,
    SubmitRequest, SubmitResponse, TxState,
};

/// Why a request to a node failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
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

/// The error of a request to `url` that got no answer.
fn unreachable(url: &str) -> impl Fn(reqwest::Error) -> ClientError + '_ {
    move |source| ClientError::Unreachable {
        url: url.to_string(),
        source,
    }
}

/// A client of one node's HTTP API.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for the node at `base` (e.g. `http://127.0.0.1:7650`).
    pub fn new(base: impl Into<String>) -> Self {
        let base = base.into().trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a client with only a timeout always builds");
        Self { base, http }
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
        Self::parse(url, resp).await
    }

    async fn parse<T: DeserializeOwned>(
        url: String,
        resp: reqwest::Response,
    ) -> Result<T, ClientError> {
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(unreachable(&url))?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(ErrorBody { error }) => ClientError::Api {
                    status: status.as_u16(),
                    code: error.code,
                    message: error.message,
                },
                Err(_) => ClientError::Protocol {
                    url,
                    reason: format!(
                        "status {status} with a body that is not the API's error shape: {}",
                        String::from_utf8_lossy(&bytes)
                    ),
                },
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol {
            url,
            reason: e.to_string(),
        })
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

    /// `GET /v1/proofs/{kind}/{id}`.
    pub async fn proof(&self, kind: &str, id: &str) -> Result<ProofView, ClientError> {
        self.get(&format!("/v1/proofs/{kind}/{id}")).await
    }

    /// `GET /v1/tasks/{task}/eligible`.
    pub async fn eligible(&self, task: u64) -> Result<EligibleView, ClientError> {
        self.get(&format!("/v1/tasks/{task}/eligible")).await
    }

    /// Submits a signed transaction; returns its id.
    pub async fn submit(&self, tx: &SignedTx) -> Result<TxId, ClientError> {
        let url = format!("{}/v1/txs", self.base);
        let body = SubmitRequest::of(tx);
        let resp = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(unreachable(&url))?;
        let answer: SubmitResponse = Self::parse(url, resp).await?;
        Ok(answer.id)
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
    /// Uploads `bytes` to the node's blob store (`PUT /v1/blobs/{hash}`); returns their hash.
    /// Storing a blob the node already holds is fine.
    pub async fn put_blob(&self, bytes: &[u8]) -> Result<Digest, ClientError> {
        let hash = crate::blobs::hash_bytes(bytes);
        let url = format!("{}/v1/blobs/{hash}", self.base);
        let resp = self
            .http
            .put(&url)
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .map_err(unreachable(&url))?;
        let answer: PutBlobResponse = Self::parse(url.clone(), resp).await?;
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
            return Err(Self::parse::<serde::de::IgnoredAny>(url.clone(), resp)
                .await
                .err()
                .unwrap_or_else(|| ClientError::Protocol {
                    url: url.clone(),
                    reason: "an error status with a success body".into(),
                }));
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

/// The most bytes [`Client::get_blob`] accepts for one blob: the default blob limit of a node.
pub const BLOB_DOWNLOAD_MAX_BYTES: u64 = crate::config::BLOB_MAX_BYTES_DEFAULT;
