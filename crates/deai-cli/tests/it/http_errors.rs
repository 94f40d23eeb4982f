//! Malformed HTTP input gets a 4xx JSON error with a stable code, never a panic or a 500, and the
//! node keeps serving afterwards.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use crate::common;

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
        // Over the limit: twice the largest transaction (a dispute carrying a model, ~141 KB by
        // default) plus the JSON envelope.
        ("huge body", vec![b'a'; 1 << 20], "body_too_large"),
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

/// The field names of schema `name` in the OpenAPI document.
fn schema_fields(doc: &serde_json::Value, name: &str) -> Vec<String> {
    let mut keys: Vec<String> = doc["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("schema {name} missing: {}", doc["components"]))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn fields(v: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[test]
fn the_openapi_document_describes_the_live_api() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    common::init(&dir);
    let node = common::NodeProcess::start(&dir);
    let (status, doc) = common::get(&format!("{}/v1/openapi.json", node.url));
    assert_eq!(status, 200, "{doc}");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let paths = doc["paths"].as_object().unwrap();
    for route in [
        "/v1/txs",
        "/v1/txs/{id}",
        "/v1/status",
        "/v1/genesis",
        "/v1/blocks/{height}",
        "/v1/accounts/{addr}",
        "/v1/datasets",
        "/v1/datasets/{id}",
        "/v1/tasks",
        "/v1/tasks/{id}",
        "/v1/tasks/{id}/eligible",
        "/v1/models",
        "/v1/models/{id}",
        "/v1/proofs/{kind}/{id}",
        "/v1/proposals",
        "/v1/proposals/{id}",
        "/v1/governance",
        "/v1/blobs/{hash}",
        "/v1/events",
        "/",
    ] {
        assert!(paths.contains_key(route), "{route} undocumented");
    }
    // Every documented path is a route of the node.
    let hex = "00".repeat(32);
    for (path, item) in paths {
        if path == "/v1/events" {
            // A stream: its headers say what it is; the body never ends.
            let resp = reqwest::blocking::Client::new()
                .get(format!("{}{path}", node.url))
                .send()
                .expect("GET /v1/events");
            assert_eq!(resp.status(), 200);
            let kind = resp.headers()[reqwest::header::CONTENT_TYPE]
                .to_str()
                .unwrap();
            assert!(kind.starts_with("text/event-stream"), "{kind}");
            continue;
        }
        if path == "/" {
            let resp = reqwest::blocking::get(format!("{}/", node.url)).expect("GET /");
            assert_eq!(resp.status(), 200);
            assert!(resp.text().unwrap().contains("deai explorer"));
            continue;
        }
        let filled = path
            .replace("{height}", "1")
            .replace("{kind}", "account")
            .replace("{addr}", &hex)
            .replace("{hash}", &hex)
            .replace("{id}", "1");
        let (status, v) = if item.get("get").is_some() {
            common::get(&format!("{}{filled}", node.url))
        } else {
            post(
                &format!("{}{filled}", node.url),
                "application/json",
                b"{}".to_vec(),
            )
        };
        assert_ne!(v["error"]["code"], "no_such_route", "{path}: {status} {v}");
    }
    // The schemas name exactly the fields the node sends.
    let (_, live) = common::get(&format!("{}/v1/status", node.url));
    assert_eq!(fields(&live), schema_fields(&doc, "StatusView"));
    let required = doc["components"]["schemas"]["StatusView"]["required"]
        .as_array()
        .unwrap();
    assert!(required.contains(&"fee_min".into()), "{required:?}");
    let (_, account) = common::get(&format!("{}/v1/accounts/{hex}", node.url));
    assert_eq!(fields(&account), schema_fields(&doc, "AccountView"));
    let block = (0..200)
        .find_map(|_| {
            let (status, b) = common::get(&format!("{}/v1/blocks/1", node.url));
            if status == 200 {
                return Some(b);
            }
            std::thread::sleep(Duration::from_millis(50));
            None
        })
        .expect("block 1 finalizes");
    assert_eq!(fields(&block), schema_fields(&doc, "BlockView"));
}
