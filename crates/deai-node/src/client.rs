//! An HTTP client for a node's API, used by the CLI, the demo and tests.

use std::time::Duration;

use deai_ledger::{SignedTx, TxId};
use serde::de::DeserializeOwned;
use serde_json::Value;

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
            .map_err(|source| ClientError::Unreachable {
                url: url.clone(),
                source,
            })?;
        Self::parse(url, resp).await
    }

    async fn parse<T: DeserializeOwned>(
        url: String,
        resp: reqwest::Response,
    ) -> Result<T, ClientError> {
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: url.clone(),
                source,
            })?;
        if !status.is_success() {
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let code = v["error"]["code"].as_str().unwrap_or("unknown").to_string();
            let message = v["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            return Err(ClientError::Api {
                status: status.as_u16(),
                code,
                message,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol {
            url,
            reason: e.to_string(),
        })
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<Value, ClientError> {
        self.get("/v1/status").await
    }

    /// Submits a signed transaction; returns its id.
    pub async fn submit(&self, tx: &SignedTx) -> Result<TxId, ClientError> {
        let url = format!("{}/v1/txs", self.base);
        let body = serde_json::json!({ "tx": hex::encode(tx.encode()) });
        let resp = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: url.clone(),
                source,
            })?;
        let v: Value = Self::parse(url.clone(), resp).await?;
        let id = v["id"].as_str().unwrap_or_default();
        let mut raw = [0u8; 32];
        hex::decode_to_slice(id, &mut raw).map_err(|e| ClientError::Protocol {
            url,
            reason: format!("bad tx id {id:?}: {e}"),
        })?;
        Ok(deai_ledger::Digest(raw))
    }

    /// `GET /v1/txs/{id}`; `None` while the node does not know it.
    pub async fn tx(&self, id: &TxId) -> Result<Option<Value>, ClientError> {
        match self.get(&format!("/v1/txs/{id}")).await {
            Ok(v) => Ok(Some(v)),
            Err(ClientError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Polls until the transaction is finalized (or rejected); returns its last status.
    pub async fn wait_final(&self, id: &TxId, timeout: Duration) -> Result<Value, ClientError> {
        let start = std::time::Instant::now();
        let mut last = Value::Null;
        while start.elapsed() < timeout {
            if let Some(v) = self.tx(id).await? {
                if tx_is_final(&v) {
                    return Ok(v);
                }
                last = v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(ClientError::Timeout {
            id: id.to_string(),
            waited_ms: timeout.as_millis() as u64,
            last: last.to_string(),
        })
    }
}

/// Whether a `GET /v1/txs/{id}` answer is final (finalized or rejected).
pub fn tx_is_final(v: &Value) -> bool {
    matches!(v["status"].as_str(), Some("finalized" | "rejected"))
}
