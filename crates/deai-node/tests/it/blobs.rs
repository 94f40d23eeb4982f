//! The blob routes on a real node over loopback HTTP, and the client's check of what it downloads.

use std::{path::Path, time::Duration};

use axum::{Router, routing::get};
use deai_node::{
    blobs::hash_bytes,
    client::{Client, ClientError},
    config::{BLOBS_DIR, NodeConfig},
};
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};

const MAX: u64 = 1 << 20;

/// Every file under the node's blob store, relative to it.
fn stored_files(blobs: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(blobs, blobs, &mut out);
    out.sort();
    out
}

/// Who uploads, to which node: the account the node's genesis funds (`deai init`'s dev key)
/// signing for the node's key (uploads are signed: docs/api.md).
struct Uploader {
    key: ed25519_dalek::SigningKey,
    chain: String,
    to: ed25519_dalek::VerifyingKey,
}

impl Uploader {
    fn sign(&self, path: &str, hash: &[u8; 32]) -> deai_node::auth::SignedHeaders {
        let nonce = deai_node::auth::NonceClock::process().next();
        deai_node::auth::sign_request_hashed(
            &self.key,
            &self.chain,
            &self.to,
            "PUT",
            path,
            nonce,
            hash,
        )
    }

    /// The signing headers as raw HTTP/1.1 header lines.
    fn raw_headers(&self, path: &str, hash: &[u8; 32]) -> String {
        let s = self.sign(path, hash);
        let to = s.to.clone().unwrap_or_default();
        format!(
            "x-deai-key: {}\r\nx-deai-nonce: {}\r\nx-deai-sig: {}\r\nx-deai-to: {to}\r\n",
            s.key, s.nonce, s.sig
        )
    }
}

/// A PUT signed by `up` (the hash signed is the one in the URL, as a node checks it).
async fn put(up: &Uploader, url: &str, body: Vec<u8>) -> (u16, Value) {
    let path = &url[url.find("/v1/").expect("a node URL")..];
    let named = path.trim_start_matches("/v1/blobs/");
    let hash = deai_node::blobs::parse_hash(named).map_or([0; 32], |d| d.0);
    let resp = up
        .sign(path, &hash)
        .apply(reqwest::Client::new().put(url))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Sends `head` and then `body` on a raw connection; the response's status, or `None` when the
/// server closed without one.
async fn raw(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (and close) before reading everything: a failed write is fine.
    let _ = s.write_all(body).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn blob_routes_on_a_running_node() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let cfg = NodeConfig {
        blob_max_bytes: MAX,
        ..NodeConfig::default()
    };
    deai_node::init::init(&dir, cfg).unwrap();
    let blobs_dir = dir.join(BLOBS_DIR);
    let dev = deai_node::keyfile::read(&dir.join(deai_node::config::DEV_KEY_FILE)).unwrap();
    let me = deai_node::keyfile::read(&dir.join(deai_node::config::NODE_KEY_FILE)).unwrap();
    deai_node::run::with_embedded(&dir, |node| async move {
        let base = format!("http://{}", node.http_addr);
        let client = Client::new(base.clone());
        let chain = client.status().await.unwrap().chain_id;
        let up = Uploader {
            key: dev.clone(),
            chain,
            to: me.verifying_key(),
        };
        let url = |h: &str| format!("{base}/v1/blobs/{h}");

        // 201 when stored, 200 when already present; both name the hash and size.
        // Bigger than the API's limit for transactions: the blob route has its own.
        let data: Vec<u8> = (0..600_000u32).map(|i| (i * 7 % 253) as u8).collect();
        let h = hash_bytes(&data).to_string();
        let (status, v) = put(&up, &url(&h), data.clone()).await;
        assert_eq!(status, 201, "{v}");
        assert_eq!(v["hash"], h);
        assert_eq!(v["size"], data.len());
        let (status, v) = put(&up, &url(&h), data.clone()).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["hash"], h);

        // GET serves the bytes as octet-stream; HEAD says the size.
        let resp = reqwest::get(url(&h)).await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.headers()["content-type"], "application/octet-stream");
        assert_eq!(resp.bytes().await.unwrap().to_vec(), data);
        let head = reqwest::Client::new().head(url(&h)).send().await.unwrap();
        assert_eq!(head.status().as_u16(), 200);
        assert_eq!(head.headers()["content-length"], data.len().to_string().as_str());

        // The client: put_blob returns the hash, get_blob re-checks it.
        let small = client.put_blob(&dev, b"unmasking record").await.unwrap();
        assert_eq!(small, hash_bytes(b"unmasking record"));
        assert_eq!(client.get_blob(&small).await.unwrap(), b"unmasking record");

        // 404, 400 bad_hash, 400 hash_mismatch, 413 blob_too_large.
        let absent = hash_bytes(b"absent").to_string();
        let resp = reqwest::get(url(&absent)).await.unwrap();
        assert_eq!(resp.status().as_u16(), 404);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "blob_not_found");
        let head = reqwest::Client::new().head(url(&absent)).send().await.unwrap();
        assert_eq!(head.status().as_u16(), 404);
        match client.get_blob(&hash_bytes(b"absent")).await {
            Err(ClientError::Api { status: 404, code, .. }) => assert_eq!(code, "blob_not_found"),
            other => panic!("{other:?}"),
        }
        for bad in ["abc", &"zz".repeat(32), &format!("{h}00")] {
            let (status, v) = put(&up, &url(bad), b"x".to_vec()).await;
            assert_eq!((status, v["error"]["code"].as_str()), (400, Some("bad_hash")), "{bad}");
            let resp = reqwest::get(url(bad)).await.unwrap();
            assert_eq!(resp.status().as_u16(), 400, "{bad}");
        }
        let (status, v) = put(&up, &url(&absent), b"not the absent bytes".to_vec()).await;
        assert_eq!((status, v["error"]["code"].as_str()), (400, Some("hash_mismatch")));
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(&absent), "names the expected hash: {message}");
        assert!(
            message.contains(&hash_bytes(b"not the absent bytes").to_string()),
            "names the hash got: {message}"
        );
        let big = vec![1u8; MAX as usize + 1];
        let (status, v) = put(&up, &url(&hash_bytes(&big).to_string()), big).await;
        assert_eq!((status, v["error"]["code"].as_str()), (413, Some("blob_too_large")));
        assert!(v["error"]["message"].as_str().unwrap().contains(&MAX.to_string()));
        // Far over the kernel's socket buffers: the client still writes it all before reading,
        // and sees the 413, not a broken pipe (the node reads a refused body before answering).
        for _ in 0..3 {
            let bigger = vec![3u8; 8 * MAX as usize];
            let (status, v) = put(&up, &url(&hash_bytes(&bigger).to_string()), bigger).await;
            assert_eq!((status, v["error"]["code"].as_str()), (413, Some("blob_too_large")));
        }
        let exact = vec![2u8; MAX as usize];
        let (status, _) = put(&up, &url(&hash_bytes(&exact).to_string()), exact).await;
        assert_eq!(status, 201, "exactly the limit is accepted");

        // Chunked, with no length announced: cut off at the limit while streaming.
        let huge = hash_bytes(b"whatever").to_string();
        let chunk = vec![b'a'; 64 << 10];
        let mut body = Vec::new();
        for _ in 0..(MAX as usize / chunk.len() + 2) {
            body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            body.extend_from_slice(&chunk);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"0\r\n\r\n");
        let signed = up.raw_headers(&format!("/v1/blobs/{huge}"), &hash_bytes(b"whatever").0);
        let head = format!(
            "PUT /v1/blobs/{huge} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n{signed}connection: close\r\n\r\n"
        );
        assert_eq!(raw(node.http_addr, &head, &body).await, Some(413));

        // A client that disconnects mid-upload leaves nothing behind.
        let partial = hash_bytes(b"never finished").to_string();
        let signed =
            up.raw_headers(&format!("/v1/blobs/{partial}"), &hash_bytes(b"never finished").0);
        let head = format!(
            "PUT /v1/blobs/{partial} HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n{signed}\r\n"
        );
        let mut s = TcpStream::connect(node.http_addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&[3u8; 40_000]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(s);

        // Only the three stored blobs remain: no temporary file of any refused or broken upload.
        let mut left = Vec::new();
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            left = stored_files(&blobs_dir);
            if left.len() == 3 {
                break;
            }
        }
        assert_eq!(left.len(), 3, "{left:?}");
        assert!(left.iter().all(|f| !f.starts_with("tmp")), "{left:?}");

        // The counters are exported.
        let metrics = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.contains("deai_blobs_stored_total 3"), "{metrics}");
        let bytes = 600_000 + 16 + MAX;
        assert!(metrics.contains(&format!("deai_blob_bytes_stored_total {bytes}")), "{metrics}");
        assert!(metrics.contains("deai_blob_puts_present_total 1"), "{metrics}");
        Ok(())
    })
    .unwrap();
}

/// A fake peer that serves `bytes` for every blob asked.
async fn lying_peer(bytes: &'static [u8]) -> String {
    let app = Router::new().route("/v1/blobs/{hash}", get(move || async move { bytes }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn client_refuses_bytes_that_do_not_match_the_hash() {
    let base = lying_peer(b"a tampered model").await;
    let client = Client::new(base);
    let asked = hash_bytes(b"the recorded model");
    match client.get_blob(&asked).await {
        Err(ClientError::BlobMismatch { expected, got, .. }) => {
            assert_eq!(expected, asked);
            assert_eq!(got, hash_bytes(b"a tampered model"));
        }
        other => panic!("a lying peer was believed: {other:?}"),
    }
    // The honest case through the same fake: the bytes match what is asked.
    let right = hash_bytes(b"a tampered model");
    assert_eq!(client.get_blob(&right).await.unwrap(), b"a tampered model");
}

#[tokio::test]
async fn client_stops_a_download_over_its_limit() {
    let base = lying_peer(&[0u8; 4096]).await;
    let client = Client::new(base);
    let h = hash_bytes(&[0u8; 4096]);
    match client.get_blob_max(&h, 4095).await {
        Err(ClientError::BlobTooLarge { max: 4095, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(client.get_blob_max(&h, 4096).await.unwrap().len(), 4096);
}
