//! `GET /v1/status` and `GET /v1/blocks/{height}`.

use axum::{
    Json,
    extract::{Path, State},
};

use super::types::{BlockView, ErrorBody, FinalityView, StatusView};
use super::{ApiError, AppState, parse};

/// The chain's height, root, peers, mempool and minimum fee.
#[utoipa::path(get, path = "/v1/status", tag = "ledger", responses((status = 200, body = StatusView)))]
pub(super) async fn status(State(app): State<AppState>) -> Result<Json<StatusView>, ApiError> {
    // Clients need the minimum fee to build a transaction; it lives in the ledger's parameters.
    let fee_min = app.chain.read_state(|s| s.params().fee_min);
    Ok(Json(StatusView::new(&app.chain.status(), fee_min)))
}

/// The genesis the chain started from (what an auditor replays from).
#[utoipa::path(get, path = "/v1/genesis", tag = "ledger", responses((status = 200, body = Object)))]
pub(super) async fn genesis(State(app): State<AppState>) -> Json<deai_ledger::Genesis> {
    Json(app.genesis.as_ref().clone())
}

/// A finalized block, its transactions in hex, receipts and events.
#[utoipa::path(get, path = "/v1/blocks/{height}", tag = "ledger",
    params(("height" = u64, Path, description = "block height")),
    responses(
        (status = 200, body = BlockView),
        (status = 404, description = "not finalized yet", body = ErrorBody),
    ))]
pub(super) async fn block(
    State(app): State<AppState>,
    Path(height): Path<String>,
) -> Result<Json<BlockView>, ApiError> {
    let height = parse::number("a block height", &height)?;
    let Some(block) = app.chain.block(height).await else {
        let tip = app.chain.status().height;
        return Err(ApiError::not_found(
            "block_not_found",
            format!("no finalized block at height {height}; the finalized tip is {tip}"),
        ));
    };
    Ok(Json(BlockView::from(block.as_ref())))
}

/// A finalized block and the certificate that finalizes it, encoded, for light clients: block
/// `h` carries the state root after `h - 1`, and the certificate shows a quorum of the validators
/// finalized it (`deai_chain::light`).
#[utoipa::path(get, path = "/v1/blocks/{height}/finality", tag = "ledger",
    params(("height" = u64, Path, description = "block height")),
    responses(
        (status = 200, body = FinalityView),
        (status = 404, description = "not finalized yet, or its certificate is not kept", body = ErrorBody),
    ))]
pub(super) async fn finality(
    State(app): State<AppState>,
    Path(height): Path<String>,
) -> Result<Json<FinalityView>, ApiError> {
    let height = parse::number("a block height", &height)?;
    match app.chain.finality(height).await {
        Some(f) => Ok(Json(f.into())),
        None => {
            let tip = app.chain.status().height;
            if height == tip + 1 {
                // A light client waits for the next block to certify what it read at the tip.
                app.chain.request_block();
            }
            Err(ApiError::not_found(
                "finality_not_found",
                format!(
                    "no finalization certificate for height {height} here; the finalized tip is {tip}"
                ),
            ))
        }
    }
}
