//! Signed peer messages over real loopback HTTP: reqwest signs, an axum handler verifies with
//! `verify_http_request` and signs its answer, and the caller checks the answer.

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::post,
};
use deai_node::{
    api::ApiError,
    auth::{self, NonceClock, ReplayGuard},
};
use ed25519_dalek::SigningKey;
use serde_json::Value;

const CHAIN: &str = "deai-test";

#[derive(Clone)]
struct Peer {
    key: SigningKey,
    guard: ReplayGuard,
}

/// Answers `hello <signer>`, signed and bound to the request.
async fn echo(
    State(peer): State<Peer>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let me = peer.key.verifying_key();
    let who = auth::verify_http_request(&headers, &method, &uri, &body, CHAIN, &me, &peer.guard)?;
    let nonce = auth::request_nonce(&headers).unwrap();
    let answer = format!("hello {}", hex::encode(who.as_bytes()));
    let signed = auth::sign_response(&peer.key, CHAIN, nonce, 200, answer.as_bytes());
    let mut resp = (StatusCode::OK, answer).into_response();
    signed.insert_into(resp.headers_mut());
    Ok(resp)
}

async fn serve(peer: Peer) -> String {
    let app = Router::new().route("/v1/echo", post(echo)).with_state(peer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

struct Sent {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

async fn send(url: &str, headers: &HeaderMap, body: &[u8]) -> Sent {
    let resp = reqwest::Client::new()
        .post(url)
        .headers(headers.clone())
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    Sent {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.bytes().await.unwrap().to_vec(),
    }
}

fn code(s: &Sent) -> String {
    let v: Value = serde_json::from_slice(&s.body).unwrap();
    v["error"]["code"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn signed_round_trip_and_every_refusal_over_http() {
    let server_key = SigningKey::from_bytes(&[9; 32]);
    let base = serve(Peer {
        key: server_key.clone(),
        guard: ReplayGuard::default(),
    })
    .await;
    let client_key = SigningKey::from_bytes(&[1; 32]);
    let to = server_key.verifying_key();
    let clock = NonceClock::default();
    let path = "/v1/echo?round=3";
    let url = format!("{base}{path}");

    // Signed over method, path with query, body: accepted, and the answer checks out.
    let nonce = clock.next();
    let signed = auth::sign_request(&client_key, CHAIN, &to, "POST", path, nonce, b"update");
    let headers = signed.to_header_map();
    let ok = send(&url, &headers, b"update").await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    let expect = server_key.verifying_key();
    auth::verify_response(&ok.headers, CHAIN, nonce, 200, &ok.body, &expect).unwrap();
    let who = hex::encode(client_key.verifying_key().as_bytes());
    assert_eq!(ok.body, format!("hello {who}").as_bytes());

    // The same request again: a replay.
    let again = send(&url, &headers, b"update").await;
    assert_eq!((again.status, code(&again).as_str()), (401, "replayed"));

    // The answer cannot be passed off as the answer to another request.
    let e = auth::verify_response(&ok.headers, CHAIN, nonce + 1, 200, &ok.body, &expect);
    assert_eq!(e.unwrap_err().code(), "wrong_request");
    // Nor as coming from another node.
    let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
    let e = auth::verify_response(&ok.headers, CHAIN, nonce, 200, &ok.body, &other);
    assert_eq!(e.unwrap_err().code(), "not_allowed");

    // Unsigned; tampered body; signed for another path; stale.
    let unsigned = send(&url, &HeaderMap::new(), b"update").await;
    assert_eq!(
        (unsigned.status, code(&unsigned).as_str()),
        (401, "unsigned")
    );
    let fresh = auth::sign_request(
        &client_key,
        CHAIN,
        &to,
        "POST",
        path,
        clock.next(),
        b"update",
    );
    let tampered = send(&url, &fresh.to_header_map(), b"updatE").await;
    assert_eq!(
        (tampered.status, code(&tampered).as_str()),
        (401, "bad_signature")
    );
    let elsewhere = auth::sign_request(
        &client_key,
        CHAIN,
        &to,
        "POST",
        "/v1/echo",
        clock.next(),
        b"u",
    );
    let moved = send(&url, &elsewhere.to_header_map(), b"u").await;
    assert_eq!(
        (moved.status, code(&moved).as_str()),
        (401, "bad_signature")
    );
    let old = auth::now_micros() - 10 * 60 * 1_000_000;
    let stale = auth::sign_request(&client_key, CHAIN, &to, "POST", path, old, b"u");
    let stale = send(&url, &stale.to_header_map(), b"u").await;
    assert_eq!((stale.status, code(&stale).as_str()), (401, "stale"));

    // Refusals did not lock the sender out: its next message passes.
    let next = auth::sign_request(&client_key, CHAIN, &to, "POST", path, clock.next(), b"u");
    assert_eq!(send(&url, &next.to_header_map(), b"u").await.status, 200);

    // `SignedHeaders::apply` on a reqwest builder carries the same headers.
    let nonce = clock.next();
    let signed = auth::sign_request(&client_key, CHAIN, &to, "POST", path, nonce, b"built");
    let resp = signed
        .apply(reqwest::Client::new().post(&url))
        .body(b"built".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let headers = resp.headers().clone();
    let body = resp.bytes().await.unwrap();
    auth::verify_response(&headers, CHAIN, nonce, 200, &body, &expect).unwrap();
}
