//! `POST /v1/txs` (submit a signed transaction) and `GET /v1/txs/{id}` (its status and receipt).

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use deai_ledger::SignedTx;

use super::types::{
    BatchItem, BatchRequestSchema, BatchResponse, ErrorBody, SubmitRequestSchema, SubmitResponse,
    TxState,
};
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
        Err(e) => Err(refusal(&e)),
    }
}

/// The answer for a transaction the chain refused.
fn refusal(e: &deai_chain::MempoolError) -> ApiError {
    let code = e.code();
    // Both pass once transactions finalize: retrying later may work.
    if matches!(code, "mempool_full" | "sender_mempool_full") {
        ApiError::unavailable(code, e.to_string())
    } else {
        ApiError::rejected(code, e.to_string())
    }
}

/// Submit many signed transactions in one request.
///
/// Each is admitted in order with the verdict `POST /v1/txs` would give it alone (a later one
/// sees the earlier ones in the mempool); their signatures are checked in batches, and the HTTP
/// and JSON work is paid once. The answer lists what became of each. The per-IP write limit
/// counts one write per transaction.
#[utoipa::path(post, path = "/v1/txs/batch", tag = "ledger",
    request_body = BatchRequestSchema,
    responses(
        (status = 200, description = "each transaction's outcome, in order", body = BatchResponse),
        (status = 400, description = "not a batch envelope", body = ErrorBody),
        (status = 413, description = "more transactions than http.batch_txs_max", body = ErrorBody),
        (status = 415, description = "not sent as application/json", body = ErrorBody),
        (status = 429, description = "over the per-IP write limit; nothing was admitted", body = ErrorBody),
    ))]
pub(super) async fn submit_batch(
    State(app): State<AppState>,
    charge: Option<Extension<crate::http::WriteCharge>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<BatchResponse>, Response> {
    super::content_type::require_json(&headers).map_err(IntoResponse::into_response)?;
    let params = app.chain.read_state(|s| s.params().clone());
    let items =
        deai_ledger::submission::decode_batch(&body, &params, app.batch_txs_max).map_err(|e| {
            let status = match e {
                deai_ledger::submission::SubmissionError::BatchTooLarge { .. } => {
                    StatusCode::PAYLOAD_TOO_LARGE
                }
                _ => StatusCode::BAD_REQUEST,
            };
            ApiError {
                status,
                code: e.code(),
                message: e.to_string(),
            }
            .into_response()
        })?;
    // The middleware charged the request as one write; the rest are charged before any work.
    if let Some(Extension(charge)) = charge {
        let extra = u32::try_from(items.len().saturating_sub(1)).unwrap_or(u32::MAX);
        charge.charge(extra).map_err(IntoResponse::into_response)?;
    }
    let mut results: Vec<Option<BatchItem>> = Vec::with_capacity(items.len());
    let mut txs = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Ok(tx) => {
                txs.push(tx);
                results.push(None);
            }
            Err(e) => {
                app.chain.count_rejected(e.code());
                results.push(Some(BatchItem::Rejected {
                    code: e.code().to_string(),
                    message: e.to_string(),
                }));
            }
        }
    }
    // Signature batches run on rayon's threads; keep the async workers free meanwhile.
    let chain = app.chain.clone();
    let admitted = tokio::task::spawn_blocking(move || chain.submit_batch(txs))
        .await
        .map_err(|e| ApiError::internal(format!("batch admission failed: {e}")).into_response())?;
    let mut admitted = admitted.into_iter();
    let results = results
        .into_iter()
        .map(|slot| {
            slot.or_else(|| {
                admitted.next().map(|r| match r {
                    Ok(id) => BatchItem::Accepted { id },
                    Err(e) => {
                        let err = refusal(&e);
                        BatchItem::Rejected {
                            code: err.code.to_string(),
                            message: err.message,
                        }
                    }
                })
            })
            .unwrap_or_else(|| BatchItem::Rejected {
                code: "internal".into(),
                message: "no verdict was returned for this transaction".into(),
            })
        })
        .collect();
    Ok(Json(BatchResponse { results }))
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
