//! Signed HTTP between role nodes: every request carries the sender's key, a fresh nonce, the
//! recipient's key and a signature ([`crate::auth`]); every answer is signed by the receiver and
//! bound to the request's nonce, so neither side accepts an unsigned, forged, stale, replayed or
//! misdirected message.
//!
//! A peer's answer is read only up to a bound (`[access] peer_answer_bytes_max`), an error
//! answer only up to [`crate::client::ERROR_BODY_BYTES_MAX`] and quoted short and without control
//! characters; redirects are not followed.

use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::{
    auth::{self, NonceClock},
    client::{self, Client},
};

/// Why a signed call failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The peer could not be reached (or did not answer in time): treated as a dropout.
    #[error("peer {url} unreachable: {reason}")]
    Unreachable {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// The peer refused the request.
    #[error("peer {url} refused ({status}): {body}")]
    Refused {
        /// Where.
        url: String,
        /// HTTP status.
        status: u16,
        /// Its error body, truncated and without control characters.
        body: String,
    },
    /// The answer's signature did not check out.
    #[error("peer {url} answered with a bad signature: {reason}")]
    BadAnswer {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
}

/// A client that signs its requests with this node's key.
#[derive(Clone)]
pub struct Peer {
    key: SigningKey,
    chain_id: String,
    clock: NonceClock,
    http: reqwest::Client,
    answer_bytes_max: u64,
}

impl Peer {
    /// A signing client; `timeout` bounds each call (a peer slower than that counts as dropped).
    pub fn new(key: SigningKey, chain_id: String, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            key,
            chain_id,
            clock: NonceClock::process(),
            http,
            answer_bytes_max: crate::config::AccessConfig::default().peer_answer_bytes_max,
        }
    }

    /// Reads at most `max` bytes of one answer.
    pub fn with_answer_bytes_max(mut self, max: u64) -> Self {
        self.answer_bytes_max = max;
        self
    }

    /// This node's public key.
    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// POSTs `body` to `base` + `path`, signed for the node whose key is `expect`, and checks that
    /// the answer is signed by it; returns the answer's body. Without `expect` (an owner
    /// announcing itself to a coordinator it knows only by URL), the recipient's key is asked of
    /// the node itself (`GET /v1/identity`) and the answer is checked against that key.
    pub async fn post(
        &self,
        base: &str,
        path: &str,
        body: Vec<u8>,
        expect: Option<&VerifyingKey>,
    ) -> Result<Vec<u8>, PeerError> {
        let url = format!("{}{path}", base.trim_end_matches('/'));
        let unreachable = |reason: String| PeerError::Unreachable {
            url: url.clone(),
            reason,
        };
        let to = match expect {
            Some(k) => *k,
            None => self.identity_of(base).await.map_err(unreachable)?,
        };
        let nonce = self.clock.next();
        let signed = auth::sign_request(&self.key, &self.chain_id, &to, "POST", path, nonce, &body);
        let resp = signed
            .apply(self.http.post(&url))
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if !(200..300).contains(&status) {
            let bytes = client::read_bounded(resp, client::ERROR_BODY_BYTES_MAX)
                .await
                .unwrap_or_else(|partial| partial);
            return Err(PeerError::Refused {
                url,
                status,
                body: client::quote(&bytes),
            });
        }
        let bytes = client::read_bounded(resp, self.answer_bytes_max)
            .await
            .map_err(|_| {
                unreachable(format!(
                    "answered more than {} bytes (`peer_answer_bytes_max`)",
                    self.answer_bytes_max
                ))
            })?;
        auth::verify_response(&headers, &self.chain_id, nonce, status, &bytes, &to).map_err(
            |e| PeerError::BadAnswer {
                url: url.clone(),
                reason: e.to_string(),
            },
        )?;
        Ok(bytes)
    }

    /// The key the node at `base` signs with, as it says itself (`GET /v1/identity`).
    async fn identity_of(&self, base: &str) -> Result<VerifyingKey, String> {
        let id = Client::peer(base)
            .map_err(|e| e.to_string())?
            .identity()
            .await
            .map_err(|e| e.to_string())?;
        if id.chain_id != self.chain_id {
            return Err(format!(
                "it serves chain {}, not {}",
                client::quote(id.chain_id.as_bytes()),
                self.chain_id
            ));
        }
        let mut raw = [0u8; 32];
        hex::decode_to_slice(&id.key, &mut raw)
            .ok()
            .and_then(|()| VerifyingKey::from_bytes(&raw).ok())
            .ok_or_else(|| "its identity is not an ed25519 key".to_string())
    }
}
