//! The HTTP server's own counters: what it refused, cut and closed, beside the API's error counts.

use commonware_runtime::telemetry::metrics::Registered;
use prometheus_client::metrics::{counter::Counter, gauge::Gauge};

/// The server's metrics. A validator registers them in the runtime's registry (`/metrics`); a
/// role node, which has no registry, keeps them detached.
#[derive(Clone)]
pub struct HttpMetrics {
    /// Connections being served now.
    pub(crate) open: Registered<Gauge>,
    /// Connections accepted and served.
    pub(crate) accepted: Registered<Counter>,
    /// Connections refused at `connections_max`.
    pub(crate) refused: Registered<Counter>,
    /// Connections refused because their address held `connections_per_ip_max` already.
    pub(crate) refused_per_ip: Registered<Counter>,
    /// Connections closed for sending nothing, or reading nothing, for `idle_timeout_ms`.
    pub(crate) idle_closed: Registered<Counter>,
    /// Requests hyper could not parse (answered 400/414/431 JSON by the server).
    pub(crate) malformed: Registered<Counter>,
    /// Request bodies cut for arriving slower than the rate floor.
    pub(crate) slow_bodies: Registered<Counter>,
    /// Writes refused by the per-IP rate limit.
    pub(crate) rate_limited: Registered<Counter>,
}

impl std::fmt::Debug for HttpMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpMetrics").finish_non_exhaustive()
    }
}

impl HttpMetrics {
    /// Registers the server's metrics under `ctx` (the API's `deai` context).
    pub fn register(ctx: &impl commonware_runtime::Metrics) -> Self {
        Self {
            open: ctx.register(
                "http_connections_open",
                "HTTP connections being served now",
                Gauge::default(),
            ),
            accepted: ctx.register(
                "http_connections_accepted",
                "HTTP connections accepted and served",
                Counter::default(),
            ),
            refused: ctx.register(
                "http_connections_refused",
                "HTTP connections refused because connections_max were open",
                Counter::default(),
            ),
            refused_per_ip: ctx.register(
                "http_connections_refused_per_ip",
                "HTTP connections refused because their address held connections_per_ip_max",
                Counter::default(),
            ),
            idle_closed: ctx.register(
                "http_connections_idle_closed",
                "HTTP connections closed after idle_timeout_ms with no byte moving",
                Counter::default(),
            ),
            malformed: ctx.register(
                "http_requests_malformed",
                "Requests that were not well-formed HTTP/1.1 (answered 400, 414 or 431)",
                Counter::default(),
            ),
            slow_bodies: ctx.register(
                "http_bodies_too_slow",
                "Request bodies cut for arriving slower than body_rate_min_bytes_per_s",
                Counter::default(),
            ),
            rate_limited: ctx.register(
                "http_writes_rate_limited",
                "Writes refused 429 by the per-IP rate limit",
                Counter::default(),
            ),
        }
    }

    /// Metrics in no registry (a role node's, or a test's).
    pub fn detached() -> Self {
        Self {
            open: Registered::detached(Gauge::default()),
            accepted: Registered::detached(Counter::default()),
            refused: Registered::detached(Counter::default()),
            refused_per_ip: Registered::detached(Counter::default()),
            idle_closed: Registered::detached(Counter::default()),
            malformed: Registered::detached(Counter::default()),
            slow_bodies: Registered::detached(Counter::default()),
            rate_limited: Registered::detached(Counter::default()),
        }
    }
}
