//! The JSON envelope in which a signed transaction travels to a node: `{"tx": "<hex>"}`, the hex
//! being the transaction's canonical encoding.
//!
//! It lives beside the binary encoding rather than in the node so that every decoder of outside
//! input is in one pure crate: the fuzz target `submission_decode` drives exactly what the node's
//! `POST /v1/txs` runs before a transaction reaches the mempool.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{Params, SignedTx};

/// The body of a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// Canonical bytes of a [`SignedTx`], hex-encoded.
    pub tx: String,
}

impl Submission {
    /// The envelope of `tx`.
    pub fn of(tx: &SignedTx) -> Self {
        Self {
            tx: hex::encode(tx.encode()),
        }
    }
}

/// Why a submission body is not a transaction. Each variant has a stable [`code`](Self::code).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SubmissionError {
    /// Not JSON of the right shape.
    #[error("body must be JSON {{\"tx\": \"<hex>\"}}: {0}")]
    Json(String),
    /// The `tx` field is not hex.
    #[error("field `tx` is not valid hex: {0}")]
    Hex(String),
    /// The bytes are not a canonically encoded transaction.
    #[error("field `tx` is not a valid transaction: {0}")]
    Encoding(String),
}

impl SubmissionError {
    /// A stable, machine-readable name of the failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Json(_) => "bad_json",
            Self::Hex(_) => "bad_hex",
            Self::Encoding(_) => "bad_tx_encoding",
        }
    }
}

/// Parses a submission body into a transaction, checking everything that needs no state
/// (shape, hex, canonical bounded decoding). Signatures and nonces are the ledger's later checks.
pub fn decode_submission(body: &[u8], params: &Params) -> Result<SignedTx, SubmissionError> {
    let req: Submission =
        serde_json::from_slice(body).map_err(|e| SubmissionError::Json(e.to_string()))?;
    let bytes = hex::decode(req.tx.trim()).map_err(|e| SubmissionError::Hex(e.to_string()))?;
    SignedTx::decode(&bytes, params).map_err(|e| SubmissionError::Encoding(e.to_string()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{Address, Transfer, Tx, TxBody};

    fn signed() -> SignedTx {
        let key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
        SignedTx::sign(
            Tx {
                chain_id: "deai-dev".into(),
                sender: Address(key.verifying_key().to_bytes()),
                nonce: 0,
                fee: 1,
                body: TxBody::Transfer(Transfer {
                    to: Address([1; 32]),
                    amount: 5,
                }),
            },
            &key,
        )
    }

    proptest! {
        /// Any body at all is either a valid transaction that re-encodes to itself or a named error.
        #[test]
        fn any_body_decodes_or_is_named(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let params = Params::default();
            match decode_submission(&body, &params) {
                Ok(tx) => prop_assert_eq!(SignedTx::decode(&tx.encode(), &params).ok(), Some(tx)),
                Err(e) => prop_assert!(["bad_json", "bad_hex", "bad_tx_encoding"].contains(&e.code())),
            }
        }

        /// Hex of arbitrary bytes inside well-formed JSON reaches the transaction decoder.
        #[test]
        fn any_hex_payload_is_checked_by_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let body = serde_json::json!({ "tx": hex::encode(&bytes) }).to_string();
            if let Err(e) = decode_submission(body.as_bytes(), &Params::default()) {
                prop_assert_eq!(e.code(), "bad_tx_encoding");
            }
        }
    }

    #[test]
    fn a_signed_transaction_round_trips_through_the_envelope() {
        let tx = signed();
        let body = serde_json::to_vec(&Submission::of(&tx)).expect("serializes");
        assert_eq!(decode_submission(&body, &Params::default()), Ok(tx));
    }

    #[test]
    fn each_layer_names_its_failure() {
        let p = Params::default();
        let code = |b: &[u8]| decode_submission(b, &p).map(|_| ()).map_err(|e| e.code());
        assert_eq!(code(b"{\"tx\": 5}"), Err("bad_json"));
        assert_eq!(code(b"{\"tx\": \"ab\", \"x\": 1}"), Err("bad_json"));
        assert_eq!(code(b"{\"tx\": \"zz\"}"), Err("bad_hex"));
        assert_eq!(code(b"{\"tx\": \"abcd\"}"), Err("bad_tx_encoding"));
    }
}
