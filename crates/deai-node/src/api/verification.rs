//! `GET /v1/tasks/{id}/verification`: this node re-verifies a closed task from the ledger and the
//! blobs it holds (`audit::task::verify_task`, what `deai verify task` runs anywhere) and answers
//! the verdict, each round's validation accuracy included. A closed task never changes, so the
//! verdict is kept once computed.

use axum::{
    Json,
    extract::{Path, State},
};
use deai_ledger::TaskStatus;

use super::types::ErrorBody;
use super::{ApiError, AppState, parse};
use crate::audit::task::{TaskVerdict, verify_task};

/// The verdict on a closed task, re-verified by this node, with each round's accuracy.
#[utoipa::path(get, path = "/v1/tasks/{id}/verification", tag = "ledger",
    params(("id" = u64, Path, description = "task id")),
    responses(
        (status = 200, description = "the verdict (`deai verify task --json`'s shape)", body = Object),
        (status = 400, description = "the task is not closed yet", body = ErrorBody),
        (status = 404, description = "no such task", body = ErrorBody),
    ))]
pub(super) async fn verification(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TaskVerdict>, ApiError> {
    let id = parse::number("a task id", &id)?;
    if let Some(v) = app.verified(id) {
        return Ok(Json(v));
    }
    match app.chain.read_state(|s| s.task(id).map(|t| t.status)) {
        None => {
            return Err(ApiError::not_found(
                "task_not_found",
                format!("no task {id}"),
            ));
        }
        Some(TaskStatus::Closed) => {}
        Some(status) => {
            return Err(ApiError::bad_request(
                "task_not_closed",
                format!(
                    "task {id} is {status:?}: its validation data is revealed, and its rounds \
                     can be re-verified, once it closes"
                ),
            ));
        }
    }
    // The audit reads through the API, as any verifier does; here, this node's own.
    let client = crate::client::Client::new(app.self_url.clone());
    let verdict = verify_task(&client, &client, id, |_| {})
        .await
        .map_err(|e| ApiError::internal(format!("re-verifying task {id}: {e}")))?;
    app.keep_verified(verdict.clone());
    Ok(Json(verdict))
}
