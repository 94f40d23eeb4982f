//! Crash safety: a `deai node` under transaction load is killed with SIGKILL at random moments and
//! restarted; every transaction the API had reported finalized is still finalized afterwards, the
//! height never goes back, and `deai ledger verify` replays the whole chain.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use deai_ledger::{Address, SignedTx, Tx, TxBody, tx::Transfer};
use rand::{Rng, SeedableRng};

const KILLS: usize = 5;

fn submit(url: &str, tx: &SignedTx) -> bool {
    let body = serde_json::json!({ "tx": hex::encode(tx.encode()) });
    reqwest::blocking::Client::new()
        .post(format!("{url}/v1/txs"))
        .json(&body)
        .timeout(Duration::from_secs(5))
        .send()
        .is_ok_and(|r| r.status().is_success())
}

fn finalized(url: &str, id: &str) -> bool {
    let (status, v) = common::get(&format!("{url}/v1/txs/{id}"));
    status == 200 && v["status"] == "finalized" && v["applied"] == true
}

#[test]
fn sigkill_under_load_loses_nothing_finalized() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    common::init(&dir);
    let dev = deai_node::keyfile::read(&dir.join("dev.key")).unwrap();
    let sender = deai_node::keyfile::address(&dev);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut confirmed: Vec<String> = Vec::new();
    let mut last_height = 0u64;
    for round in 0..=KILLS {
        let mut node = common::NodeProcess::start(&dir);
        let (_, status) = common::get(&format!("{}/v1/status", node.url));
        let height = status["height"].as_u64().unwrap();
        assert!(
            height >= last_height,
            "restart {round}: height went back from {last_height} to {height}"
        );
        for id in &confirmed {
            assert!(
                finalized(&node.url, id),
                "restart {round}: finalized tx {id} is gone"
            );
        }
        let (_, acct) = common::get(&format!("{}/v1/accounts/{sender}", node.url));
        let mut nonce = acct["account"]["nonce"].as_u64().unwrap();
        let run_for = Duration::from_millis(rng.gen_range(300..1500));
        let start = Instant::now();
        let mut sent: Vec<String> = Vec::new();
        while start.elapsed() < run_for {
            let to = Address([rng.r#gen(); 32]);
            let body = TxBody::Transfer(Transfer { to, amount: 1 });
            let tx = SignedTx::sign(
                Tx {
                    chain_id: "deai-dev".into(),
                    sender,
                    nonce,
                    fee: 1_000,
                    body,
                },
                &dev,
            );
            if submit(&node.url, &tx) {
                sent.push(tx.id().to_string());
                nonce += 1;
            }
            // Record what the API reports as finalized right now: that is the promise under test.
            sent.retain(|id| {
                let done = finalized(&node.url, id);
                if done {
                    confirmed.push(id.clone());
                }
                !done
            });
        }
        let (_, status) = common::get(&format!("{}/v1/status", node.url));
        last_height = status["height"].as_u64().unwrap();
        if round < KILLS {
            node.kill();
        } else {
            let out = common::deai()
                .args(["ledger", "verify", "--json", "--node", &node.url])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "ledger verify failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["ok"], true, "{v}");
            assert_eq!(
                v["blocks"].as_u64().unwrap(),
                last_height.max(v["blocks"].as_u64().unwrap())
            );
        }
    }
    assert!(
        confirmed.len() >= 10,
        "too little load to mean anything: {} finalized",
        confirmed.len()
    );
}
