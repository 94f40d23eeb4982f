//! The node's HTTP API (axum), served on loopback by `deai node`.
//!
//! Every route answers JSON. Every failure, including the ones axum produces itself (unknown route,
//! wrong method, oversized body), is turned into the [`ApiError`] shape, so clients parse one format.

mod blobs;
mod blocks;
mod content_type;
mod error;
mod events;
mod governance;
mod metrics;
mod parse;
mod proofs;
mod query;
mod txs;
pub mod types;
mod verification;

pub use blobs::blob_routes;
pub use error::ApiError;
pub use metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, Metrics};
pub use txs::decode_submission;
pub use types::{
    BatchItem, BatchRequest, BatchResponse, PutBlobResponse, SubmitRequest, SubmitResponse,
};

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    extract::DefaultBodyLimit,
    http::{Response, StatusCode, header},
    middleware,
    routing::get,
};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The chain this node runs or follows.
    pub chain: deai_chain::Handle,
    /// The node's metrics registry (the runtime's) and the API's own counters.
    pub metrics: Arc<Metrics>,
    /// The chain's genesis, served to auditors who replay the chain from the start.
    pub genesis: Arc<deai_ledger::Genesis>,
    /// The content-addressed blob store (`/v1/blobs`).
    pub blobs: crate::blobs::BlobStore,
    /// Most transactions one `POST /v1/txs/batch` may carry (`http.batch_txs_max`).
    pub batch_txs_max: usize,
    /// This API's own base URL (`http://ip:port`): the task audit reads through it.
    pub self_url: String,
    /// Verdicts on closed tasks this node re-verified (`/v1/tasks/{id}/verification`).
    pub verified:
        Arc<std::sync::Mutex<std::collections::BTreeMap<u64, crate::audit::task::TaskVerdict>>>,
}

impl AppState {
    fn verified(&self, task: u64) -> Option<crate::audit::task::TaskVerdict> {
        // A panic while holding the lock leaves a map that is still valid.
        let map = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&task).cloned()
    }

    fn keep_verified(&self, verdict: crate::audit::task::TaskVerdict) {
        let mut map = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(verdict.task, verdict);
    }
}

/// Largest request body accepted, in bytes. A transaction is sent hex-encoded inside JSON, so twice the
/// ledger's largest transaction plus room for the envelope.
pub fn request_bytes_max(tx_bytes_max: usize) -> usize {
    tx_bytes_max.saturating_mul(2).saturating_add(1024)
}

/// Builds the router with all `/v1` routes, `/v1/openapi.json` and `/metrics`. The blob routes
/// take bodies up to the blob store's limit instead of the transaction limit, and are bounded by
/// the server's body rate floor instead of `http.request_timeout_ms`, which the others have.
pub fn router(state: AppState, http: &crate::config::HttpConfig) -> Router {
    // One transaction may be a dispute carrying a model (`Limits::tx_bytes_max`); a batch is
    // bounded by transactions of the standard size.
    let (body_max, standard_max) = state.chain.read_state(|s| {
        let limits = s.params().limits();
        (
            request_bytes_max(limits.tx_bytes_max),
            request_bytes_max(limits.tx_standard_bytes_max),
        )
    });
    let batch_body_max = standard_max
        .saturating_mul(state.batch_txs_max.max(1))
        .max(body_max);
    let (routes, live, doc) = documented_routes(batch_body_max);
    let doc = Arc::new(doc);
    let timeout = std::time::Duration::from_millis(http.request_timeout_ms);
    // The event stream lives as long as its reader: no request timeout on it.
    let routes = crate::http::request_timeout(routes, timeout).merge(live);
    routes
        .route(
            "/v1/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .route("/metrics", get(metrics::render))
        .merge(blob_routes(state.blobs.clone(), Some(state.chain.clone())))
        .merge(crate::explorer::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_max))
        .layer(middleware::map_response(json_errors))
        .layer(middleware::map_response_with_state(
            state.metrics.clone(),
            metrics::count_errors,
        ))
        .with_state(state)
}

/// The `/v1` routes and the OpenAPI document generated from the same handler annotations, so a
/// route cannot exist undocumented (blob routes are documented by [`blobs::BlobApi`]).
///
/// A batch may carry `http.batch_txs_max` transactions: its body limit is that many
/// transactions' (`batch_body_max`), the others' one transaction's.
/// The second router holds the routes that stream (no request timeout).
fn documented_routes(
    batch_body_max: usize,
) -> (Router<AppState>, Router<AppState>, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi as _;
    use utoipa_axum::{router::OpenApiRouter, routes};
    let batch = OpenApiRouter::new()
        .routes(routes!(txs::submit_batch))
        .layer(DefaultBodyLimit::max(batch_body_max));
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(txs::submit))
        .merge(batch)
        .routes(routes!(txs::status))
        .routes(routes!(blocks::status))
        .routes(routes!(blocks::genesis))
        .routes(routes!(blocks::block))
        .routes(routes!(blocks::finality))
        .routes(routes!(blocks::validators))
        .routes(routes!(blocks::set_change))
        .routes(routes!(query::account))
        .routes(routes!(query::datasets))
        .routes(routes!(query::dataset))
        .routes(routes!(query::tasks))
        .routes(routes!(query::task))
        .routes(routes!(query::eligible))
        .routes(routes!(query::models))
        .routes(routes!(query::model))
        .routes(routes!(query::offers))
        .routes(routes!(query::offer))
        .routes(routes!(query::channels))
        .routes(routes!(query::channel))
        .routes(routes!(governance::proposals))
        .routes(routes!(governance::proposal))
        .routes(routes!(governance::governance))
        .routes(routes!(proofs::prove))
        .routes(routes!(crate::explorer::index))
        .split_for_parts();
    // Streams and re-verification outlast http.request_timeout_ms.
    let (live, live_doc) = OpenApiRouter::new()
        .routes(routes!(events::events))
        .routes(routes!(verification::verification))
        .split_for_parts();
    doc.merge(live_doc);
    doc.merge(blobs::BlobApi::openapi());
    (router, live, doc)
}

/// The document's header and the answer types every route shares.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "deai node API",
        description = "The ledger, state and blob routes of a deai node. Every failure answers \
                       ErrorBody with a stable code. Amounts are decimal strings in base units; \
                       hashes and addresses are lowercase hex.",
    ),
    components(schemas(types::ErrorBody, types::TxState, types::BatchItem))
)]
struct ApiDoc;

pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found(
        "no_such_route",
        "no such route; see docs/api.md for the routes",
    )
}

/// Rewrites axum's own plain-text rejections (405, 413, 415, 400 from extractors) as [`ApiError`]s.
pub(crate) async fn json_errors(response: Response<Body>) -> Response<Body> {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method_not_allowed", "this route does not take that method")
        }
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body_too_large",
            "request body is larger than the node accepts",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("bad_content_type", "send the body as application/json")
        }
        StatusCode::REQUEST_TIMEOUT => (
            "request_timeout",
            "the request took longer than the node waits",
        ),
        _ if status.is_client_error() => ("bad_request", "the request could not be read"),
        _ => ("internal", "the node failed to answer; see its log"),
    };
    let err = ApiError {
        status,
        code,
        message: message.to_string(),
    };
    axum::response::IntoResponse::into_response(err)
}

#[cfg(test)]
mod docs_check {
    /// Every path of the OpenAPI document is in docs/api.md (path parameters compared by
    /// position, not name), so the routes table cannot fall behind the routes.
    #[test]
    fn docs_api_lists_every_documented_route() {
        let (_, _, doc) = super::documented_routes(1 << 20);
        let docs = include_str!("../../../../docs/api.md");
        let shape = |path: &str| -> String {
            let mut out = String::new();
            let mut in_param = false;
            for c in path.chars() {
                match c {
                    '{' => {
                        in_param = true;
                        out.push_str("{}");
                    }
                    '}' => in_param = false,
                    _ if !in_param => out.push(c),
                    _ => {}
                }
            }
            out
        };
        let listed: std::collections::BTreeSet<String> = docs
            .split(|c: char| c == '`' || c.is_whitespace() || c == ',' || c == '?')
            .filter_map(|token| token.find("/v1/").map(|i| &token[i..]))
            .map(shape)
            .collect();
        let missing: Vec<String> = doc
            .paths
            .paths
            .keys()
            .map(|p| shape(p))
            .filter(|p| p.starts_with("/v1/") && !listed.contains(p))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/api.md does not list {missing:?}; add a row to its routes table"
        );
        assert!(
            docs.contains("`GET /`"),
            "docs/api.md does not list the explorer's page"
        );
    }
}
