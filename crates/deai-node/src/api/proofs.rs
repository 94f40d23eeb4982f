//! `GET /v1/proofs/{kind}/{id}`: an inclusion proof of one state entry against the finalized root.
//!
//! The answer carries the height and root it was made against and the entry itself, from one read
//! of the state. A light client takes the root from the block above that height, certified by its
//! finalization (`GET /v1/blocks/{height + 1}/finality`), never from this answer, and checks the
//! entry against the proof (`deai_node::light_client`).

use axum::{
    Json,
    extract::{Path, State},
};
use deai_ledger::StateKey;

use super::types::{ErrorBody, ProofView};
use super::{ApiError, AppState, parse};

/// An inclusion proof of one state entry against the finalized root at the answer's height.
#[utoipa::path(get, path = "/v1/proofs/{kind}/{id}", tag = "ledger",
    params(
        ("kind" = String, Path, description = "account, dataset, task, model, epoch (a validator set), offer or channel"),
        ("id" = String, Path, description = "an address (account) or a number"),
    ),
    responses(
        (status = 200, body = ProofView),
        (status = 400, description = "unknown kind or bad id", body = ErrorBody),
        (status = 404, description = "no such entry", body = ErrorBody),
    ))]
pub(super) async fn prove(
    State(app): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Json<ProofView>, ApiError> {
    let key = match kind.as_str() {
        "account" | "accounts" => StateKey::Account(parse::address(&id)?),
        "dataset" | "datasets" => StateKey::Dataset(parse::number("a dataset id", &id)?),
        "task" | "tasks" => StateKey::Task(parse::number("a task id", &id)?),
        "model" | "models" => StateKey::Model(parse::number("a model id", &id)?),
        "epoch" | "epochs" => StateKey::Epoch(parse::number("an epoch", &id)?),
        "offer" | "offers" => StateKey::Offer(parse::number("an offer id", &id)?),
        "channel" | "channels" => StateKey::Channel(parse::number("a channel id", &id)?),
        "proposal" | "proposals" => StateKey::Proposal(parse::number("a proposal id", &id)?),
        "blocked" => StateKey::Blocked(
            deai_ledger::BlockTarget::parse(&id)
                .map_err(|e| ApiError::bad_request("bad_block_target", e))?,
        ),
        "delegations" => StateKey::Delegations(parse::address(&id)?),
        other => {
            return Err(ApiError::bad_request(
                "bad_proof_kind",
                format!(
                    "unknown kind {other:?}; use account, dataset, task, model, epoch, offer, \
                     channel, proposal, blocked or delegations"
                ),
            ));
        }
    };
    let (height, root, proof, entry) = app.chain.read_state(|s| {
        let entry = match key {
            StateKey::Account(a) => serde_json::to_value(s.account(&a)).ok(),
            StateKey::Dataset(id) => s.dataset(id).and_then(|d| serde_json::to_value(d).ok()),
            StateKey::Task(id) => s.task(id).and_then(|t| serde_json::to_value(t).ok()),
            StateKey::Model(id) => s.model(id).and_then(|m| serde_json::to_value(m).ok()),
            StateKey::Epoch(e) => s
                .validator_set(e)
                .and_then(|v| serde_json::to_value(v).ok()),
            StateKey::Offer(id) => s.offer(id).and_then(|o| serde_json::to_value(o).ok()),
            StateKey::Channel(id) => s.channel(id).and_then(|c| serde_json::to_value(c).ok()),
            StateKey::Proposal(id) => s.proposal(id).and_then(|p| serde_json::to_value(p).ok()),
            StateKey::Blocked(t) => s
                .block_decision(&t)
                .and_then(|d| serde_json::to_value(d).ok()),
            StateKey::Delegations(a) => s
                .delegation_list(&a)
                .and_then(|d| serde_json::to_value(d).ok()),
            StateKey::Meta => None,
        };
        (s.height(), s.root(), s.prove(&key), entry)
    });
    let proof = proof.ok_or_else(|| {
        ApiError::not_found(
            "entry_not_found",
            format!("no {kind} {id} in the state at height {height}"),
        )
    })?;
    Ok(Json(ProofView {
        height,
        root,
        proof,
        entry,
    }))
}
