//! The HTTP server against clients that misbehave, over real loopback sockets (issue 12,
//! findings 1, 4 and 9, and the per-IP write limit): every case fails on a plain `axum::serve`.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use crate::common::with_node;
use deai_ledger::{Address, Transfer, TxBody};
use deai_node::{
    blobs::hash_bytes,
    client::Client,
    config::{DEV_KEY_FILE, HttpConfig},
    keyfile,
};
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
    time::timeout,
};

/// An answer read off a raw socket: its status and JSON body (`Null` when not JSON).
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// Reads one answer (head and `content-length` body) within `limit`; `None` when the server
/// closed or stayed silent without one.
async fn read_answer(s: &mut TcpStream, limit: Duration) -> Option<Answer> {
    let read = async {
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if got.len() >= end + 4 + len {
                    let status = head.split_whitespace().nth(1)?.parse().ok()?;
                    let body =
                        serde_json::from_slice(&got[end + 4..end + 4 + len]).unwrap_or(Value::Null);
                    return Some(Answer { status, body });
                }
            }
            let n = s.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            got.extend_from_slice(&buf[..n]);
        }
    };
    timeout(limit, read).await.ok().flatten()
}

/// Whether the server closed `s` (end of stream or reset) within `limit`, whatever it sent.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let drain = async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    timeout(limit, drain).await.is_ok()
}

/// Sends `bytes` on a fresh connection and reads the answer.
async fn exchange(addr: SocketAddr, bytes: &[u8]) -> Option<Answer> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    read_answer(&mut s, Duration::from_secs(10)).await
}

/// `GET /v1/status` until it answers 200 (a refused connection is retried), within `limit`.
async fn honest_status(addr: SocketAddr, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        let req = b"GET /v1/status HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
        if let Ok(mut s) = TcpStream::connect(addr).await
            && s.write_all(req).await.is_ok()
            && let Some(a) = read_answer(&mut s, Duration::from_secs(2)).await
            && a.status == 200
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn metric(addr: SocketAddr, name: &str) -> f64 {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

/// Finding 1: thousands of idle connections against a cap of 64. Those over the cap are refused
/// at once, those under it (partial headers) are closed after the head timeout, honest clients
/// are answered and transactions still finalize.
#[test]
fn a_flood_of_idle_connections_is_capped_and_timed_out() {
    let http = HttpConfig {
        connections_max: 64,
        // Every client here is 127.0.0.1: let it take every slot, so the global cap refuses.
        connections_per_ip_max: 64,
        header_read_timeout_ms: 1_000,
        idle_timeout_ms: 1_000,
        ..HttpConfig::default()
    };
    with_node(http, |node, dir| async move {
        let addr = node.http_addr;
        let mut partial = Vec::new();
        for _ in 0..64 {
            let mut s = TcpStream::connect(addr).await?;
            s.write_all(b"GET /v1/status HTTP/1.1\r\nhost: x\r\nx-slow: ")
                .await?;
            partial.push(s);
        }
        let flood_start = Instant::now();
        let mut flood = Vec::new();
        for _ in 0..3_000 {
            flood.push(TcpStream::connect(addr).await?);
        }
        // Every one of them is closed soon: refused over the cap, or timed out under it.
        let closed = futures::future::join_all(
            flood
                .iter_mut()
                .chain(partial.iter_mut())
                .map(|s| closed_within(s, Duration::from_secs(4))),
        )
        .await;
        let open = closed.iter().filter(|c| !**c).count();
        assert_eq!(
            open,
            0,
            "{open} connections still open after {:?}",
            flood_start.elapsed()
        );
        assert!(
            honest_status(addr, Duration::from_secs(5)).await,
            "honest GET refused"
        );
        let refused = metric(addr, "deai_http_connections_refused_total").await;
        assert!(refused >= 2_900.0, "refused {refused}");
        assert!(metric(addr, "deai_http_connections_idle_closed_total").await >= 0.0);
        // Consensus storage still has descriptors: a transfer finalizes.
        let dev = keyfile::read(&dir.join(DEV_KEY_FILE))?;
        let body = TxBody::Transfer(Transfer {
            to: Address([5u8; 32]),
            amount: 1,
        });
        Client::new(format!("http://{addr}"))
            .send(&dev, body, None, Some(Duration::from_secs(30)))
            .await?;
        Ok(())
    });
}

/// One host holding idle connections up to the server's cap leaves honest clients on other
/// addresses unserved until the head timeout; with a per-address share, it gets only its share
/// and everyone else is answered at once.
#[test]
fn one_address_cannot_take_every_connection() {
    let http = HttpConfig {
        connections_max: 64,
        connections_per_ip_max: 8,
        header_read_timeout_ms: 30_000,
        idle_timeout_ms: 30_000,
        ..HttpConfig::default()
    };
    with_node(http, |node, _dir| async move {
        let addr = node.http_addr;
        let mut held = Vec::new();
        for _ in 0..100 {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind("127.0.0.2:0".parse()?)?;
            let mut s = socket.connect(addr).await?;
            s.write_all(b"GET /v1/status HTTP/1.1\r\nhost: x\r\nx-slow: ")
                .await?;
            held.push(s);
        }
        let mut refused = 0;
        for s in &mut held {
            if let Some(a) = read_answer(s, Duration::from_millis(200)).await {
                assert_eq!((a.status, a.code()), (503, "too_many_connections"));
                refused += 1;
            }
        }
        assert_eq!(refused, 92, "all but the address's 8 refused");
        let start = Instant::now();
        assert!(
            honest_status(addr, Duration::from_secs(2)).await,
            "an honest client on another address was not served"
        );
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(
            metric(addr, "deai_http_connections_refused_per_ip_total").await,
            92.0
        );
        drop(held);
        Ok(())
    });
}

/// Finding 4: 64 uploads that send 100 of 1,000,000 bytes and stall are cut within the rate
/// floor's window, and an honest upload afterwards is stored.
#[test]
fn stalled_uploads_are_cut_and_free_the_store() {
    let http = HttpConfig {
        body_rate_min_bytes_per_s: 10_000,
        body_rate_window_ms: 500,
        ..HttpConfig::default()
    };
    with_node(http, |node, dir| async move {
        let addr = node.http_addr;
        let name = hash_bytes(&[7u8; 1_000_000]).to_string();
        let head = format!(
            "PUT /v1/blobs/{name} HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\n\
             content-length: 1000000\r\n\r\n"
        );
        let mut stalled = Vec::new();
        for _ in 0..64 {
            let mut s = TcpStream::connect(addr).await?;
            s.write_all(head.as_bytes()).await?;
            s.write_all(&[7u8; 100]).await?;
            stalled.push(s);
        }
        let start = Instant::now();
        let answers = futures::future::join_all(
            stalled
                .iter_mut()
                .map(|s| read_answer(s, Duration::from_secs(5))),
        )
        .await;
        for a in &answers {
            let a = a.as_ref().expect("a stalled upload is answered");
            assert_eq!((a.status, a.code()), (408, "body_too_slow"), "{a:?}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        // An honest (signed, funded) upload is stored at once.
        let data = vec![9u8; 300_000];
        let dev = keyfile::read(&dir.join(DEV_KEY_FILE))?;
        let stored = Client::new(format!("http://{addr}"))
            .put_blob(&dev, &data)
            .await?;
        assert_eq!(stored, hash_bytes(&data));
        assert!(metric(addr, "deai_http_bodies_too_slow_total").await >= 64.0);
        Ok(())
    });
}

/// Finding 9: what the HTTP layer itself refuses is answered JSON with a code, over raw sockets.
#[test]
fn every_refusal_is_json_even_before_routing() {
    with_node(HttpConfig::default(), |node, _| async move {
        let addr = node.http_addr;
        let long_path = format!("/v1/blocks/{}", "1".repeat(20_000));
        let huge_path = format!("/v1/blocks/{}", "1".repeat(100_000));
        let many_headers: String = (0..200)
            .map(|i| format!("x-h{i}: {}\r\n", "v".repeat(500)))
            .collect();
        let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
            (
                "long target",
                format!("GET {long_path} HTTP/1.1\r\nhost: x\r\n\r\n").into_bytes(),
                414,
                "uri_too_long",
            ),
            (
                // hyper refuses this one itself, before any layer: its empty 414 is rewritten.
                "target over hyper's own limit",
                format!("GET {huge_path} HTTP/1.1\r\nhost: x\r\n\r\n").into_bytes(),
                414,
                "uri_too_long",
            ),
            (
                "huge headers",
                format!("GET /v1/status HTTP/1.1\r\nhost: x\r\n{many_headers}\r\n").into_bytes(),
                431,
                "headers_too_large",
            ),
            (
                "garbage",
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n".to_vec(),
                400,
                "bad_http",
            ),
            (
                "negative content-length",
                b"POST /v1/txs HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                  content-length: -5\r\n\r\n"
                    .to_vec(),
                400,
                "bad_http",
            ),
            (
                "signed height",
                b"GET /v1/blocks/+1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(),
                400,
                "bad_id",
            ),
            (
                "form post",
                b"POST /v1/txs HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\n\
                  content-length: 6\r\nconnection: close\r\n\r\ntx=00\n"
                    .to_vec(),
                415,
                "bad_content_type",
            ),
            (
                "upload labelled JSON",
                format!(
                    "PUT /v1/blobs/{} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                     content-length: 2\r\nconnection: close\r\n\r\n{{}}",
                    hash_bytes(b"{}")
                )
                .into_bytes(),
                415,
                "bad_content_type",
            ),
        ];
        for (what, bytes, status, code) in cases {
            let a = exchange(addr, &bytes)
                .await
                .unwrap_or_else(|| panic!("{what}: no answer"));
            assert_eq!((a.status, a.code()), (status, code), "{what}: {a:?}");
            assert!(
                a.body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{what}: {a:?}"
            );
        }
        // A 50 MB post written whole before the answer is read: the client sees the 413.
        let mut s = TcpStream::connect(addr).await?;
        let size = 50_000_000;
        let head = format!(
            "POST /v1/txs HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             content-length: {size}\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await?;
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..size / chunk.len() {
            s.write_all(&chunk)
                .await
                .expect("the node reads what a refused client still sends");
        }
        s.write_all(&chunk[..size % chunk.len()]).await?;
        let a = read_answer(&mut s, Duration::from_secs(10))
            .await
            .expect("the 413 is read after the whole body was written");
        assert_eq!((a.status, a.code()), (413, "body_too_large"), "{a:?}");
        assert!(honest_status(addr, Duration::from_secs(5)).await);
        Ok(())
    });
}

/// Per-IP write limit: over the burst, writes get `429 rate_limited` with `Retry-After`, while
/// reads go on.
#[test]
fn writes_over_the_per_ip_rate_get_429() {
    let http = HttpConfig {
        writes_per_ip_per_s: 2,
        writes_per_ip_burst: 5,
        ..HttpConfig::default()
    };
    with_node(http, |node, _| async move {
        let url = format!("http://{}/v1/txs", node.http_addr);
        let client = reqwest::Client::new();
        let mut statuses = Vec::new();
        let mut retry_after = None;
        for _ in 0..12 {
            let resp = client
                .post(&url)
                .header("content-type", "application/json")
                .body(r#"{"tx":"00"}"#)
                .send()
                .await?;
            statuses.push(resp.status().as_u16());
            if resp.status().as_u16() == 429 {
                retry_after = resp.headers().get("retry-after").cloned();
                let v: Value = resp.json().await?;
                assert_eq!(v["error"]["code"], "rate_limited", "{v}");
            }
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == 400).count(),
            5,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 429).count(),
            7,
            "{statuses:?}"
        );
        let secs: u64 = retry_after.unwrap().to_str()?.parse()?;
        assert!((1..=1).contains(&secs), "retry after {secs}");
        assert!(
            honest_status(node.http_addr, Duration::from_secs(2)).await,
            "reads go on"
        );
        assert_eq!(
            metric(node.http_addr, "deai_http_writes_rate_limited_total").await,
            7.0
        );
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let resp = client
            .post(&url)
            .header("content-type", "application/json")
            .body(r#"{"tx":"00"}"#)
            .send()
            .await?;
        assert_eq!(resp.status().as_u16(), 400, "a token came back");
        Ok(())
    });
}
