//! Crash safety: a `deai node` under transaction load is killed with SIGKILL at random moments and
//! restarted; every transaction the API had reported finalized is still finalized afterwards, the
//! height never goes back, and `deai ledger verify` replays the whole chain.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use crate::common;

use std::time::{Duration, Instant};

use deai_ledger::{Address, SignedTx, Tx, TxBody, tx::Transfer};
use rand::{Rng, SeedableRng};

const KILLS: usize = 5;
/// How long a round may go without a finalized transaction before the node counts as stalled.
const STALL: Duration = Duration::from_secs(60);

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

fn account_nonce(url: &str, who: &Address) -> u64 {
    let (_, acct) = common::get(&format!("{url}/v1/accounts/{who}"));
    acct["account"]["nonce"].as_u64().unwrap()
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
        let mut nonce = account_nonce(&node.url, &sender);
        let run_for = Duration::from_millis(rng.gen_range(300..1500));
        let start = Instant::now();
        let mut sent: Vec<String> = Vec::new();
        let confirmed_before = confirmed.len();
        // Load runs a random time, and on a starved machine (this binary's other tests start four
        // validators beside it) on until this round has seen a block finalize transactions, so
        // every kill lands with promises outstanding; the deadline keeps a stalled node a failure.
        while start.elapsed() < run_for
            || (confirmed.len() == confirmed_before && start.elapsed() < STALL)
        {
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
            } else {
                // A submission that timed out may still have been admitted, and then every later
                // one at this nonce is refused: go on from the nonce the ledger has reached (sending again what
                // is still pending costs only refusals).
                nonce = account_nonce(&node.url, &sender);
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
        assert!(
            confirmed.len() > confirmed_before,
            "restart {round}: nothing finalized in {STALL:?} of load"
        );
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

/// A four-validator network of `deai node` processes from `deai testnet init`, each validator fed
/// by its own sender (so every validator is an entry point), with validators killed by SIGKILL
/// and restarted.
mod network {
    use super::{common, finalized, submit};
    use deai_ledger::{Address, SignedTx, Tx, TxBody, tx::Transfer};
    use ed25519_dalek::SigningKey;
    use std::{
        path::{Path, PathBuf},
        time::{Duration, Instant},
    };

    const N: usize = 4;
    /// Transactions a sender keeps in flight beyond its account's finalized nonce.
    const WINDOW: u64 = 16;

    struct Net {
        dirs: Vec<PathBuf>,
        nodes: Vec<Option<common::NodeProcess>>,
        senders: Vec<SigningKey>,
        /// Next nonce each sender submits.
        next: Vec<u64>,
        /// Each sender's finalized nonce when last seen to move, and when.
        progress: Vec<(u64, Instant)>,
        /// Ids any validator reported finalized: the promise under test.
        confirmed: Vec<String>,
        /// Submitted, not yet seen finalized.
        pending: Vec<String>,
    }

    fn transfer(key: &SigningKey, nonce: u64) -> SignedTx {
        // Deterministic per (sender, nonce): a resubmission after a kill is the same transaction.
        SignedTx::sign(
            Tx {
                chain_id: deai_node::testnet::CHAIN_ID.into(),
                sender: deai_node::keyfile::address(key),
                nonce,
                fee: 1_000,
                body: TxBody::Transfer(Transfer {
                    to: Address([7; 32]),
                    amount: 1,
                }),
            },
            key,
        )
    }

    fn status(url: &str) -> (u64, String) {
        let (_, v) = common::get(&format!("{url}/v1/status"));
        (
            v["height"].as_u64().unwrap_or(0),
            v["state_root"].as_str().unwrap_or("").to_string(),
        )
    }

    impl Net {
        fn init(root: &Path) -> Self {
            Self::init_with(root, &[])
        }

        /// [`Self::init`] with more `deai testnet init` arguments.
        fn init_with(root: &Path, extra: &[&str]) -> Self {
            let dir = root.join("net");
            let out = common::deai()
                .args([
                    "testnet",
                    "init",
                    "--validators",
                    "4",
                    "--base-port",
                    "0",
                    "--json",
                ])
                .args(extra)
                .arg("--dir")
                .arg(&dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "testnet init: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let dirs: Vec<PathBuf> = (0..N).map(|i| dir.join(format!("node{i}"))).collect();
            let senders = dirs
                .iter()
                .map(|d| deai_node::keyfile::read(&d.join("dev.key")).unwrap())
                .collect();
            let nodes = dirs
                .iter()
                .map(|d| Some(common::NodeProcess::start(d)))
                .collect();
            Self {
                dirs,
                nodes,
                senders,
                next: vec![0; N],
                progress: vec![(0, Instant::now()); N],
                confirmed: Vec::new(),
                pending: Vec::new(),
            }
        }

        /// Waits until every live validator reports `n` connected peers.
        fn wait_peers(&self, n: u64) {
            let peers = || -> Vec<u64> {
                self.live()
                    .iter()
                    .map(|i| {
                        let (_, v) = common::get(&format!("{}/v1/status", self.url(*i)));
                        v["peers"].as_u64().unwrap_or(u64::MAX)
                    })
                    .collect()
            };
            let start = Instant::now();
            while peers().iter().any(|p| *p != n) {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "validators report {:?} connected peers, not {n} each",
                    peers()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }

        fn live(&self) -> Vec<usize> {
            (0..N).filter(|i| self.nodes[*i].is_some()).collect()
        }

        fn url(&self, i: usize) -> String {
            self.nodes[i].as_ref().unwrap().url.clone()
        }

        fn kill(&mut self, i: usize) {
            self.nodes[i].take().unwrap().kill();
        }

        fn restart(&mut self, i: usize) {
            self.nodes[i] = Some(common::NodeProcess::start(&self.dirs[i]));
        }

        /// Each live validator's sender submits to it, within its window, for `run_for`; what
        /// any live validator reports finalized is recorded.
        fn load(&mut self, run_for: Duration) {
            let start = Instant::now();
            while start.elapsed() < run_for {
                for i in self.live() {
                    let url = self.url(i);
                    let addr = deai_node::keyfile::address(&self.senders[i]);
                    let (_, acct) = common::get(&format!("{url}/v1/accounts/{addr}"));
                    let done = acct["account"]["nonce"].as_u64().unwrap_or(0);
                    // After a kill, what the killed node held may be lost: resume from the chain.
                    self.next[i] = self.next[i].max(done);
                    if self.next[i] < done + WINDOW {
                        let tx = transfer(&self.senders[i], self.next[i]);
                        if submit(&url, &tx) {
                            self.pending.push(tx.id().to_string());
                        }
                        self.next[i] += 1;
                    }
                    if done != self.progress[i].0 {
                        self.progress[i] = (done, Instant::now());
                    } else if self.progress[i].1.elapsed() > Duration::from_secs(2) {
                        // Stuck behind a transaction a killed validator took with it: resend from
                        // the chain's nonce (the same transactions, so nothing is sent twice).
                        self.next[i] = done;
                        self.progress[i].1 = Instant::now();
                    }
                }
                self.record();
            }
        }

        fn record(&mut self) {
            let Some(&first) = self.live().first() else {
                return;
            };
            let url = self.url(first);
            let mut still = Vec::new();
            for id in std::mem::take(&mut self.pending) {
                if finalized(&url, &id) {
                    self.confirmed.push(id);
                } else {
                    still.push(id);
                }
            }
            still.sort();
            still.dedup();
            self.pending = still;
        }

        fn heights(&self) -> Vec<u64> {
            self.live()
                .iter()
                .map(|i| status(&self.url(*i)).0)
                .collect()
        }

        /// Waits until every live validator reaches `height`.
        fn wait_all(&self, height: u64, limit: Duration) {
            let start = Instant::now();
            while self.heights().iter().any(|h| *h < height) {
                assert!(
                    start.elapsed() < limit,
                    "not every validator reached {height} in {limit:?}: {:?}",
                    self.heights()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }

        /// Every live validator finalized every confirmed transaction, and they agree on the state
        /// root at every height up to the lowest tip.
        fn check_agreement(&self) {
            for i in self.live() {
                let url = self.url(i);
                for id in &self.confirmed {
                    assert!(
                        finalized(&url, id),
                        "node{i} lost finalized transaction {id}"
                    );
                }
            }
            let common_height = *self.heights().iter().min().unwrap();
            for h in 1..=common_height {
                let roots: Vec<String> = self
                    .live()
                    .iter()
                    .map(|i| {
                        let (_, b) = common::get(&format!("{}/v1/blocks/{h}", self.url(*i)));
                        b["state_root"].as_str().unwrap_or("").to_string()
                    })
                    .collect();
                assert!(
                    roots.windows(2).all(|w| w[0] == w[1]) && !roots[0].is_empty(),
                    "validators disagree at height {h}: {roots:?}"
                );
            }
        }
    }

    #[test]
    fn four_validator_processes_survive_kills_and_agree() {
        let tmp = tempfile::tempdir().unwrap();
        let mut net = Net::init(tmp.path());
        net.wait_all(2, Duration::from_secs(60));
        net.load(Duration::from_secs(3));

        // One validator down: the other three (a quorum) keep finalizing.
        net.kill(1);
        let before = *net.heights().iter().max().unwrap();
        net.load(Duration::from_secs(3));
        net.wait_all(before + 3, Duration::from_secs(30));
        net.restart(1);
        let tip = *net.heights().iter().max().unwrap();
        net.wait_all(tip, Duration::from_secs(60));
        net.load(Duration::from_secs(2));
        net.check_agreement();

        // Another one, then two at once: without a quorum finalization stops, with no fork.
        net.kill(2);
        net.load(Duration::from_secs(2));
        net.restart(2);
        net.kill(0);
        net.kill(3);
        std::thread::sleep(Duration::from_secs(1));
        let stalled = net.heights();
        std::thread::sleep(Duration::from_secs(3));
        assert!(
            net.heights()
                .iter()
                .zip(&stalled)
                .all(|(now, then)| now <= &(then + 1)),
            "two of four validators down, yet finalization went on: {stalled:?} -> {:?}",
            net.heights()
        );
        // Each survivor counts the one other validator it reaches, not the set's size.
        net.wait_peers(1);
        net.restart(0);
        net.restart(3);
        let tip = *net.heights().iter().max().unwrap();
        net.wait_all(tip + 3, Duration::from_secs(60));
        net.wait_peers(3);
        net.load(Duration::from_secs(3));
        let tip = *net.heights().iter().max().unwrap();
        net.wait_all(tip, Duration::from_secs(60));
        net.record();
        net.check_agreement();
        assert!(
            net.confirmed.len() >= 20,
            "too little load to mean anything: {} finalized",
            net.confirmed.len()
        );
    }

    /// The value of a counter in a node's `/metrics` (0 when absent).
    fn counter(url: &str, name: &str) -> u64 {
        let text = reqwest::blocking::get(format!("{url}/metrics"))
            .and_then(|r| r.text())
            .unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// A blob published to one validator is copied to the others without anyone asking, is served
    /// by them after the one it was sent to is killed, and a hash nobody holds is a plain 404.
    #[test]
    fn a_blob_published_to_one_validator_is_served_by_every_other() {
        let tmp = tempfile::tempdir().unwrap();
        let mut net = Net::init(tmp.path());
        net.wait_all(1, Duration::from_secs(60));
        // Over two chunks of the exchange, so it is reassembled in order.
        let bytes: Vec<u8> = (0..700_000u32).map(|i| (i * 7 + i / 1000) as u8).collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let first = deai_node::client::Client::new(net.url(0));
        let hash = rt
            .block_on(first.put_blob(&net.senders[0], &bytes))
            .unwrap();

        let start = Instant::now();
        while (1..N).any(|i| counter(&net.url(i), "deai_blob_fetched_total") < 1) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the blob was not copied to every validator within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        net.kill(0);
        for i in 1..N {
            let client = deai_node::client::Client::new(net.url(i));
            let got = rt.block_on(client.get_blob(&hash)).unwrap();
            assert!(got == bytes, "node{i} served other bytes for {hash}");
        }
        let (status, v) = common::get(&format!("{}/v1/blobs/{}", net.url(2), "ab".repeat(32)));
        assert_eq!(status, 404, "{v}");
        assert_eq!(v["error"]["code"], "blob_not_found", "{v}");
    }

    /// Runs `deai` with `args`; asserts it succeeded; returns its JSON output.
    fn deai_json(args: &[&str]) -> serde_json::Value {
        let out = common::deai().args(args).arg("--json").output().unwrap();
        assert!(
            out.status.success(),
            "deai {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// A node that is not in the genesis joins a running four-validator network by hand (`deai
    /// init --genesis`), follows it, and becomes a validator at the next epoch boundary once an
    /// account stakes for it and declares it (`deai validator declare`); it then leads blocks,
    /// and a light client that knows only the genesis reads through it, following the set change.
    #[test]
    fn a_staked_declared_node_becomes_a_validator_at_the_next_epoch() {
        let tmp = tempfile::tempdir().unwrap();
        let net = Net::init_with(tmp.path(), &["--epoch-blocks", "24"]);
        net.wait_all(1, Duration::from_secs(60));

        let key = tmp.path().join("joiner.key");
        deai_json(&["key", "new", "--out", key.to_str().unwrap()]);
        let p2p = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let genesis = net.dirs[0].join("genesis.json");
        let manifest = deai_node::testnet::Manifest::load(&tmp.path().join("net")).unwrap();
        let joiner_dir = tmp.path().join("joiner");
        let mut init = vec![
            "init".to_string(),
            "--dir".into(),
            joiner_dir.display().to_string(),
            "--genesis".into(),
            genesis.display().to_string(),
            "--node-key".into(),
            key.display().to_string(),
            "--http".into(),
            "127.0.0.1:0".into(),
            "--p2p".into(),
            p2p.clone(),
        ];
        for n in &manifest.nodes {
            init.push("--bootstrap".into());
            init.push(format!("{}@{}", n.validator, n.p2p));
        }
        let init: Vec<&str> = init.iter().map(String::as_str).collect();
        deai_json(&init);
        let joiner = common::NodeProcess::start(&joiner_dir);
        let joined = deai_node::keyfile::address(&deai_node::keyfile::read(&key).unwrap());

        // It follows from genesis without being a validator.
        let (_, s) = common::get(&format!("{}/v1/status", joiner.url));
        assert_eq!(s["validator"], false, "{s}");

        // Node 0's dev account stakes for it and declares its key.
        let dev = net.dirs[0].join("dev.key");
        let node = net.url(0);
        let stake = format!("{}", 2_000 * deai_ledger::TOKEN);
        deai_json(&[
            "tx",
            "stake",
            "--amount",
            &stake,
            "--key",
            dev.to_str().unwrap(),
            "--node",
            &node,
        ]);
        let declared = deai_json(&[
            "validator",
            "declare",
            "--dir",
            joiner_dir.to_str().unwrap(),
            "--key",
            dev.to_str().unwrap(),
            "--node",
            &node,
        ]);
        assert!(
            declared["status"]["height"].as_u64().is_some(),
            "{declared}"
        );

        // At the next boundary it signs; within two epochs at most.
        let start = Instant::now();
        loop {
            let (_, s) = common::get(&format!("{}/v1/status", joiner.url));
            if s["validator"] == true {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "the joiner never became a validator: {s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let listed = deai_json(&["validator", "list", "--node", &net.url(1)]);
        let members = listed["set"]["members"].as_array().unwrap();
        assert_eq!(members.len(), 5, "{listed}");
        assert!(
            members
                .iter()
                .any(|m| m["key"] == joined.to_string() && m["p2p"] == p2p),
            "{listed}"
        );

        // It leads blocks now (round-robin over five), and every node agrees with it.
        let start = Instant::now();
        let led = loop {
            let (_, s) = common::get(&format!("{}/v1/status", joiner.url));
            let tip = s["height"].as_u64().unwrap();
            let found = (tip.saturating_sub(10)..=tip).find(|h| {
                let (_, b) = common::get(&format!("{}/v1/blocks/{h}", joiner.url));
                b["proposer"] == joined.to_string()
            });
            if let Some(h) = found {
                break h;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the joiner led no block"
            );
            std::thread::sleep(Duration::from_millis(300));
        };
        net.wait_all(led, Duration::from_secs(30));
        let (_, theirs) = common::get(&format!("{}/v1/blocks/{led}", net.url(2)));
        let (_, ours) = common::get(&format!("{}/v1/blocks/{led}", joiner.url));
        assert_eq!(theirs["digest"], ours["digest"]);
        assert_eq!(theirs["state_root"], ours["state_root"]);

        // A light client that knows only the genesis follows the set change to read through it.
        let shown = deai_json(&[
            "account",
            "show",
            "--key",
            dev.to_str().unwrap(),
            "--node",
            &joiner.url,
            "--verify",
            genesis.to_str().unwrap(),
        ]);
        assert!(shown["height"].as_u64().unwrap() >= 24, "{shown}");
        assert_eq!(shown["account"]["staked"], stake, "{shown}");

        // Blobs flow both ways between the genesis validators and the one that joined: each
        // side announces to the set of the epoch it is in, and serves its members.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let to_joiner = deai_node::client::Client::new(joiner.url.clone());
        rt.block_on(to_joiner.put_blob(&net.senders[0], b"published to the joiner"))
            .unwrap();
        let to_first = deai_node::client::Client::new(net.url(0));
        rt.block_on(to_first.put_blob(&net.senders[0], b"published to node 0"))
            .unwrap();
        let start = Instant::now();
        while (0..N).any(|i| counter(&net.url(i), "deai_blob_fetched_total") < 1)
            || counter(&joiner.url, "deai_blob_fetched_total") < 1
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "blobs did not reach every validator of the new set within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
