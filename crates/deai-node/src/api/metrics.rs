//! `GET /metrics`: the OpenMetrics text of the node's one metrics registry, the Commonware
//! runtime's.
//!
//! Everything registers there: the runtime's own task and storage metrics, consensus, marshal,
//! p2p, the chain's `deai_*` metrics (`deai_chain`'s telemetry), the blob store's counters and
//! the API's error counts. The runtime's registry is built on `prometheus-client` metric types
//! and its encoder, so one `encode()` gives the whole exposition, ending in `# EOF`.

use std::{fmt, sync::Arc};

use axum::{
    body::Body,
    extract::State,
    http::{Response, header},
    response::IntoResponse,
};
use commonware_runtime::telemetry::metrics::Registered;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
};

use super::{AppState, error::ErrorCode};
use crate::blobs::{BlobMetrics, BlobStore};

/// The content type of the OpenMetrics text format the registry encodes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `code` label of API errors: the stable code of the answer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Code {
    code: &'static str,
}

/// The API's metrics and the registry `/metrics` encodes.
pub struct Metrics {
    encode: Box<dyn Fn() -> String + Send + Sync>,
    errors: Registered<Family<Code, Counter>>,
    http: crate::http::HttpMetrics,
    _blobs: BlobMetrics,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Registers the API's and `blobs`' metrics under `deai_` in `runtime`'s registry, the one
    /// the chain started on `runtime` registered its metrics in.
    pub fn register(runtime: &impl commonware_runtime::Metrics, blobs: &BlobStore) -> Self {
        let ctx = runtime.child("deai");
        let errors = ctx.register(
            "http_errors",
            "Error answers of the HTTP API, by their stable code",
            Family::default(),
        );
        let blobs = blobs.register_metrics(&ctx);
        let http = crate::http::HttpMetrics::register(&ctx);
        Self {
            // Every context of a runtime encodes the runtime's whole registry.
            encode: Box::new(move || ctx.encode()),
            errors,
            http,
            _blobs: blobs,
        }
    }

    /// The HTTP server's metrics (connections, refusals, cut bodies), in the same registry.
    pub fn http(&self) -> crate::http::HttpMetrics {
        self.http.clone()
    }

    /// The whole registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        (self.encode)()
    }

    fn count_error(&self, code: &'static str) {
        self.errors.get_or_create(&Code { code }).inc();
    }
}

pub(super) async fn render(State(app): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], app.metrics.encode())
}

/// Counts every error answer by its code (the outermost layer, so axum's own rejections count
/// too, after `json_errors` gave them a code).
pub(super) async fn count_errors(
    State(metrics): State<Arc<Metrics>>,
    response: Response<Body>,
) -> Response<Body> {
    if let Some(ErrorCode(code)) = response.extensions().get::<ErrorCode>() {
        metrics.count_error(code);
    }
    response
}
