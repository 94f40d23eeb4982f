//! `GET /v1/status` and `GET /v1/blocks/{height}`.

use axum::{
    Json,
    extract::{Path, State},
};

use super::{ApiError, AppState, parse, txs::internal, views};

pub(super) async fn status(
    State(app): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    // Clients need the minimum fee to build a transaction; it lives in the ledger's parameters.
    let fee_min = app.chain.read_state(|s| s.params().fee_min);
    Ok(Json(views::status(&app.chain.status(), fee_min)))
}

pub(super) async fn genesis(
    State(app): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(serde_json::to_value(&*app.genesis).map_err(internal)?))
}

pub(super) async fn block(
    State(app): State<AppState>,
    Path(height): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let height = parse::number("a block height", &height)?;
    let Some(block) = app.chain.block(height) else {
        let tip = app.chain.status().height;
        return Err(ApiError::not_found(
            "block_not_found",
            format!("no finalized block at height {height}; the finalized tip is {tip}"),
        ));
    };
    Ok(Json(views::block(&block)))
}
