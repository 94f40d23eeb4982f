//! Issue 12, findings 11–13: who may write to a node, and what a node reads from a peer.
//!
//! - Strangers' self-signed keys cannot fill the replay guard honest peers need (11).
//! - Blob uploads are signed by a key the node accepts, within per-key and total quotas and
//!   above a disk-space floor (12).
//! - Signed requests are bound to the full path with its query and to the recipient; what a
//!   node fetches from a peer-given URL is restricted and size-bounded (13).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
    routing::{get, post},
};
use deai_ledger::TOKEN;
use deai_node::{
    auth::{self, ReplayGuard},
    blobs::{BlobStore, hash_bytes},
    client::Client,
    config::NodeConfig,
    fed,
    roles::{
        RoleContext,
        coordinator::{CoordinatorRole, Join},
        owner::LocalDataset,
        peer::Peer,
        serve::{self, RoleNodeConfig},
        setup,
    },
};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde_json::Value;

fn key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i; 32])
}

/// A key nobody funded: seeded by a counter, never one of [`key`]'s.
fn stranger(i: u32) -> SigningKey {
    let mut seed = [0xA5; 32];
    seed[..4].copy_from_slice(&i.to_be_bytes());
    SigningKey::from_bytes(&seed)
}

/// A validator data directory whose genesis funds `key(1)..=key(funded)`.
fn init_validator(tmp: &std::path::Path, funded: u8, cfg: NodeConfig) -> std::path::PathBuf {
    let dir = tmp.join("validator");
    deai_node::init::init_with(&dir, cfg, |g| {
        g.balances = (1..=funded)
            .map(|i| (deai_node::keyfile::address(&key(i)), 10_000 * TOKEN))
            .collect();
    })
    .expect("init");
    dir
}

async fn serve_router(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Sends `body` with `method` to `url` + `path` with `headers`; (status, error code).
async fn send(
    method: reqwest::Method,
    url: &str,
    path: &str,
    headers: HeaderMap,
    body: &[u8],
) -> (u16, String) {
    let resp = reqwest::Client::new()
        .request(method, format!("{url}{path}"))
        .headers(headers)
        .header("content-type", "application/octet-stream")
        .body(body.to_vec())
        .send()
        .await
        .expect("node answers");
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap_or_default();
    let code = v["error"]["code"].as_str().unwrap_or_default().to_string();
    (status, code)
}

/// A coordinator role served on its own port, with a replay guard of `slots` senders.
async fn coordinator(
    tmp: &std::path::Path,
    name: &str,
    k: SigningKey,
    ledger: &Client,
    slots: usize,
) -> String {
    let mut ctx = RoleContext::connect(k, ledger.clone()).await.unwrap();
    ctx.guard = ReplayGuard::default().with_senders_max(slots);
    let blobs = BlobStore::open(&tmp.join(name), 1 << 20).unwrap();
    let role = CoordinatorRole::new(ctx, blobs, Duration::from_secs(10));
    serve_router(role.router()).await
}

/// Finding 11: a flood of fresh self-signed keys (each asking for something it may not have)
/// used to take every slot of the coordinator's replay guard before the role check, so the
/// honest owner's announcement afterwards got `503 too_many_senders`.
#[test]
fn stranger_keys_cannot_fill_the_replay_guard() {
    const SLOTS: usize = 16;
    let tmp = tempfile::tempdir().unwrap();
    let dir = init_validator(tmp.path(), 2, NodeConfig::default());
    deai_node::run::with_embedded(&dir, |v| async move {
        let ledger = Client::new(format!("http://{}", v.http_addr));
        let owner = RoleContext::connect(key(2), ledger.clone()).await?;
        let split = fed::data::digits_split(2)?;
        let salt = setup::fresh_salt();
        let ds = setup::register_dataset(
            &owner,
            &split.owners[0],
            &salt,
            "digits-8x8",
            crate::common::digits_consent(0),
        )
        .await?;
        let coord = coordinator(tmp.path(), "coord", key(1), &ledger, SLOTS).await;
        let coord_key = key(1).verifying_key();
        let chain = owner.chain_id.clone();
        let join = serde_json::to_vec(&Join {
            datasets: vec![ds],
            url: "http://127.0.0.1:9".into(),
        })?;
        let empty = serde_json::to_vec(&Join {
            datasets: vec![],
            url: "http://127.0.0.1:9".into(),
        })?;
        for i in 0..(3 * SLOTS as u32) {
            let k = stranger(i);
            // Half claim the honest owner's dataset, half claim none at all.
            let body = if i % 2 == 0 { &join } else { &empty };
            let s = sign(&k, &chain, &coord_key, "POST", "/v1/fed/join", body);
            let (status, code) = send(reqwest::Method::POST, &coord, "/v1/fed/join", s, body).await;
            assert_eq!(status, 403, "stranger {i}: {code}");
        }
        // The honest owner still gets in.
        let peer = Peer::new(key(2), chain, Duration::from_secs(10));
        peer.post(&coord, "/v1/fed/join", join, Some(&coord_key))
            .await?;
        Ok(())
    })
    .unwrap();
}

fn sign(
    k: &SigningKey,
    chain: &str,
    to: &VerifyingKey,
    method: &str,
    path: &str,
    body: &[u8],
) -> HeaderMap {
    auth::sign_request(
        k,
        chain,
        to,
        method,
        path,
        auth::NonceClock::process().next(),
        body,
    )
    .to_header_map()
}

/// Finding 13: a signature covers the query too, and names the node it is for: a captured
/// request is refused with another query, and by any other node.
#[test]
fn signed_requests_are_bound_to_the_query_and_the_recipient() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = init_validator(tmp.path(), 2, NodeConfig::default());
    deai_node::run::with_embedded(&dir, |v| async move {
        let ledger = Client::new(format!("http://{}", v.http_addr));
        let owner = RoleContext::connect(key(2), ledger.clone()).await?;
        let split = fed::data::digits_split(2)?;
        let salt = setup::fresh_salt();
        let ds = setup::register_dataset(
            &owner,
            &split.owners[0],
            &salt,
            "digits-8x8",
            crate::common::digits_consent(0),
        )
        .await?;
        let a = coordinator(tmp.path(), "a", key(1), &ledger, 1000).await;
        let b = coordinator(tmp.path(), "b", key(3), &ledger, 1000).await;
        let a_key = key(1).verifying_key();
        let chain = owner.chain_id.clone();
        let join = serde_json::to_vec(&Join {
            datasets: vec![ds],
            url: "http://127.0.0.1:9".into(),
        })?;
        // Signed without a query, sent with one.
        let s = sign(&key(2), &chain, &a_key, "POST", "/v1/fed/join", &join);
        let (status, code) = send(reqwest::Method::POST, &a, "/v1/fed/join?evil=1", s, &join).await;
        assert_eq!((status, code.as_str()), (401, "bad_signature"));
        // Signed with one query, sent with another.
        let s = sign(&key(2), &chain, &a_key, "POST", "/v1/fed/join?v=1", &join);
        let (status, code) = send(reqwest::Method::POST, &a, "/v1/fed/join?v=2", s, &join).await;
        assert_eq!((status, code.as_str()), (401, "bad_signature"));
        // Signed with a query and sent with it: fine.
        let s = sign(&key(2), &chain, &a_key, "POST", "/v1/fed/join?v=1", &join);
        let (status, code) = send(reqwest::Method::POST, &a, "/v1/fed/join?v=1", s, &join).await;
        assert_eq!((status, code.as_str()), (200, ""));
        // Accepted by its recipient, then replayed to another coordinator: refused there.
        let s = sign(&key(2), &chain, &a_key, "POST", "/v1/fed/join", &join);
        let (status, _) = send(reqwest::Method::POST, &a, "/v1/fed/join", s.clone(), &join).await;
        assert_eq!(status, 200);
        let (status, code) = send(reqwest::Method::POST, &b, "/v1/fed/join", s, &join).await;
        assert_eq!((status, code.as_str()), (401, "wrong_recipient"));
        Ok(())
    })
    .unwrap();
}

/// Finding 13: the owner fetches the spec and model from a URL the coordinator chooses; it
/// refuses schemes other than http(s), credentials and absurd lengths before any fetch.
#[test]
fn owner_refuses_blob_urls_it_should_not_fetch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = init_validator(tmp.path(), 2, NodeConfig::default());
    deai_node::run::with_embedded(&dir, |v| async move {
        let validator = format!("http://{}", v.http_addr);
        let split = fed::data::digits_split(2)?;
        let node = serve::start(RoleNodeConfig {
            key: key(2),
            upstream: validator,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            blobs_dir: tmp.path().join("owner-blobs"),
            state_dir: tmp.path().join("owner"),
            blob_max_bytes: 1 << 20,
            datasets: vec![LocalDataset {
                id: 7,
                data: Arc::new(split.owners[0].clone()),
                commitment: setup::commitment(&split.owners[0]),
            }],
            coordinator: false,
            announce_to: vec![],
            peer_timeout: Duration::from_secs(5),
            access: Default::default(),
            genesis: None,
            provider: None,
            identities: vec![],
        })
        .await?;
        let chain = node.ctx.chain_id.clone();
        let long = format!("http://127.0.0.1:1/{}", "a".repeat(5000));
        for bad in [
            "file:///etc/passwd",
            "ftp://127.0.0.1/x",
            "http://user:secret@127.0.0.1:1",
            "gopher://127.0.0.1:70",
            long.as_str(),
            "not a url",
        ] {
            let invite = serde_json::to_vec(&deai_node::roles::owner::Invite {
                task: 1,
                round: 1,
                dataset: 7,
                blobs: bad.into(),
            })?;
            let s = sign(
                &key(1),
                &chain,
                &node.ctx.me(),
                "POST",
                "/v1/fed/invite",
                &invite,
            );
            let (status, code) = send(
                reqwest::Method::POST,
                &node.url,
                "/v1/fed/invite",
                s,
                &invite,
            )
            .await;
            assert_eq!((status, code.as_str()), (400, "bad_blob_url"), "{bad:.60}");
        }
        Ok(())
    })
    .unwrap();
}

/// A peer that answers every blob request with `status` and `body`.
async fn answering(status: StatusCode, body: Vec<u8>) -> String {
    let body = Arc::new(body);
    let app = Router::new()
        .route(
            "/v1/blobs/{hash}",
            get({
                let body = body.clone();
                move || async move { (status, body.as_ref().clone()).into_response() }
            }),
        )
        .route(
            "/v1/fed/join",
            post(move || async move { (status, body.as_ref().clone()).into_response() }),
        );
    serve_router(app).await
}

/// Finding 13: a peer's error answer is read only up to a bound, and what of it reaches an
/// error message is short and free of control characters.
#[tokio::test]
async fn peer_error_bodies_are_bounded_and_sanitized() {
    let mut body = b"\x1b[31mforged\nline\x07".to_vec();
    body.extend(std::iter::repeat_n(b'A', 8 << 20));
    let url = answering(StatusCode::INTERNAL_SERVER_ERROR, body).await;
    let err = Client::new(url.clone())
        .get_blob(&hash_bytes(b"x"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.len() < 2048, "{} bytes of error", err.len());
    assert!(!err.chars().any(|c| c.is_control()), "{err:.200}");
    let peer = Peer::new(key(1), "deai-test".into(), Duration::from_secs(10));
    let err = peer
        .post(
            &url,
            "/v1/fed/join",
            b"{}".to_vec(),
            Some(&key(9).verifying_key()),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.len() < 2048, "{} bytes of error", err.len());
    assert!(!err.chars().any(|c| c.is_control()), "{err:.200}");
    // A success answer over the bound is refused too, not read whole.
    let url = answering(StatusCode::OK, vec![b'{'; 4 << 20]).await;
    let err = peer
        .with_answer_bytes_max(1 << 20)
        .post(
            &url,
            "/v1/fed/join",
            b"{}".to_vec(),
            Some(&key(9).verifying_key()),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than"), "{err:.300}");
}

/// Finding 13: a node never follows a redirect from a peer (it would fetch from a URL nobody
/// checked).
#[tokio::test]
async fn redirects_from_peers_are_not_followed() {
    let target = answering(StatusCode::OK, b"moved bytes".to_vec()).await;
    let app = Router::new().route(
        "/v1/blobs/{hash}",
        get(
            move |axum::extract::Path(h): axum::extract::Path<String>| async move {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, format!("{target}/v1/blobs/{h}"))],
                )
            },
        ),
    );
    let redirecting = serve_router(app).await;
    let got = Client::new(redirecting)
        .get_blob(&hash_bytes(b"moved bytes"))
        .await;
    assert!(got.is_err(), "followed a redirect: {got:?}");
}

/// Finding 12: a fresh validator stores nothing from an unsigned upload or from a key it does
/// not know.
#[test]
fn blob_uploads_need_a_signature_and_a_known_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = init_validator(tmp.path(), 2, NodeConfig::default());
    let me = validator_key(&dir);
    deai_node::run::with_embedded(&dir, |v| async move {
        let base = format!("http://{}", v.http_addr);
        let chain = Client::new(base.clone()).status().await?.chain_id;
        let bytes = vec![7u8; 1 << 20];
        let path = format!("/v1/blobs/{}", hash_bytes(&bytes));
        let (status, code) =
            send(reqwest::Method::PUT, &base, &path, HeaderMap::new(), &bytes).await;
        assert_eq!((status, code.as_str()), (401, "unsigned"));
        let s = sign(&stranger(1), &chain, &me, "PUT", &path, &bytes);
        let (status, code) = send(reqwest::Method::PUT, &base, &path, s, &bytes).await;
        assert_eq!((status, code.as_str()), (403, "upload_not_allowed"));
        let resp = reqwest::get(format!("{base}{path}")).await?;
        assert_eq!(
            resp.status().as_u16(),
            404,
            "the refused blob is not served"
        );
        // Signed for another node: refused by name.
        let s = sign(
            &key(1),
            &chain,
            &key(40).verifying_key(),
            "PUT",
            &path,
            &bytes,
        );
        let (status, code) = send(reqwest::Method::PUT, &base, &path, s, &bytes).await;
        assert_eq!((status, code.as_str()), (401, "wrong_recipient"));
        // A funded account is stored; the client signs for the node as it names itself.
        let client = Client::new(base.clone());
        assert_eq!(client.identity().await?.key, hex::encode(me.as_bytes()));
        let h = client.put_blob(&key(1), &bytes).await?;
        assert_eq!(client.get_blob(&h).await?, bytes);
        // Its signed request replayed: refused.
        let s = sign(&key(2), &chain, &me, "PUT", &path, &bytes);
        let (status, _) = send(reqwest::Method::PUT, &base, &path, s.clone(), &bytes).await;
        assert_eq!(status, 200, "already held");
        let (status, code) = send(reqwest::Method::PUT, &base, &path, s, &bytes).await;
        assert_eq!((status, code.as_str()), (401, "replayed"));
        let metrics = reqwest::get(format!("{base}/metrics"))
            .await?
            .text()
            .await?;
        for reason in ["unsigned", "upload_not_allowed", "wrong_recipient"] {
            let line = format!("deai_blob_uploads_refused_total{{reason=\"{reason}\"}} 1");
            assert!(metrics.contains(&line), "{line} not in {metrics}");
        }
        Ok(())
    })
    .unwrap();
}

/// The validator's node key (the recipient its uploads name).
fn validator_key(dir: &std::path::Path) -> VerifyingKey {
    deai_node::keyfile::read(&dir.join(deai_node::config::NODE_KEY_FILE))
        .unwrap()
        .verifying_key()
}

/// Finding 12: a key's quota, the store's total quota and the disk floor each refuse by name
/// before a byte is stored, and what stays under them is stored.
#[test]
fn upload_quotas_and_the_disk_floor_refuse_with_their_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = NodeConfig::default();
    cfg.access.upload_key_bytes_max = 300_000;
    cfg.access.blob_store_bytes_max = 500_000;
    let dir = init_validator(tmp.path(), 3, cfg);
    let me = validator_key(&dir);
    deai_node::run::with_embedded(&dir, |v| async move {
        let base = format!("http://{}", v.http_addr);
        let client = Client::new(base.clone());
        let blob = |seed: u8, n: usize| vec![seed; n];
        // Key 1: 200 000 bytes fit its quota of 300 000; 200 000 more do not.
        client.put_blob(&key(1), &blob(1, 200_000)).await?;
        let err = client
            .put_blob(&key(1), &blob(2, 200_000))
            .await
            .unwrap_err();
        assert_api(&err, 413, "upload_quota_exceeded");
        // A blob already held costs nothing; small ones still fit.
        client.put_blob(&key(1), &blob(1, 200_000)).await?;
        client.put_blob(&key(1), &blob(3, 50_000)).await?;
        // Key 2 has its own quota, but the store holds 250 000 of its 500 000.
        client.put_blob(&key(2), &blob(4, 200_000)).await?;
        let err = client
            .put_blob(&key(2), &blob(5, 100_000))
            .await
            .unwrap_err();
        assert_api(&err, 507, "blob_store_full");
        // A chunked body (no length announced) is held to the same limits as it streams.
        let big = blob(6, 120_000);
        let id = client.identity().await?;
        let path = format!("/v1/blobs/{}", hash_bytes(&big));
        let s = sign(&key(3), &id.chain_id, &me, "PUT", &path, &big);
        let mut head = format!("PUT {path} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n");
        for (name, value) in &s {
            head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
        }
        head.push_str("connection: close\r\n\r\n");
        let mut body = Vec::new();
        for c in big.chunks(10_000) {
            body.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            body.extend_from_slice(c);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"0\r\n\r\n");
        let answer = raw_http(v.http_addr, &head, &body).await;
        assert!(answer.starts_with("HTTP/1.1 507"), "{answer:.300}");
        assert!(answer.contains("blob_store_full"), "{answer:.300}");
        assert!(
            client.get_blob(&hash_bytes(&big)).await.is_err(),
            "nothing stored"
        );
        let metrics = reqwest::get(format!("{base}/metrics"))
            .await?
            .text()
            .await?;
        assert!(
            metrics.contains("deai_blob_store_bytes 450000"),
            "{metrics}"
        );
        Ok(())
    })
    .unwrap();

    // A floor above any disk's free space: every upload is refused, nothing is stored.
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = NodeConfig::default();
    cfg.access.disk_free_bytes_min = u64::MAX / 2;
    let dir = init_validator(tmp.path(), 1, cfg);
    deai_node::run::with_embedded(&dir, |v| async move {
        let client = Client::new(format!("http://{}", v.http_addr));
        let err = client
            .put_blob(&key(1), b"one byte too many")
            .await
            .unwrap_err();
        assert_api(&err, 507, "disk_space_low");
        assert!(err.to_string().contains("disk_free_bytes_min"), "{err}");
        Ok(())
    })
    .unwrap();
}

fn assert_api(err: &deai_node::client::ClientError, status: u16, code: &str) {
    match err {
        deai_node::client::ClientError::Api {
            status: s, code: c, ..
        } => {
            assert_eq!((*s, c.as_str()), (status, code), "{err}")
        }
        other => panic!("expected {status} {code}, got {other}"),
    }
}

/// Sends `head` then `body` on a raw connection; the whole answer as text.
async fn raw_http(addr: SocketAddr, head: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let _ = s.write_all(body).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}
