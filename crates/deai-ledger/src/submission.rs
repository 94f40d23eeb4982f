//! The JSON envelopes in which signed transactions travel to a node: `{"tx": "<hex>"}`, the hex
//! being the transaction's canonical encoding, and `{"txs": ["<hex>", ...]}` for a batch.
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

/// The body of a batch submission (`POST /v1/txs/batch`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSubmission {
    /// Canonical bytes of each [`SignedTx`], hex-encoded, in the order they are to be admitted.
    pub txs: Vec<String>,
}

impl BatchSubmission {
    /// The envelope of `txs`.
    pub fn of<'a>(txs: impl IntoIterator<Item = &'a SignedTx>) -> Self {
        Self {
            txs: txs.into_iter().map(|tx| hex::encode(tx.encode())).collect(),
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
    /// A batch holds more transactions than the node takes in one request.
    #[error("the batch holds {got} transactions; send at most {max} per request")]
    BatchTooLarge {
        /// Transactions in the batch.
        got: usize,
        /// The most one request may carry.
        max: usize,
    },
}

impl SubmissionError {
    /// A stable, machine-readable name of the failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Json(_) => "bad_json",
            Self::Hex(_) => "bad_hex",
            Self::Encoding(_) => "bad_tx_encoding",
            Self::BatchTooLarge { .. } => "batch_too_large",
        }
    }
}

/// Parses a submission body into a transaction, checking everything that needs no state
/// (shape, hex, canonical bounded decoding). Signatures and nonces are the ledger's later checks.
pub fn decode_submission(body: &[u8], params: &Params) -> Result<SignedTx, SubmissionError> {
    let req: Submission =
        serde_json::from_slice(body).map_err(|e| SubmissionError::Json(e.to_string()))?;
    decode_hex_tx(&req.tx, params)
}

fn decode_hex_tx(hex_tx: &str, params: &Params) -> Result<SignedTx, SubmissionError> {
    let bytes = hex::decode(hex_tx.trim()).map_err(|e| SubmissionError::Hex(e.to_string()))?;
    SignedTx::decode(&bytes, params).map_err(|e| SubmissionError::Encoding(e.to_string()))
}

/// Parses a batch body: the envelope as a whole (its shape, at most `max` entries) or an error;
/// then each entry on its own, so one bad transaction is named without refusing its neighbours.
#[allow(clippy::type_complexity)]
pub fn decode_batch(
    body: &[u8],
    params: &Params,
    max: usize,
) -> Result<Vec<Result<SignedTx, SubmissionError>>, SubmissionError> {
    let req: BatchSubmission =
        serde_json::from_slice(body).map_err(|e| SubmissionError::Json(e.to_string()))?;
    if req.txs.len() > max {
        return Err(SubmissionError::BatchTooLarge {
            got: req.txs.len(),
            max,
        });
    }
    Ok(req
        .txs
        .iter()
        .map(|hex_tx| decode_hex_tx(hex_tx, params))
        .collect())
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
    fn a_batch_names_each_bad_entry_and_keeps_the_good_ones() {
        let p = Params::default();
        let tx = signed();
        let good = hex::encode(tx.encode());
        let body = serde_json::json!({ "txs": [good, "zz", "abcd"] }).to_string();
        let items = decode_batch(body.as_bytes(), &p, 3).expect("envelope is fine");
        let codes: Vec<_> = items
            .iter()
            .map(|r| r.as_ref().map(|_| "ok").unwrap_or_else(|e| e.code()))
            .collect();
        assert_eq!(codes, ["ok", "bad_hex", "bad_tx_encoding"]);
        assert_eq!(items[0].as_ref().ok(), Some(&tx));
        let err = decode_batch(body.as_bytes(), &p, 2).expect_err("over the limit");
        assert_eq!(err.code(), "batch_too_large");
        let envelope = serde_json::to_vec(&BatchSubmission::of([&tx, &tx])).expect("serializes");
        assert_eq!(
            decode_batch(&envelope, &p, 2),
            Ok(vec![Ok(tx.clone()), Ok(tx)])
        );
        assert_eq!(
            decode_batch(b"{\"tx\": []}", &p, 2)
                .map(|_| ())
                .map_err(|e| e.code()),
            Err("bad_json")
        );
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
