//! `GET /v1/status`, `GET /v1/blocks/{height}` (and its finality), the validator sets and their
//! changes.

use axum::{
    Json,
    extract::{Path, State},
};

use super::types::{BlockView, ErrorBody, FinalityView, SetChangeView, StatusView, ValidatorsView};
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

/// The validator set of the current epoch, the next one once chosen, and the candidates.
#[utoipa::path(get, path = "/v1/validators", tag = "ledger", responses((status = 200, body = ValidatorsView)))]
pub(super) async fn validators(
    State(app): State<AppState>,
) -> Result<Json<ValidatorsView>, ApiError> {
    app.chain
        .read_state(|s| {
            let params = s.params();
            let epoch = params.epoch_of(s.height() + 1);
            let set = s.validator_set(epoch)?.clone();
            Some(ValidatorsView {
                epoch,
                epoch_blocks: params.epoch_blocks,
                next_epoch_height: params.epoch_last(epoch)?.saturating_add(1),
                set,
                next: s.validator_set(epoch + 1).cloned(),
                candidates: s.validator_candidates(2 * params.validators_max as usize),
            })
        })
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(
                "no_validator_set",
                "no validator set for the next block's epoch",
            )
        })
}

/// A validator-set change with its proof and the certificate that carries it, for light clients.
#[utoipa::path(get, path = "/v1/epochs/{epoch}/change", tag = "ledger",
    params(("epoch" = u64, Path, description = "the epoch whose set to prove (1 or later)")),
    responses(
        (status = 200, body = SetChangeView),
        (status = 404, description = "not chosen or its block not finalized yet", body = ErrorBody),
    ))]
pub(super) async fn set_change(
    State(app): State<AppState>,
    Path(epoch): Path<String>,
) -> Result<Json<SetChangeView>, ApiError> {
    let epoch = parse::number("an epoch", &epoch)?;
    app.chain
        .set_change(epoch)
        .await
        .map(|c| Json(c.into()))
        .ok_or_else(|| {
            ApiError::not_found(
                "set_change_not_found",
                format!(
                    "no finalized change to the set of epoch {epoch} here (epoch 0 is genesis; a \
                     set is chosen two blocks before its epoch)"
                ),
            )
        })
}
