//! Read-only views of the finalized ledger state: accounts, datasets, tasks, models.

use std::collections::HashMap;

use axum::{
    Json,
    extract::{Path, Query, State},
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

/// `GET /v1/tasks/{id}/selection?count=N&epsilon=E`: the datasets a `RoundOpen` of the task's
/// next round must select if it lands in the next block (a coordinator asks this before it
/// signs), with the height it was computed at. A later block changes the seed: resubmit.
pub(super) async fn selection(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = parse::number("a task id", &id)?;
    let arg = |name: &'static str| {
        q.get(name)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "missing_query",
                    format!("query parameter `{name}` is required"),
                )
            })
            .and_then(|v| parse::number(name, v))
    };
    let count = usize::try_from(arg("count")?).unwrap_or(usize::MAX);
    let epsilon = arg("epsilon")?;
    let (height, round, selected) = app.chain.read_state(|s| {
        let round = s.task(id).map(|t| t.rounds_opened().saturating_add(1));
        (s.height(), round, s.round_selection(id, count, epsilon))
    });
    let selected = selected
        .map_err(|_| ApiError::not_found("task_not_found", format!("no task with id {id}")))?;
    json(serde_json::json!({ "task": id, "round": round, "height": height, "selected": selected }))
}
