//! Read-only views of the finalized ledger state: accounts, datasets, tasks, models.

use axum::{
    Json,
    extract::{Path, State},
};
use serde::Serialize;

use super::{ApiError, AppState, parse, txs::internal};

fn json(value: impl Serialize) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(serde_json::to_value(value).map_err(internal)?))
}

pub(super) async fn account(
    State(app): State<AppState>,
    Path(addr): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let addr = parse::address(&addr)?;
    let (height, account) = app.chain.read_state(|s| (s.height(), s.account(&addr)));
    json(serde_json::json!({ "address": addr.to_string(), "height": height, "account": account }))
}

pub(super) async fn datasets(
    State(app): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let all: Vec<serde_json::Value> = app.chain.read_state(|s| {
        s.datasets()
            .map(|d| serde_json::to_value(d).unwrap_or_default())
            .collect()
    });
    json(all)
}

pub(super) async fn dataset(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = parse::number("a dataset id", &id)?;
    app.chain
        .read_state(|s| s.dataset(id).map(serde_json::to_value))
        .ok_or_else(|| {
            ApiError::not_found("dataset_not_found", format!("no dataset with id {id}"))
        })?
        .map(Json)
        .map_err(internal)
}

pub(super) async fn tasks(
    State(app): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let all: Vec<serde_json::Value> = app.chain.read_state(|s| {
        s.tasks()
            .map(|t| serde_json::to_value(t).unwrap_or_default())
            .collect()
    });
    json(all)
}

pub(super) async fn task(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = parse::number("a task id", &id)?;
    app.chain
        .read_state(|s| s.task(id).map(serde_json::to_value))
        .ok_or_else(|| ApiError::not_found("task_not_found", format!("no task with id {id}")))?
        .map(Json)
        .map_err(internal)
}

pub(super) async fn models(
    State(app): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let all: Vec<serde_json::Value> = app.chain.read_state(|s| {
        s.models()
            .map(|m| serde_json::to_value(m).unwrap_or_default())
            .collect()
    });
    json(all)
}

pub(super) async fn model(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = parse::number("a model id", &id)?;
    app.chain
        .read_state(|s| s.model(id).map(serde_json::to_value))
        .ok_or_else(|| ApiError::not_found("model_not_found", format!("no model with id {id}")))?
        .map(Json)
        .map_err(internal)
}

/// `GET /v1/tasks/{id}/eligible`: the datasets eligible for the task's next round if its
/// `RoundOpen` lands in the next block (in the filter, consent admitting the task, able to pay
/// their next step of the task's ε schedule), with the height it was computed at. Which of them
/// a round takes is drawn by the ledger from the beacon of the block that includes the
/// `RoundOpen`; nobody can know it before.
pub(super) async fn eligible(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = parse::number("a task id", &id)?;
    let (height, round, eligible) = app.chain.read_state(|s| {
        let round = s.task(id).map(|t| t.rounds_opened().saturating_add(1));
        (s.height(), round, s.round_eligible(id))
    });
    let eligible = eligible
        .map_err(|_| ApiError::not_found("task_not_found", format!("no task with id {id}")))?;
    json(serde_json::json!({ "task": id, "round": round, "height": height, "eligible": eligible }))
}
