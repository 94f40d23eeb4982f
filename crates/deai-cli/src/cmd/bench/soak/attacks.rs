//! The hostile side of the soak: each attack of issue 12 as a loop, each from its own loopback
//! address (so that, as from separate hosts, one attacker's per-address limits are not
//! another's), each counting what the node answered.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use deai_node::client::{Client, ClientError};
use ed25519_dalek::SigningKey;
use rand::{Rng as _, RngCore as _};
use serde::Serialize;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpSocket, TcpStream},
    task::JoinSet,
    time::timeout,
};

/// What one attack did and what the node answered.
#[derive(Debug, Serialize)]
pub struct Tally {
    /// The attack.
    pub name: &'static str,
    /// The loopback address it came from.
    pub from: Ipv4Addr,
    /// Attempts made (connections, requests or transactions).
    pub attempts: u64,
    /// How they ended: `STATUS code` for an answer, `closed` when the node hung up without one.
    pub outcomes: BTreeMap<String, u64>,
}

/// A running attack's counters.
pub(super) struct Counter {
    name: &'static str,
    from: Ipv4Addr,
    attempts: AtomicU64,
    outcomes: Mutex<BTreeMap<String, u64>>,
}

impl Counter {
    fn new(name: &'static str, from: Ipv4Addr) -> Arc<Self> {
        Arc::new(Self {
            name,
            from,
            attempts: AtomicU64::new(0),
            outcomes: Mutex::default(),
        })
    }

    fn attempt(&self) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
    }

    fn note(&self, outcome: impl Into<String>) {
        *self
            .outcomes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(outcome.into())
            .or_default() += 1;
    }

    fn note_client(&self, result: Result<(), ClientError>) {
        match result {
            Ok(()) => self.note("accepted"),
            Err(ClientError::Api { status, code, .. }) => self.note(format!("{status} {code}")),
            Err(ClientError::Unreachable { .. }) => self.note("unreachable"),
            Err(_) => self.note("bad_answer"),
        }
    }

    /// The counts so far.
    pub(super) fn tally(&self) -> Tally {
        Tally {
            name: self.name,
            from: self.from,
            attempts: self.attempts.load(Ordering::Relaxed),
            outcomes: self
                .outcomes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

/// What the attacks need to know about the node.
#[derive(Clone)]
pub(super) struct Target {
    /// The node's API.
    pub(super) http: SocketAddr,
    /// Its chain id.
    pub(super) chain_id: String,
    /// Funded accounts the attacker holds (for the block-space flood).
    pub(super) funded: Vec<SigningKey>,
}

/// The attacks the soak runs at once, each from its own loopback address.
#[derive(Clone, Copy)]
enum Attack {
    IdleConnections,
    SlowHeaders,
    StalledUploads,
    UnfundedGappedTxs,
    MalformedHttp,
    FreshKeySignedUploads,
    UnsignedUploads,
    ForgedTxFlood,
    FundedBlockFlood,
}

impl Attack {
    const ALL: [Self; 9] = [
        Self::IdleConnections,
        Self::SlowHeaders,
        Self::StalledUploads,
        Self::UnfundedGappedTxs,
        Self::MalformedHttp,
        Self::FreshKeySignedUploads,
        Self::UnsignedUploads,
        Self::ForgedTxFlood,
        Self::FundedBlockFlood,
    ];

    /// The name it reports under.
    fn name(self) -> &'static str {
        match self {
            Self::IdleConnections => "idle_connections",
            Self::SlowHeaders => "slow_headers",
            Self::StalledUploads => "stalled_uploads",
            Self::UnfundedGappedTxs => "unfunded_gapped_txs",
            Self::MalformedHttp => "malformed_http",
            Self::FreshKeySignedUploads => "fresh_key_signed_uploads",
            Self::UnsignedUploads => "unsigned_uploads",
            Self::ForgedTxFlood => "forged_tx_flood",
            Self::FundedBlockFlood => "funded_block_flood",
        }
    }

    /// Its source address: 127.0.0.2 for the first, one more for each next.
    fn source(self) -> Ipv4Addr {
        Ipv4Addr::new(127, 0, 0, 2 + self as u8)
    }

    /// Concurrent workers: one per funded account for the block flood.
    fn workers(self, target: &Target) -> usize {
        match self {
            Self::IdleConnections => 3_000,
            Self::SlowHeaders => 200,
            Self::StalledUploads => 64,
            Self::UnfundedGappedTxs => 16,
            Self::MalformedHttp => 8,
            Self::FreshKeySignedUploads => 16,
            Self::UnsignedUploads => 4,
            Self::ForgedTxFlood => 256,
            Self::FundedBlockFlood => target.funded.len(),
        }
    }

    /// One worker's loop.
    async fn run(self, c: &Counter, t: &Target, worker: usize) {
        let _ = match self {
            Self::IdleConnections => idle_connection(c, t).await,
            Self::SlowHeaders => slow_headers(c, t).await,
            Self::StalledUploads => stalled_upload(c, t).await,
            Self::UnfundedGappedTxs => unfunded_gapped(c, t).await,
            Self::MalformedHttp => malformed(c, t).await,
            Self::FreshKeySignedUploads => fresh_key_upload(c, t).await,
            Self::UnsignedUploads => unsigned_upload(c, t).await,
            Self::ForgedTxFlood => forged_tx(c, t).await,
            Self::FundedBlockFlood => funded_flood(c, t, worker).await,
        };
    }
}

/// Starts every attack; they run until `set` is dropped or aborted.
pub(super) fn start_all(target: &Target, set: &mut JoinSet<()>) -> Vec<Arc<Counter>> {
    let mut counters = Vec::new();
    for attack in Attack::ALL {
        let c = Counter::new(attack.name(), attack.source());
        counters.push(c.clone());
        for worker in 0..attack.workers(target) {
            let (c, t) = (c.clone(), target.clone());
            set.spawn(async move { attack.run(&c, &t, worker).await });
        }
    }
    counters
}

async fn connect(c: &Counter, t: &Target) -> Option<TcpStream> {
    c.attempt();
    let socket = TcpSocket::new_v4().ok()?;
    if socket.bind(SocketAddr::from((c.from, 0))).is_err() {
        c.note("bind_error");
        return None;
    }
    match socket.connect(t.http).await {
        Ok(s) => Some(s),
        Err(_) => {
            c.note("connect_error");
            tokio::time::sleep(Duration::from_millis(100)).await;
            None
        }
    }
}

/// Reads until the node answers (noted as `STATUS code`) or hangs up (`closed`), within `limit`.
async fn outcome(s: &mut TcpStream, limit: Duration) -> String {
    let read = async {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n")
                && let Some(answer) = summarize(&got, end)
            {
                return answer;
            }
        }
        "closed".to_string()
    };
    timeout(limit, read)
        .await
        .unwrap_or_else(|_| "no_answer".into())
}

/// `STATUS code` of a raw answer once its JSON body is complete.
fn summarize(got: &[u8], head_end: usize) -> Option<String> {
    let head = String::from_utf8_lossy(&got[..head_end]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1)?.to_string();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let body = got.get(head_end + 4..head_end + 4 + len)?;
    let code = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
        .unwrap_or_default();
    Some(format!("{status} {code}").trim().to_string())
}

/// Finding 1: a connection that sends part of a head and waits, reopened when the node closes it.
async fn idle_connection(c: &Counter, t: &Target) -> anyhow::Result<()> {
    loop {
        let Some(mut s) = connect(c, t).await else {
            continue;
        };
        let _ = s.write_all(b"GET /v1/status HTTP/1.1\r\nhost: x\r\n").await;
        let what = outcome(&mut s, Duration::from_secs(600)).await;
        // Refused at once: come back in a second (each of thousands of workers), rather than
        // spin; the node's cost of refusing is measured, not the attacker's own CPU on a shared
        // machine.
        let pause = if what.starts_with("503") { 1_000 } else { 50 };
        c.note(what);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// Finding 1 (slowloris): a head one header line a second, never finished.
async fn slow_headers(c: &Counter, t: &Target) -> anyhow::Result<()> {
    loop {
        let Some(mut s) = connect(c, t).await else {
            continue;
        };
        let _ = s.write_all(b"GET /v1/status HTTP/1.1\r\n").await;
        let (mut r, mut w) = s.split();
        let trickle = async {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if w.write_all(b"x-slow: 1\r\n").await.is_err() {
                    return;
                }
            }
        };
        let answered = async {
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => return "closed".to_string(),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
                if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n")
                    && let Some(answer) = summarize(&got, end)
                {
                    return answer;
                }
            }
        };
        let what = tokio::select! {
            _ = trickle => "closed".to_string(),
            a = answered => a,
        };
        c.note(what);
    }
}

/// Finding 4: an upload that announces a megabyte, sends 100 bytes and stalls.
async fn stalled_upload(c: &Counter, t: &Target) -> anyhow::Result<()> {
    let name = deai_node::blobs::hash_bytes(&[7u8; 1_000_000]).to_string();
    let head = format!(
        "PUT /v1/blobs/{name} HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\n\
         content-length: 1000000\r\n\r\n"
    );
    loop {
        let Some(mut s) = connect(c, t).await else {
            continue;
        };
        let _ = s.write_all(head.as_bytes()).await;
        let _ = s.write_all(&[7u8; 100]).await;
        c.note(outcome(&mut s, Duration::from_secs(600)).await);
    }
}

/// Finding 2: never-funded keys sending nonces ahead of their account, at a huge fee.
async fn unfunded_gapped(c: &Counter, t: &Target) -> anyhow::Result<()> {
    let client = Client::new(format!("http://{}", t.http)).bound_to(c.from.into());
    loop {
        let key = SigningKey::generate(&mut rand::thread_rng());
        for nonce in 1..=64 {
            c.attempt();
            let tx = super::transfer(&key, &t.chain_id, nonce, 1 << 100, 1);
            c.note_client(client.submit(&tx).await.map(|_| ()));
        }
    }
}

/// Finding 9: bytes that are not HTTP, a 20 kB target, 100 kB of headers, a negative length.
async fn malformed(c: &Counter, t: &Target) -> anyhow::Result<()> {
    let long_target = format!("GET /v1/{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(20_000));
    let mut huge_headers = String::from("GET /v1/status HTTP/1.1\r\nhost: x\r\n");
    for i in 0..100 {
        huge_headers.push_str(&format!("x-h{i}: {}\r\n", "b".repeat(1_000)));
    }
    huge_headers.push_str("\r\n");
    let payloads: [Vec<u8>; 4] = [
        b"\x00\x01\x02 GARBAGE \xff\xfe\r\n\r\n".to_vec(),
        long_target.into_bytes(),
        huge_headers.into_bytes(),
        b"POST /v1/txs HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: -5\r\n\r\n"
            .to_vec(),
    ];
    for payload in payloads.iter().cycle() {
        let Some(mut s) = connect(c, t).await else {
            continue;
        };
        let _ = s.write_all(payload).await;
        c.note(outcome(&mut s, Duration::from_secs(30)).await);
    }
    Ok(())
}

/// Finding 11: blob uploads signed by a fresh key each time (the replay guard must not fill).
async fn fresh_key_upload(c: &Counter, t: &Target) -> anyhow::Result<()> {
    let client = Client::new(format!("http://{}", t.http)).bound_to(c.from.into());
    let mut bytes = vec![0u8; 1024];
    loop {
        c.attempt();
        rand::thread_rng().fill_bytes(&mut bytes);
        let key = SigningKey::generate(&mut rand::thread_rng());
        c.note_client(client.put_blob(&key, &bytes).await.map(|_| ()));
    }
}

/// Finding 12: unsigned megabyte uploads.
async fn unsigned_upload(c: &Counter, t: &Target) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(c.from))
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut bytes = vec![0u8; 1 << 20];
    loop {
        c.attempt();
        rand::thread_rng().fill_bytes(&mut bytes);
        let hash = deai_node::blobs::hash_bytes(&bytes);
        let answer = http
            .put(format!("http://{}/v1/blobs/{hash}", t.http))
            .header("content-type", "application/octet-stream")
            .body(bytes.clone())
            .send()
            .await;
        match answer {
            Ok(r) => {
                let status = r.status().as_u16();
                let code = r
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
                    .unwrap_or_default();
                c.note(format!("{status} {code}").trim().to_string());
            }
            Err(_) => c.note("closed"),
        }
    }
}

/// Finding 10 as an attack: many concurrent posts of transactions with forged signatures.
async fn forged_tx(c: &Counter, t: &Target) -> anyhow::Result<()> {
    let client = Client::new(format!("http://{}", t.http)).bound_to(c.from.into());
    loop {
        c.attempt();
        let key = SigningKey::generate(&mut rand::thread_rng());
        let mut tx = super::transfer(&key, &t.chain_id, 0, 1, 2);
        tx.signature[rand::thread_rng().gen_range(0..64)] ^= 0x40;
        c.note_client(client.submit(&tx).await.map(|_| ()));
    }
}

/// Finding 3's cousin: a funded attacker keeping its accounts' share of the mempool full of
/// valid transfers, competing with honest ones for block space at the same fee.
async fn funded_flood(c: &Counter, t: &Target, worker: usize) -> anyhow::Result<()> {
    let client = Client::new(format!("http://{}", t.http)).bound_to(c.from.into());
    let Some(key) = t.funded.get(worker) else {
        return Ok(());
    };
    let mut nonce = 0u64;
    loop {
        c.attempt();
        let tx = super::transfer(key, &t.chain_id, nonce, 1, 3);
        let result = client.submit(&tx).await.map(|_| ());
        let accepted = result.is_ok();
        c.note_client(result);
        if accepted {
            nonce += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
