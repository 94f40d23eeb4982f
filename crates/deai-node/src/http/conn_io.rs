//! One connection's socket as hyper sees it: it records when bytes last moved (for the idle
//! timeout), answers hyper's own parse errors as JSON, and lingers before closing.
//!
//! hyper answers a request it cannot parse (garbage bytes, a negative `content-length`, a head
//! over `max_buf_size`) by itself, with an empty body, before any handler runs. Those answers are
//! recognised here, as they are written: a `4xx` head with `content-length: 0`, which the node's
//! own handlers never send (every error of theirs is a JSON body, see `api::json_errors`), is
//! replaced by the same status with a JSON [`ApiError`](crate::api::ApiError) body.
//!
//! After the last answer, hyper closes. A client that is still sending its body (one refused
//! with 413, say) would then get a reset and never read the answer, so the close is a lingering
//! one: the write side is shut (the client reads the answer, then end of stream), and what the
//! client still sends is read and discarded until it closes, for at most `linger_ms` and
//! `linger_bytes_max`.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use axum::http::StatusCode;
use prometheus_client::metrics::counter::Counter;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    time::{Instant, Sleep},
};

use crate::api::ApiError;

/// When a connection's bytes last moved, and how many of its requests are in a handler.
#[derive(Debug)]
pub(super) struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    handlers: AtomicUsize,
}

impl Activity {
    pub(super) fn new() -> Self {
        Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            handlers: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// When the connection counts as idle, if nothing moves before.
    pub(super) fn idle_at(&self, idle: Duration) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + idle
    }

    /// Whether a handler is running (its own timeout bounds it, not the idle one).
    pub(super) fn handling(&self) -> bool {
        self.handlers.load(Ordering::Relaxed) > 0
    }

    /// Marks a handler running until the guard is dropped.
    pub(super) fn handler(self: &Arc<Self>) -> HandlerGuard {
        self.handlers.fetch_add(1, Ordering::Relaxed);
        HandlerGuard(self.clone())
    }
}

/// A running handler; see [`Activity::handler`].
pub(super) struct HandlerGuard(Arc<Activity>);

impl Drop for HandlerGuard {
    fn drop(&mut self) {
        self.0.touch();
        self.0.handlers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long and how much a closing connection reads from a client still sending.
#[derive(Debug, Clone, Copy)]
pub(super) struct LingerLimits {
    pub(super) time: Duration,
    pub(super) bytes: u64,
}

/// The socket of one connection; see the module docs.
pub(super) struct ConnIo {
    stream: TcpStream,
    activity: Arc<Activity>,
    malformed: Counter,
    /// The JSON answer replacing hyper's empty one, and how much of it is written.
    replacement: Option<(Vec<u8>, usize)>,
    linger: Linger,
}

struct Linger {
    limits: LingerLimits,
    write_shut: bool,
    deadline: Option<Pin<Box<Sleep>>>,
    read: u64,
    done: bool,
}

impl ConnIo {
    pub(super) fn new(
        stream: TcpStream,
        activity: Arc<Activity>,
        malformed: Counter,
        linger: LingerLimits,
    ) -> Self {
        Self {
            stream,
            activity,
            malformed,
            replacement: None,
            linger: Linger {
                limits: linger,
                write_shut: false,
                deadline: None,
                read: 0,
                done: false,
            },
        }
    }

    /// Writes what is left of the replacement answer.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some((bytes, written)) = &mut self.replacement else {
            return Poll::Ready(Ok(()));
        };
        while *written < bytes.len() {
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Reads and discards what the client still sends, within the linger limits.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let limits = self.linger.limits;
        let deadline = self
            .linger
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limits.time)));
        let mut scratch = [0u8; 8192];
        while !self.linger.done {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    self.linger.read += buf.filled().len() as u64;
                    self.linger.done = self.linger.read >= limits.bytes;
                }
                Poll::Ready(_) => self.linger.done = true,
                Poll::Pending => {
                    if deadline.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.linger.done = true;
                }
            }
        }
        Poll::Ready(())
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacement.is_none()
            && let Some(json) = hyper_error_as_json(buf)
        {
            this.malformed.inc();
            this.replacement = Some((json, 0));
        }
        if this.replacement.is_some() {
            // hyper's own answer is dropped whole; the connection closes after it.
            ready!(this.poll_replacement(cx))?;
            this.activity.touch();
            return Poll::Ready(Ok(buf.len()));
        }
        let written = ready!(Pin::new(&mut this.stream).poll_write(cx, buf))?;
        if written > 0 {
            this.activity.touch();
        }
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        if !this.linger.write_shut {
            ready!(Pin::new(&mut this.stream).poll_shutdown(cx))?;
            this.linger.write_shut = true;
        }
        ready!(this.poll_linger(cx));
        Poll::Ready(Ok(()))
    }
}

/// The JSON answer for hyper's own empty error answer `head`, or `None` when `head` is not one.
fn hyper_error_as_json(head: &[u8]) -> Option<Vec<u8>> {
    let rest = head
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| head.strip_prefix(b"HTTP/1.0 "))?;
    let digits = rest.get(..3)?;
    if digits[0] != b'4' || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    let fields = head[..end + 2].to_ascii_lowercase();
    let empty = fields
        .windows(21)
        .any(|w| w == b"\r\ncontent-length: 0\r\n");
    if !empty {
        return None;
    }
    let status = StatusCode::from_bytes(digits).ok()?;
    let (code, message) = match status {
        StatusCode::URI_TOO_LONG => (
            "uri_too_long",
            "the request target is longer than the node reads; shorten the path and query",
        ),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
            "headers_too_large",
            "the request head (request line and headers) is larger than the node reads, or has \
             too many headers",
        ),
        _ => (
            "bad_http",
            "the bytes sent are not a well-formed HTTP/1.1 request (request line, headers, \
             content-length)",
        ),
    };
    Some(json_answer(status, code, message))
}

/// A complete HTTP/1.1 answer with an [`ApiError`] body, closing the connection.
pub(super) fn json_answer(status: StatusCode, code: &'static str, message: &str) -> Vec<u8> {
    let body = ApiError {
        status,
        code,
        message: message.to_string(),
    }
    .body();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_empty_errors_become_json() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n\
                     content-length: 0\r\ndate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(hyper_error_as_json(head).expect("replaced")).expect("test");
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        let body = out.split("\r\n\r\n").nth(1).expect("test");
        let v: serde_json::Value = serde_json::from_str(body).expect("test");
        assert_eq!(v["error"]["code"], "headers_too_large");
        assert!(out.contains(&format!("content-length: {}\r\n", body.len())));
    }

    #[test]
    fn answers_with_bodies_and_successes_pass() {
        for head in [
            &b"HTTP/1.1 404 Not Found\r\ncontent-length: 57\r\n\r\n{}"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
            b"HTTP/1.1 4",
            b"{\"error\": 1}",
        ] {
            assert!(hyper_error_as_json(head).is_none(), "{head:?}");
        }
    }
}
