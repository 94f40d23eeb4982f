//! Read-only views of the finalized ledger state: accounts, datasets, tasks, models.

use axum::{
    Json,
    extract::{Path, State},
};
use deai_ledger::{Channel, Dataset, Model, Offer, OfferStatus, Task};

use super::types::{AccountView, EligibleView, ErrorBody};
use super::{ApiError, AppState, parse};

/// An account: balance, nonce, stake.
#[utoipa::path(get, path = "/v1/accounts/{addr}", tag = "state",
    params(("addr" = String, Path, description = "address, hex")),
    responses((status = 200, body = AccountView), (status = 400, body = ErrorBody)))]
pub(super) async fn account(
    State(app): State<AppState>,
    Path(addr): Path<String>,
) -> Result<Json<AccountView>, ApiError> {
    let address = parse::address(&addr)?;
    let (height, account) = app.chain.read_state(|s| (s.height(), s.account(&address)));
    Ok(Json(AccountView {
        address,
        height,
        account,
    }))
}

/// Every registered dataset (commitment, owner, consent policy, ε spent).
#[utoipa::path(get, path = "/v1/datasets", tag = "state", responses((status = 200, body = Vec<Object>)))]
pub(super) async fn datasets(State(app): State<AppState>) -> Json<Vec<Dataset>> {
    Json(app.chain.read_state(|s| s.datasets().cloned().collect()))
}

/// One dataset.
#[utoipa::path(get, path = "/v1/datasets/{id}", tag = "state",
    params(("id" = u64, Path, description = "dataset id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub(super) async fn dataset(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Dataset>, ApiError> {
    let id = parse::number("a dataset id", &id)?;
    app.chain
        .read_state(|s| s.dataset(id).cloned())
        .map(Json)
        .ok_or_else(|| ApiError::not_found("dataset_not_found", format!("no dataset with id {id}")))
}

/// Every task (spec hash, budget, rounds, ε spent, status).
#[utoipa::path(get, path = "/v1/tasks", tag = "state", responses((status = 200, body = Vec<Object>)))]
pub(super) async fn tasks(State(app): State<AppState>) -> Json<Vec<Task>> {
    Json(app.chain.read_state(|s| s.tasks().cloned().collect()))
}

/// One task with its round log and history.
#[utoipa::path(get, path = "/v1/tasks/{id}", tag = "state",
    params(("id" = u64, Path, description = "task id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub(super) async fn task(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Task>, ApiError> {
    let id = parse::number("a task id", &id)?;
    app.chain
        .read_state(|s| s.task(id).cloned())
        .map(Json)
        .ok_or_else(|| ApiError::not_found("task_not_found", format!("no task with id {id}")))
}

/// Every registered model with its lineage.
#[utoipa::path(get, path = "/v1/models", tag = "state", responses((status = 200, body = Vec<Object>)))]
pub(super) async fn models(State(app): State<AppState>) -> Json<Vec<Model>> {
    Json(app.chain.read_state(|s| s.models().cloned().collect()))
}

/// One model.
#[utoipa::path(get, path = "/v1/models/{id}", tag = "state",
    params(("id" = u64, Path, description = "model id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub(super) async fn model(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Model>, ApiError> {
    let id = parse::number("a model id", &id)?;
    app.chain
        .read_state(|s| s.model(id).cloned())
        .map(Json)
        .ok_or_else(|| ApiError::not_found("model_not_found", format!("no model with id {id}")))
}

/// `GET /v1/tasks/{id}/eligible`: the datasets eligible for the task's next round if its
/// `RoundOpen` lands in the next block (in the filter, consent admitting the task, able to pay
/// their next step of the task's ε schedule), with the height it was computed at. Which of them
/// a round takes is drawn by the ledger from the beacon of the block that includes the
/// `RoundOpen`; nobody can know it before.
#[utoipa::path(get, path = "/v1/tasks/{id}/eligible", tag = "state",
    params(("id" = u64, Path, description = "task id")),
    responses((status = 200, body = EligibleView), (status = 404, body = ErrorBody)))]
pub(super) async fn eligible(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<EligibleView>, ApiError> {
    let id = parse::number("a task id", &id)?;
    let (height, round, eligible) = app.chain.read_state(|s| {
        let round = s.task(id).map(|t| t.rounds_opened().saturating_add(1));
        (s.height(), round, s.round_eligible(id))
    });
    let not_found = || ApiError::not_found("task_not_found", format!("no task with id {id}"));
    let eligible = eligible.map_err(|_| not_found())?;
    Ok(Json(EligibleView {
        task: id,
        round: round.ok_or_else(not_found)?,
        height,
        eligible,
    }))
}

/// Filters of `GET /v1/offers`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct OfferFilter {
    /// Only offers of this registered model.
    model: Option<u64>,
    /// Only offers of this provider (address, hex).
    provider: Option<String>,
    /// Only offers in this status: `active`, `suspended` or `withdrawn`.
    status: Option<String>,
}

/// Inference offers (provider, model, quantized blob hash, price, bond, endpoint, royalty),
/// ascending by id, optionally filtered.
#[utoipa::path(get, path = "/v1/offers", tag = "state", params(OfferFilter),
    responses((status = 200, body = Vec<Object>), (status = 400, body = ErrorBody)))]
pub(super) async fn offers(
    State(app): State<AppState>,
    axum::extract::Query(filter): axum::extract::Query<OfferFilter>,
) -> Result<Json<Vec<Offer>>, ApiError> {
    let provider = filter.provider.as_deref().map(parse::address).transpose()?;
    let status = match filter.status.as_deref() {
        None => None,
        Some(s) => Some(
            [
                OfferStatus::Active,
                OfferStatus::Suspended,
                OfferStatus::Withdrawn,
            ]
            .into_iter()
            .find(|st| st.name() == s)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "bad_status",
                    format!("status {s:?}: use active, suspended or withdrawn"),
                )
            })?,
        ),
    };
    Ok(Json(app.chain.read_state(|s| {
        s.offers()
            .filter(|o| filter.model.is_none_or(|m| o.model == m))
            .filter(|o| provider.is_none_or(|p| o.provider == p))
            .filter(|o| status.is_none_or(|st| o.status == st))
            .cloned()
            .collect()
    })))
}

/// One offer with its history.
#[utoipa::path(get, path = "/v1/offers/{id}", tag = "state",
    params(("id" = u64, Path, description = "offer id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub(super) async fn offer(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Offer>, ApiError> {
    let id = parse::number("an offer id", &id)?;
    app.chain
        .read_state(|s| s.offer(id).cloned())
        .map(Json)
        .ok_or_else(|| ApiError::not_found("offer_not_found", format!("no offer with id {id}")))
}

/// Filters of `GET /v1/channels`: at least one is required (a node does not list every channel).
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ChannelFilter {
    /// Channels paying for this offer.
    offer: Option<u64>,
    /// Channels opened by this payer (address, hex).
    payer: Option<String>,
}

/// Payment channels of an offer or of a payer (deposit, claimed, expiry, status), ascending by id.
#[utoipa::path(get, path = "/v1/channels", tag = "state", params(ChannelFilter),
    responses((status = 200, body = Vec<Object>), (status = 400, body = ErrorBody)))]
pub(super) async fn channels(
    State(app): State<AppState>,
    axum::extract::Query(filter): axum::extract::Query<ChannelFilter>,
) -> Result<Json<Vec<Channel>>, ApiError> {
    let payer = filter.payer.as_deref().map(parse::address).transpose()?;
    if filter.offer.is_none() && payer.is_none() {
        return Err(ApiError::bad_request(
            "filter_required",
            "name an offer (?offer=N) or a payer (?payer=ADDRESS)",
        ));
    }
    Ok(Json(app.chain.read_state(|s| {
        s.channels()
            .filter(|c| filter.offer.is_none_or(|o| c.offer == o))
            .filter(|c| payer.is_none_or(|p| c.payer == p))
            .cloned()
            .collect()
    })))
}

/// One payment channel.
#[utoipa::path(get, path = "/v1/channels/{id}", tag = "state",
    params(("id" = u64, Path, description = "channel id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub(super) async fn channel(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Channel>, ApiError> {
    let id = parse::number("a channel id", &id)?;
    app.chain
        .read_state(|s| s.channel(id).cloned())
        .map(Json)
        .ok_or_else(|| ApiError::not_found("channel_not_found", format!("no channel with id {id}")))
}
