//! `deai bench ledger`: signed transfers from many accounts through the real path — mempool,
//! consensus, execution, durable storage with fsync — on one validator, against the physical floor of
//! checking their signatures.
//!
//! `finalized_tps` counts from the first submission to the moment the last transaction is seen
//! finalized; latencies are per transaction, from its submission to its block being visible as
//! finalized (durable) to the submitter. `ed25519_verify_per_s` verifies the same kind of signed
//! transactions one by one on one core in the same run, so `ratio` compares like with like.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use deai_ledger::{Address, SignedTx, Tx, TxBody, TxId, tx::Transfer};
use deai_node::{config::NodeConfig, run::RunningNode};
use ed25519_dalek::SigningKey;
use serde::Serialize;

/// How transactions reach the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// Straight into the node's chain handle (no HTTP).
    Inproc,
    /// Through `POST /v1/txs` on loopback.
    Http,
}

/// Arguments of `deai bench ledger`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Transactions to finalize.
    #[arg(long, default_value_t = 20_000)]
    pub txs: usize,
    /// Distinct sending accounts.
    #[arg(long, default_value_t = 1_000)]
    pub accounts: usize,
    /// How transactions are submitted.
    #[arg(long, value_enum, default_value = "inproc")]
    pub via: Via,
    /// Submissions in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Afterwards, stop the node and time its restart on the same data (snapshot + replay).
    #[arg(long)]
    pub restart: bool,
    /// Print one JSON object instead of a human summary.
    #[arg(long)]
    pub json: bool,
}

/// What the benchmark measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Transactions finalized.
    pub txs: usize,
    /// Sending accounts.
    pub accounts: usize,
    /// Submission path.
    pub via: Via,
    /// Blocks they landed in.
    pub blocks: u64,
    /// Finalized transactions per second, first submission to last finalization.
    pub finalized_tps: f64,
    /// Median submission-to-finality latency.
    pub p50_finality_ms: f64,
    /// 99th percentile submission-to-finality latency.
    pub p99_finality_ms: f64,
    /// Single-core ed25519 verifications per second of the same transactions.
    pub ed25519_verify_per_s: f64,
    /// finalized_tps / ed25519_verify_per_s.
    pub ratio: f64,
    /// Transactions that were rejected (must be 0).
    pub rejected: usize,
    /// Whole run, seconds.
    pub wall_s: f64,
    /// With `--restart`: how the node came back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<Restart>,
}

/// A restart of the node on the benchmark's data, timed from opening the runtime to the node
/// serving (chain replayed, API bound).
#[derive(Debug, Serialize)]
pub struct Restart {
    /// Milliseconds until the node served again.
    pub ms: f64,
    /// Height it resumed at.
    pub height: u64,
    /// Height of the snapshot it restored.
    pub snapshot_height: u64,
    /// Blocks it replayed after the snapshot.
    pub replayed_blocks: u64,
}

/// Runs `deai bench ledger`.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.txs > 0 && args.accounts > 0,
        "--txs and --accounts must be positive"
    );
    let started = Instant::now();
    let keys: Vec<SigningKey> = (0..args.accounts)
        .map(|i| SigningKey::from_bytes(blake3::hash(&(i as u64).to_le_bytes()).as_bytes()))
        .collect();
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("node");
    let report = deai_node::init::init_with(&data, NodeConfig::default(), |g| {
        for k in &keys {
            g.balances
                .push((deai_node::keyfile::address(k), 1_000_000_000));
        }
        g.params.block_txs_max = g.params.block_txs_max.max(20_000);
    })?;
    let txs = sign_all(&keys, args.txs, &report.chain_id);
    let verify_per_s = single_core_verify_rate(&txs);
    let bar = crate::progress::bar(args.json, args.txs as u64, "finalized");
    let outcome =
        deai_node::run::with_embedded(&data, |node| drive(node, txs, &args, bar.clone()))?;
    bar.finish_and_clear();
    let restart = if args.restart {
        let opened = Instant::now();
        Some(deai_node::run::with_embedded(&data, |node| async move {
            let ms = opened.elapsed().as_secs_f64() * 1e3;
            let m = node.chain.metrics();
            Ok(Restart {
                ms,
                height: m.height,
                snapshot_height: m.snapshot_height,
                replayed_blocks: m.replayed_blocks_at_start,
            })
        })?)
    } else {
        None
    };
    let finalized_tps = args.txs as f64 / outcome.span.as_secs_f64();
    let report = Report {
        txs: args.txs,
        accounts: args.accounts,
        via: args.via,
        blocks: outcome.blocks,
        finalized_tps,
        p50_finality_ms: percentile(&outcome.latencies_ms, 0.50),
        p99_finality_ms: percentile(&outcome.latencies_ms, 0.99),
        ed25519_verify_per_s: verify_per_s,
        ratio: finalized_tps / verify_per_s,
        rejected: outcome.rejected,
        wall_s: started.elapsed().as_secs_f64(),
        restart,
    };
    crate::output::emit(args.json, &report, |r| {
        println!(
            "ledger bench: {} transfers from {} accounts via {:?} in {} blocks",
            r.txs, r.accounts, r.via, r.blocks
        );
        println!("  finalized      {:>10.0} tx/s", r.finalized_tps);
        println!(
            "  ed25519 verify {:>10.0} /s (one core)",
            r.ed25519_verify_per_s
        );
        println!("  ratio          {:>10.3}  (target >= 0.5)", r.ratio);
        println!(
            "  finality       p50 {:.1} ms  p99 {:.1} ms",
            r.p50_finality_ms, r.p99_finality_ms
        );
        if let Some(x) = &r.restart {
            println!(
                "  restart        {:.0} ms to serve at height {} (snapshot at {}, {} blocks replayed)",
                x.ms, x.height, x.snapshot_height, x.replayed_blocks
            );
        }
    })?;
    anyhow::ensure!(
        outcome.rejected == 0,
        "{} transactions were rejected",
        outcome.rejected
    );
    Ok(())
}

/// Transfers round-robin over the accounts: account `i`'s `k`-th transaction has nonce `k`.
fn sign_all(keys: &[SigningKey], n: usize, chain_id: &str) -> Vec<SignedTx> {
    use rayon::prelude::*;
    let addrs: Vec<Address> = keys.iter().map(deai_node::keyfile::address).collect();
    (0..n)
        .into_par_iter()
        .map(|i| {
            let from = i % keys.len();
            let to = addrs[(from + 1) % keys.len()];
            let tx = Tx {
                chain_id: chain_id.to_string(),
                sender: addrs[from],
                nonce: (i / keys.len()) as u64,
                fee: 1,
                body: TxBody::Transfer(Transfer { to, amount: 1 }),
            };
            SignedTx::sign(tx, &keys[from])
        })
        .collect()
}

/// One-by-one verification of (up to 5000 of) the transactions on this thread.
fn single_core_verify_rate(txs: &[SignedTx]) -> f64 {
    let sample = &txs[..txs.len().min(5_000)];
    let start = Instant::now();
    for tx in sample {
        tx.verify_signature()
            .expect("the benchmark signs its own transactions correctly");
    }
    sample.len() as f64 / start.elapsed().as_secs_f64()
}

struct Outcome {
    span: Duration,
    latencies_ms: Vec<f64>,
    blocks: u64,
    rejected: usize,
}

async fn drive(
    node: RunningNode,
    txs: Vec<SignedTx>,
    args: &Args,
    bar: indicatif::ProgressBar,
) -> anyhow::Result<Outcome> {
    let start_height = node.chain.height();
    let ids: Vec<TxId> = txs.iter().map(SignedTx::id).collect();
    let submitted: Arc<std::sync::Mutex<BTreeMap<TxId, Instant>>> = Arc::default();
    let first = Instant::now();
    let mut sender = Some(tokio::spawn(submit_all(
        node.clone(),
        txs,
        args.via,
        args.concurrency,
        submitted.clone(),
    )));
    let mut pending: std::collections::BTreeSet<TxId> = ids.into_iter().collect();
    let mut latencies_ms = Vec::with_capacity(pending.len());
    let mut rejected = 0usize;
    let mut seen = start_height;
    let mut watch = node.chain.subscribe_finalized();
    let mut last = first;
    while !pending.is_empty() {
        // A failed submission ends the run at once, not after waiting for what never comes.
        if sender.as_ref().is_some_and(|s| s.is_finished())
            && let Some(s) = sender.take()
        {
            s.await??;
        }
        tokio::time::timeout(Duration::from_secs(60), watch.changed())
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "no block finalized for 60 s with {} transactions pending",
                    pending.len()
                )
            })??;
        let tip = *watch.borrow_and_update();
        let now = Instant::now();
        for h in seen + 1..=tip {
            let Some(block) = node.chain.block(h).await else {
                continue;
            };
            let times = submitted.lock().unwrap_or_else(|p| p.into_inner());
            for (tx, receipt) in block.txs.iter().zip(&block.receipts) {
                let id = tx.id();
                if pending.remove(&id) {
                    rejected += usize::from(receipt.result.is_err());
                    if let Some(t) = times.get(&id) {
                        latencies_ms.push(now.duration_since(*t).as_secs_f64() * 1e3);
                    }
                    last = now;
                }
            }
        }
        seen = tip;
        bar.set_position(latencies_ms.len() as u64);
    }
    if let Some(s) = sender {
        s.await??;
    }
    Ok(Outcome {
        span: last.duration_since(first),
        latencies_ms,
        blocks: seen - start_height,
        rejected,
    })
}

async fn submit_all(
    node: RunningNode,
    txs: Vec<SignedTx>,
    via: Via,
    concurrency: usize,
    submitted: Arc<std::sync::Mutex<BTreeMap<TxId, Instant>>>,
) -> anyhow::Result<()> {
    let client = deai_node::client::Client::new(format!("http://{}", node.http_addr));
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for tx in txs {
        let permit = limit.clone().acquire_owned().await?;
        submitted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tx.id(), Instant::now());
        let (node, client) = (node.clone(), client.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let mut finalized = node.chain.subscribe_finalized();
            // A full mempool is backpressure, not failure: wait for a block to make room.
            loop {
                let result = match via {
                    Via::Inproc => node.chain.submit(tx.clone()).await.map(|_| ()).map_err(|e| {
                        (e.code() == "mempool_full", anyhow::Error::from(e))
                    }),
                    Via::Http => client.submit(&tx).await.map(|_| ()).map_err(|e| {
                        let full = matches!(&e, deai_node::client::ClientError::Api { code, .. } if code == "mempool_full");
                        (full, anyhow::Error::from(e))
                    }),
                };
                match result {
                    Ok(()) => return Ok(()),
                    Err((true, _)) => {
                        finalized.changed().await?;
                    }
                    Err((false, e)) => return Err(e),
                }
            }
        });
        while let Some(done) = tasks.try_join_next() {
            done??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

fn percentile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}
