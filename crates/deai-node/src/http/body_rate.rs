//! The body rate floor: a request body that arrives slower than a floor is cut.
//!
//! A client that sends a few bytes of a large body and stalls holds whatever its handler holds
//! (a blob store upload slot, a buffer) for as long as it likes (issue 12, finding 4). Every
//! request body is wrapped in a [`RateFloorBody`]: time is counted only while the handler waits
//! for the client (a handler that is slow itself does not count against the client), in windows
//! of `body_rate_window_ms`; a window in which fewer than `body_rate_min_bytes_per_s × window`
//! bytes arrived ends the body with an error, and the answer becomes `408 body_too_slow`. The
//! first window is the grace a client has to start; a body that ends within it is never cut.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::HttpMetrics;
use crate::api::ApiError;

/// The floor: at least `bytes_per_s` on average over each `window` of waiting.
#[derive(Debug, Clone, Copy)]
pub struct RateFloor {
    /// Slowest accepted average, in bytes per second; 0 turns the floor off.
    pub bytes_per_s: u64,
    /// The window, and the grace at the start.
    pub window: Duration,
}

impl RateFloor {
    fn window_bytes_min(&self) -> u64 {
        let ms = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        self.bytes_per_s.saturating_mul(ms) / 1000
    }
}

/// The error a cut body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived slower than {bytes_per_s} bytes/s over {window_ms} ms")]
pub struct BodyTooSlow {
    bytes_per_s: u64,
    window_ms: u128,
}

/// A request body that is cut when it arrives slower than a [`RateFloor`].
pub struct RateFloorBody<B> {
    inner: B,
    floor: RateFloor,
    /// Time spent waiting for the client in this window, not counting the wait now running.
    waited: Duration,
    /// When the wait now running began.
    waiting_since: Option<Instant>,
    bytes: u64,
    timer: Pin<Box<Sleep>>,
    cut: Arc<AtomicBool>,
}

impl<B> RateFloorBody<B> {
    /// Wraps `inner`; `cut` is set when it is cut.
    pub fn new(inner: B, floor: RateFloor, cut: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            floor,
            waited: Duration::ZERO,
            waiting_since: None,
            bytes: 0,
            timer: Box::pin(tokio::time::sleep(floor.window)),
            cut,
        }
    }

    fn waited_now(&self, now: Instant) -> Duration {
        self.waited + self.waiting_since.map_or(Duration::ZERO, |s| now - s)
    }

    /// Closes the window if it is over: false when the client sent too little in it.
    fn window_passes(&mut self, now: Instant) -> bool {
        if self.waited_now(now) < self.floor.window {
            return true;
        }
        if self.bytes < self.floor.window_bytes_min() {
            return false;
        }
        self.bytes = 0;
        self.waited = Duration::ZERO;
        self.waiting_since = self.waiting_since.map(|_| now);
        true
    }

    fn too_slow(&self) -> BodyTooSlow {
        self.cut.store(true, Ordering::Relaxed);
        BodyTooSlow {
            bytes_per_s: self.floor.bytes_per_s,
            window_ms: self.floor.window.as_millis(),
        }
    }
}

impl<B> HttpBody for RateFloorBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.cut.load(Ordering::Relaxed) {
            return Poll::Ready(Some(Err(this.too_slow().into())));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let now = Instant::now();
                if let Some(since) = this.waiting_since.take() {
                    this.waited += now - since;
                }
                if let Some(Ok(f)) = &frame {
                    this.bytes += f.data_ref().map_or(0, |d| d.len() as u64);
                }
                if frame.is_some() && !this.window_passes(now) {
                    return Poll::Ready(Some(Err(this.too_slow().into())));
                }
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => loop {
                let now = Instant::now();
                let since = *this.waiting_since.get_or_insert(now);
                if !this.window_passes(now) {
                    return Poll::Ready(Some(Err(this.too_slow().into())));
                }
                // The window ends when the waiting adds up to it.
                let left = this.floor.window.saturating_sub(this.waited);
                let at = this.waiting_since.unwrap_or(since) + left;
                this.timer.as_mut().reset(at);
                if this.timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Middleware: wraps every request body in a [`RateFloorBody`], and answers `408 body_too_slow`
/// when it was cut, whatever the handler answered.
pub(super) async fn rate_floor(
    State(state): State<Arc<(RateFloor, HttpMetrics)>>,
    request: Request,
    next: Next,
) -> Response {
    let (floor, metrics) = &*state;
    if floor.bytes_per_s == 0 {
        return next.run(request).await;
    }
    let cut = Arc::new(AtomicBool::new(false));
    let request = request.map(|b| Body::new(RateFloorBody::new(b, *floor, cut.clone())));
    let response = next.run(request).await;
    if !cut.load(Ordering::Relaxed) {
        return response;
    }
    metrics.slow_bodies.inc();
    let err = ApiError {
        status: StatusCode::REQUEST_TIMEOUT,
        code: "body_too_slow",
        message: format!(
            "the request body arrived slower than {} bytes/s (the node's \
             http.body_rate_min_bytes_per_s); send it faster or in smaller requests",
            floor.bytes_per_s
        ),
    };
    let mut response = err.into_response();
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt as _, StreamBody};

    use super::*;

    fn floor() -> RateFloor {
        RateFloor {
            bytes_per_s: 1000,
            window: Duration::from_millis(100),
        }
    }

    #[tokio::test]
    async fn a_stalled_body_is_cut_after_one_window() {
        let (tx, rx) = futures::channel::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
        let cut = Arc::new(AtomicBool::new(false));
        let mut body = RateFloorBody::new(StreamBody::new(rx), floor(), cut.clone());
        let mut tx = tx;
        futures::SinkExt::send(&mut tx, Ok(Frame::data(Bytes::from_static(b"12345"))))
            .await
            .expect("test");
        let first = body.frame().await.expect("test").expect("test");
        assert_eq!(first.into_data().expect("test").len(), 5);
        let start = Instant::now();
        let err = body.frame().await.expect("test").expect_err("test");
        assert!(err.is::<BodyTooSlow>(), "{err}");
        assert!(cut.load(Ordering::Relaxed));
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(100) && waited < Duration::from_millis(1000),
            "{waited:?}"
        );
        drop(tx);
    }

    #[tokio::test]
    async fn a_body_at_the_floor_is_never_cut() {
        let (mut tx, rx) =
            futures::channel::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
        let cut = Arc::new(AtomicBool::new(false));
        let mut body = RateFloorBody::new(StreamBody::new(rx), floor(), cut.clone());
        let sender = tokio::spawn(async move {
            // 100 bytes every 50 ms: twice the floor of 100 bytes per 100 ms.
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                futures::SinkExt::send(&mut tx, Ok(Frame::data(Bytes::from(vec![0u8; 100]))))
                    .await
                    .expect("test");
            }
        });
        let mut got = 0;
        while let Some(frame) = body.frame().await {
            got += frame.expect("test").into_data().expect("test").len();
        }
        assert_eq!(got, 2000);
        assert!(!cut.load(Ordering::Relaxed));
        sender.await.expect("test");
    }
}
