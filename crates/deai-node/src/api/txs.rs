//! `POST /v1/txs` (submit a signed transaction) and `GET /v1/txs/{id}` (its status and receipt).

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
};
use deai_ledger::SignedTx;

use super::types::{ErrorBody, SubmitRequestSchema, SubmitResponse, TxState};
use super::{ApiError, AppState, parse};

/// Parses a submission body into a transaction, checking everything that needs no state
/// ([`deai_ledger::submission::decode_submission`], which the fuzz target `submission_decode`
/// drives), and names the failure as a 400.
pub fn decode_submission(body: &[u8], params: &deai_ledger::Params) -> Result<SignedTx, ApiError> {
    deai_ledger::submission::decode_submission(body, params)
        .map_err(|e| ApiError::bad_request(e.code(), e.to_string()))
}

/// Submit a signed transaction.
#[utoipa::path(post, path = "/v1/txs", tag = "ledger",
    request_body = SubmitRequestSchema,
    responses(
        (status = 202, description = "accepted into the mempool", body = SubmitResponse),
        (status = 400, description = "not a well-formed transaction", body = ErrorBody),
        (status = 415, description = "not sent as application/json", body = ErrorBody),
        (status = 422, description = "refused by the mempool (nonce, fee, balance)", body = ErrorBody),
        (status = 503, description = "mempool full, or the sender's share of it", body = ErrorBody),
    ))]
pub(super) async fn submit(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<SubmitResponse>), ApiError> {
    super::content_type::require_json(&headers)?;
    let params = app.chain.read_state(|s| s.params().clone());
    let tx = match decode_submission(&body, &params) {
        Ok(tx) => tx,
        Err(e) => {
            // It never reached the chain, which counts the rejections it makes itself.
            app.chain.count_rejected(e.code);
            return Err(e);
        }
    };
    match app.chain.submit(tx).await {
        Ok(id) => Ok((StatusCode::ACCEPTED, Json(SubmitResponse { id }))),
        Err(e) => {
            let code = e.code();
            // Both pass once transactions finalize: retrying later may work.
            let err = if matches!(code, "mempool_full" | "sender_mempool_full") {
                ApiError::unavailable(code, e.to_string())
            } else {
                ApiError::rejected(code, e.to_string())
            };
            Err(err)
        }
    }
}

/// Where a transaction stands: pending, finalized (with its receipt) or dropped.
#[utoipa::path(get, path = "/v1/txs/{id}", tag = "ledger",
    params(("id" = String, Path, description = "transaction id, hex")),
    responses(
        (status = 200, body = TxState),
        (status = 404, description = "unknown to this node", body = ErrorBody),
    ))]
pub(super) async fn status(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TxState>, ApiError> {
    let id = parse::tx_id(&id)?;
    TxState::new(&app.chain.tx_status(&id).await)
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(
                "tx_not_found",
                format!("no transaction {id} is known to this node"),
            )
        })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any body at all is either a valid transaction or a 400 with a named code; never a panic.
        #[test]
        fn any_body_decodes_or_is_a_named_400(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let params = deai_ledger::Params::default();
            match decode_submission(&body, &params) {
                Ok(tx) => prop_assert_eq!(SignedTx::decode(&tx.encode(), &params).ok(), Some(tx)),
                Err(e) => {
                    prop_assert_eq!(e.status, StatusCode::BAD_REQUEST);
                    prop_assert!(["bad_json", "bad_hex", "bad_tx_encoding"].contains(&e.code));
                }
            }
        }

        /// Hex of arbitrary bytes inside well-formed JSON reaches the transaction decoder and is refused
        /// there, by name.
        #[test]
        fn any_hex_payload_is_checked_by_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let body = serde_json::json!({ "tx": hex::encode(&bytes) }).to_string();
            let params = deai_ledger::Params::default();
            if let Err(e) = decode_submission(body.as_bytes(), &params) {
                prop_assert_eq!(e.code, "bad_tx_encoding");
            }
        }
    }

    #[test]
    fn a_signed_transaction_round_trips_through_the_body() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
        let tx = SignedTx::sign(
            deai_ledger::Tx {
                chain_id: "deai-dev".into(),
                sender: deai_ledger::Address(key.verifying_key().to_bytes()),
                nonce: 0,
                fee: 1,
                body: deai_ledger::TxBody::Transfer(deai_ledger::tx::Transfer {
                    to: deai_ledger::Address([1; 32]),
                    amount: 5,
                }),
            },
            &key,
        );
        let body = serde_json::json!({ "tx": hex::encode(tx.encode()) }).to_string();
        let back =
            decode_submission(body.as_bytes(), &deai_ledger::Params::default()).expect("decodes");
        assert_eq!(back, tx);
    }
}
