//! Malformed HTTP input gets a 4xx JSON error with a stable code, never a panic or a 500, and the
//! node keeps serving afterwards.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::Duration;

fn post(url: &str, content_type: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let resp = reqwest::blocking::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(serde_json::Value::Null))
}

#[test]
fn malformed_input_gets_json_4xx() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    common::init(&dir);
    let node = common::NodeProcess::start(&dir);
    let txs = format!("{}/v1/txs", node.url);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not json", b"{nope".to_vec(), "bad_json"),
        ("wrong type", br#"{"tx": 42}"#.to_vec(), "bad_json"),
        (
            "unknown field",
            br#"{"tx": "00", "x": 1}"#.to_vec(),
            "bad_json",
        ),
        ("bad hex", br#"{"tx": "zz"}"#.to_vec(), "bad_hex"),
        ("not a tx", br#"{"tx": "00ff"}"#.to_vec(), "bad_tx_encoding"),
        ("huge body", vec![b'a'; 64 << 10], "body_too_large"),
        ("empty", Vec::new(), "bad_json"),
    ];
    for (name, body, code) in cases {
        let (status, v) = post(&txs, "application/json", body);
        assert!((400..500).contains(&status), "{name}: status {status}");
        assert_eq!(v["error"]["code"], code, "{name}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}: {v}"
        );
    }
    for (path, status_want, code) in [
        ("/v1/blocks/abc", 400, "bad_id"),
        ("/v1/blocks/999999", 404, "block_not_found"),
        ("/v1/txs/1234", 400, "bad_tx_id"),
        (
            &*format!("/v1/txs/{}", "ab".repeat(32)),
            404,
            "tx_not_found",
        ),
        ("/v1/accounts/xyz", 400, "bad_address"),
        ("/v1/datasets/-1", 400, "bad_id"),
        ("/v1/tasks/77", 404, "task_not_found"),
        ("/v1/proofs/bogus/1", 400, "bad_proof_kind"),
        ("/v1/nothing", 404, "no_such_route"),
    ] {
        let (status, v) = common::get(&format!("{}{path}", node.url));
        assert_eq!(status, status_want, "{path}: {v}");
        assert_eq!(v["error"]["code"], code, "{path}: {v}");
    }
    let (status, v) = post(
        &format!("{}/v1/status", node.url),
        "application/json",
        b"{}".to_vec(),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    // Still alive and answering.
    let (status, v) = common::get(&format!("{}/v1/status", node.url));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["chain_id"], "deai-dev");
}
