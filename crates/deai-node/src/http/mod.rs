//! The node's HTTP server: one accept loop, shared by validators and role nodes, that a stranger
//! cannot knock over (issue 12, findings 1, 4 and 9).
//!
//! [`serve`] runs an axum [`Router`] on a listener under the limits of `[http]`
//! ([`HttpConfig`]); what each guards against is in `docs/chain.md`, "HTTP server limits":
//!
//! - **connections**: at most `connections_max` served at once (by default a quarter of the
//!   open-file limit, which [`raise_fd_limit`] raises to the hard limit first), and at most
//!   `connections_per_ip_max` from one address ([`per_ip`]). One more is answered
//!   `503 too_many_connections` at once and closed, so descriptors stay for storage and p2p, one
//!   host cannot take every slot, and an honest client learns why instead of hanging.
//! - **time**: a request head must arrive within `header_read_timeout_ms` (hyper's timer, which
//!   also ends idle keep-alive connections); a connection on which nothing moves for
//!   `idle_timeout_ms` while no handler runs is closed; handlers have `request_timeout_ms`
//!   ([`request_timeout`], applied by each router to its routes).
//! - **bodies**: a body slower than `body_rate_min_bytes_per_s` is cut ([`body_rate`]).
//! - **writes**: `writes_per_ip_per_s` per client address ([`write_limit`]).
//! - **errors**: every answer is JSON, hyper's own included ([`conn_io`]); the connection closes
//!   with a lingering close so that clients which write their whole body first read the answer.

pub mod body_rate;
mod conn_io;
mod fd_limit;
mod metrics;
mod per_ip;
mod write_limit;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    error_handling::HandleErrorLayer,
    extract::{ConnectInfo, Request},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tower::ServiceExt as _;

pub use body_rate::RateFloor;
pub use fd_limit::{connections_max_for, raise_fd_limit};
pub use metrics::HttpMetrics;
pub use per_ip::connections_per_ip_for;
pub use write_limit::{RateLimited, WriteCharge};

use crate::{api::ApiError, config::HttpConfig};
use conn_io::{Activity, ConnIo, LingerLimits};

/// How often the per-IP limiter forgets addresses whose bucket is full again.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// How long the accept loop waits after the OS refuses an accept (out of descriptors, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `app` on `listener` under `cfg`'s limits until the task running it is dropped.
///
/// Raises the open-file limit first (see [`raise_fd_limit`]). The answers of every route get
/// the request's peer as [`ConnectInfo<SocketAddr>`].
pub async fn serve(listener: TcpListener, app: Router, cfg: &HttpConfig, metrics: HttpMetrics) {
    let connections_max = match cfg.connections_max {
        0 => connections_max_for(raise_fd_limit()),
        n => {
            raise_fd_limit();
            n
        }
    };
    let writes = write_limit::WriteLimit::new(
        cfg.writes_per_ip_per_s,
        cfg.writes_per_ip_burst,
        metrics.clone(),
    );
    let app = with_server_layers(app, cfg, &metrics, writes.clone());
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(cfg.header_read_timeout_ms))
        .max_buf_size(cfg.head_bytes_max.max(8192))
        .keep_alive(true);
    let conn = Arc::new(ConnLimits {
        http1,
        idle: Duration::from_millis(cfg.idle_timeout_ms),
        linger: LingerLimits {
            time: Duration::from_millis(cfg.linger_ms),
            bytes: cfg.linger_bytes_max,
        },
        metrics: metrics.clone(),
    });
    let slots = Arc::new(Semaphore::new(connections_max));
    let per_ip = per_ip::PerIp::new(connections_per_ip_for(
        cfg.connections_per_ip_max,
        connections_max,
    ));
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    tracing::info!(
        connections_max,
        connections_per_ip_max = per_ip.max(),
        "HTTP server limits in force"
    );
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = prune.tick() => {
                if let Some(w) = &writes {
                    w.prune();
                }
                continue;
            }
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors or a connection reset before accept: never a reason to stop.
                tracing::warn!(error = %e, "HTTP accept failed; retrying");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics.refused.inc();
            refuse(
                stream,
                &format!(
                    "the node is serving its {connections_max} connections \
                     (http.connections_max); retry shortly"
                ),
            );
            continue;
        };
        let Some(ip_slot) = per_ip.take(peer.ip()) else {
            metrics.refused_per_ip.inc();
            refuse(
                stream,
                &format!(
                    "{} already holds {} connections (http.connections_per_ip_max); close one \
                     or retry shortly",
                    peer.ip(),
                    per_ip.max()
                ),
            );
            continue;
        };
        metrics.accepted.inc();
        tokio::spawn(serve_connection(
            stream,
            peer,
            app.clone(),
            conn.clone(),
            (permit, ip_slot),
        ));
    }
}

/// What every connection of a server shares.
struct ConnLimits {
    http1: hyper::server::conn::http1::Builder,
    idle: Duration,
    linger: LingerLimits,
    metrics: HttpMetrics,
}

/// The layers every router gets from the server, innermost first: the body rate floor, the
/// per-IP write limit, the request-target limit, and JSON for any error still plain.
fn with_server_layers(
    app: Router,
    cfg: &HttpConfig,
    metrics: &HttpMetrics,
    writes: Option<Arc<write_limit::WriteLimit>>,
) -> Router {
    let floor = RateFloor {
        bytes_per_s: cfg.body_rate_min_bytes_per_s,
        window: Duration::from_millis(cfg.body_rate_window_ms),
    };
    // Behind an `Arc`: the state is cloned for every request, and the metrics are eight
    // registered handles.
    let mut app = app.layer(middleware::from_fn_with_state(
        Arc::new((floor, metrics.clone())),
        body_rate::rate_floor,
    ));
    if let Some(w) = writes {
        app = app.layer(middleware::from_fn_with_state(w, write_limit::limit_writes));
    }
    let uri_max = cfg.uri_bytes_max;
    app.layer(middleware::from_fn(move |r: Request, n: Next| {
        limit_uri(uri_max, r, n)
    }))
    .layer(middleware::map_response(crate::api::json_errors))
}

/// Refuses a request whose target (path and query) is longer than `max` bytes.
async fn limit_uri(max: usize, request: Request, next: Next) -> Response {
    let len = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if len > max {
        return ApiError {
            status: StatusCode::URI_TOO_LONG,
            code: "uri_too_long",
            message: format!(
                "the request target is {len} bytes; the node reads at most {max} \
                 (http.uri_bytes_max)"
            ),
        }
        .into_response();
    }
    next.run(request).await
}

/// The handler time limit as a layer: a handler (reading its body included) that takes longer
/// than `limit` is dropped and answered `408 request_timeout`.
pub fn request_timeout<S>(router: Router<S>, limit: Duration) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(
        tower::ServiceBuilder::new()
            .layer(HandleErrorLayer::new(move |_: axum::BoxError| async move {
                ApiError {
                    status: StatusCode::REQUEST_TIMEOUT,
                    code: "request_timeout",
                    message: format!(
                        "the request took longer than {} ms (http.request_timeout_ms)",
                        limit.as_millis()
                    ),
                }
            }))
            .layer(tower::timeout::TimeoutLayer::new(limit)),
    )
}

/// Answers a connection over a limit `503` and closes it, without waiting on the client.
fn refuse(stream: TcpStream, why: &str) {
    let answer = conn_io::json_answer(StatusCode::SERVICE_UNAVAILABLE, "too_many_connections", why);
    // A fresh socket's send buffer takes a few hundred bytes at once; if not, the client is
    // refused without the explanation rather than waited for. What the client already sent is
    // read first, so that closing sends an orderly end of stream, not a reset that could
    // discard the answer.
    let _ = stream.try_write(&answer);
    let mut scratch = [0u8; 4096];
    while matches!(stream.try_read(&mut scratch), Ok(n) if n > 0) {}
}

/// Serves one connection until it closes, is idle too long, or a limit ends it.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: Arc<ConnLimits>,
    _slots: (OwnedSemaphorePermit, per_ip::IpSlot),
) {
    limits.metrics.open.inc();
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io = ConnIo::new(
        stream,
        activity.clone(),
        limits.metrics.malformed.metric().clone(),
        limits.linger,
    );
    let handlers = activity.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
        let app = app.clone();
        let busy = handlers.handler();
        async move {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            let response = app.oneshot(request).await;
            drop(busy);
            response
        }
    });
    let conn = limits.http1.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    loop {
        // A running handler is bounded by its own timeout; look again once it could be idle.
        let now = tokio::time::Instant::now();
        let check_at = if activity.handling() {
            now + limits.idle
        } else {
            activity.idle_at(limits.idle)
        };
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(%peer, error = %e, "HTTP connection ended");
                }
                break;
            }
            _ = tokio::time::sleep_until(check_at) => {
                let idle = !activity.handling()
                    && activity.idle_at(limits.idle) <= tokio::time::Instant::now();
                if idle {
                    limits.metrics.idle_closed.inc();
                    tracing::debug!(%peer, "HTTP connection idle; closed");
                    break;
                }
            }
        }
    }
    limits.metrics.open.dec();
}
