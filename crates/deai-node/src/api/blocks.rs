//! `GET /v1/status` and `GET /v1/blocks/{height}`.

use axum::{
    Json,
    extract::{Path, State},
};

use super::types::{BlockView, ErrorBody, StatusView};
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
