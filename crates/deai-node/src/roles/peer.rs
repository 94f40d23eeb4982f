//! Signed HTTP between role nodes: every request carries the sender's key, a fresh nonce and a
//! signature ([`crate::auth`]); every answer is signed by the receiver and bound to the request's
//! nonce, so neither side accepts an unsigned, forged, stale or replayed message.

use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::auth::{self, NonceClock};

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
        /// Its error body.
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
}

impl Peer {
    /// A signing client; `timeout` bounds each call (a peer slower than that counts as dropped).
    pub fn new(key: SigningKey, chain_id: String, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_default();
        Self {
            key,
            chain_id,
            clock: NonceClock::process(),
            http,
        }
    }

    /// This node's public key.
    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// POSTs `body` to `base` + `path`, signed; checks that the answer is signed by `expect`
    /// (when given) and returns its body.
    pub async fn post(
        &self,
        base: &str,
        path: &str,
        body: Vec<u8>,
        expect: Option<&VerifyingKey>,
    ) -> Result<Vec<u8>, PeerError> {
        let url = format!("{}{path}", base.trim_end_matches('/'));
        let nonce = self.clock.next();
        let signed = auth::sign_request(&self.key, &self.chain_id, "POST", path, nonce, &body);
        let resp = signed
            .apply(self.http.post(&url))
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .map_err(|e| PeerError::Unreachable {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(|e| PeerError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        if !(200..300).contains(&status) {
            return Err(PeerError::Refused {
                url,
                status,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        if let Some(expect) = expect {
            auth::verify_response(&headers, &self.chain_id, nonce, status, &bytes, expect)
                .map_err(|e| PeerError::BadAnswer {
                    url: url.clone(),
                    reason: e.to_string(),
                })?;
        }
        Ok(bytes.to_vec())
    }
}
