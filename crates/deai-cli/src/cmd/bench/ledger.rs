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
use deai_node::{
    api::BatchItem,
    client::{Client, ClientError},
    config::NodeConfig,
    run::RunningNode,
};
use ed25519_dalek::SigningKey;
use serde::Serialize;

/// How transactions reach the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// Straight into the node's chain handle (no HTTP).
    Inproc,
    /// Through `POST /v1/txs` (or `/v1/txs/batch`) on loopback.
    Http,
}

/// Arguments of `deai bench ledger`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  deai bench ledger --json
  deai bench ledger --via http --clients 64 --batch 64 --json")]
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
    /// In-process submissions in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// With `--via http`: HTTP clients, each with its own connection, posting one request at a
    /// time (a client's accounts are its own, so each sender's nonces arrive in order).
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// With `--via http`: transactions per request (1 posts to `/v1/txs`, more to
    /// `/v1/txs/batch`, at most the node's `http.batch_txs_max`).
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
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
    /// With `--via http`: HTTP clients and transactions per request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clients: Option<usize>,
    /// With `--via http`: transactions per request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
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
    /// With `--via http`: finalized tx/s of the same transactions submitted in-process, in this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inproc_tps: Option<f64>,
    /// With `--via http`: finalized_tps / inproc_tps (the goal is at least 0.7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_vs_inproc: Option<f64>,
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
    anyhow::ensure!(
        args.clients > 0 && args.batch > 0,
        "--clients and --batch must be positive"
    );
    let started = Instant::now();
    let keys = account_keys(args.accounts);
    let baseline = match args.via {
        Via::Http => Some(measure(&args, Via::Inproc, &keys)?),
        Via::Inproc => None,
    };
    let measured = measure(&args, args.via, &keys)?;
    let outcome = &measured.outcome;
    let restart = if args.restart {
        // `DEAI_LOG=deai_chain=info` shows the restart's phases.
        crate::cmd::node::init_tracing();
        let opened = Instant::now();
        Some(deai_node::run::with_embedded(
            &measured.data,
            |node| async move {
                let ms = opened.elapsed().as_secs_f64() * 1e3;
                let m = node.chain.metrics();
                Ok(Restart {
                    ms,
                    height: m.height,
                    snapshot_height: m.snapshot_height,
                    replayed_blocks: m.replayed_blocks_at_start,
                })
            },
        )?)
    } else {
        None
    };
    let finalized_tps = outcome.tps();
    let inproc_tps = baseline.as_ref().map(|b| b.outcome.tps());
    let http = args.via == Via::Http;
    let report = Report {
        txs: args.txs,
        accounts: args.accounts,
        via: args.via,
        clients: http.then_some(args.clients),
        batch: http.then_some(args.batch),
        blocks: outcome.blocks,
        finalized_tps,
        p50_finality_ms: percentile(&outcome.latencies_ms, 0.50),
        p99_finality_ms: percentile(&outcome.latencies_ms, 0.99),
        ed25519_verify_per_s: measured.verify_per_s,
        ratio: finalized_tps / measured.verify_per_s,
        rejected: outcome.rejected,
        inproc_tps,
        http_vs_inproc: inproc_tps.map(|b| finalized_tps / b),
        wall_s: started.elapsed().as_secs_f64(),
        restart,
    };
    crate::output::emit(args.json, &report, |r| {
        let how = match (r.clients, r.batch) {
            (Some(c), Some(b)) => format!("HTTP ({c} clients, {b} per request)"),
            _ => "the chain handle (in-process)".to_string(),
        };
        println!(
            "ledger bench: {} transfers from {} accounts via {how} in {} blocks",
            r.txs, r.accounts, r.blocks
        );
        println!("  finalized      {:>10.0} tx/s", r.finalized_tps);
        if let (Some(base), Some(ratio)) = (r.inproc_tps, r.http_vs_inproc) {
            println!("  in-process     {base:>10.0} tx/s (same transactions, same run)");
            println!("  http/inproc    {ratio:>10.3}  (goal >= 0.7)");
        }
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
    for (what, o) in baseline
        .iter()
        .map(|b| ("in-process", &b.outcome))
        .chain([(if http { "HTTP" } else { "in-process" }, outcome)])
    {
        anyhow::ensure!(
            o.rejected == 0,
            "{} {what} transactions were rejected",
            o.rejected
        );
    }
    drop(measured);
    Ok(())
}

/// One measured run on a fresh node.
struct Measured {
    outcome: Outcome,
    verify_per_s: f64,
    data: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// Initializes a fresh node funding `keys`, and finalizes `args.txs` transfers through `via`.
fn measure(args: &Args, via: Via, keys: &[SigningKey]) -> anyhow::Result<Measured> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("node");
    let mut cfg = NodeConfig::default();
    cfg.http.writes_per_ip_per_s = 0;
    cfg.http.batch_txs_max = cfg.http.batch_txs_max.max(args.batch);
    let report = deai_node::init::init_with(&data, cfg, |g| {
        for k in keys {
            g.balances
                .push((deai_node::keyfile::address(k), 1_000_000_000));
        }
        g.params.block_txs_max = g.params.block_txs_max.max(20_000);
    })?;
    let txs = sign_all(keys, args.txs, &report.chain_id);
    let verify_per_s = single_core_verify_rate(&txs);
    let label = match via {
        Via::Inproc => "finalized (in-process)",
        Via::Http => "finalized (HTTP)",
    };
    let bar = crate::progress::bar(args.json, args.txs as u64, label);
    let outcome =
        deai_node::run::with_embedded(&data, |node| drive(node, txs, args, via, bar.clone()))?;
    bar.finish_and_clear();
    Ok(Measured {
        outcome,
        verify_per_s,
        data,
        _dir: dir,
    })
}

/// The benchmark's sending accounts: fixed keys, so runs are comparable.
pub(super) fn account_keys(n: usize) -> Vec<SigningKey> {
    (0..n)
        .map(|i| SigningKey::from_bytes(blake3::hash(&(i as u64).to_le_bytes()).as_bytes()))
        .collect()
}

/// Transfers round-robin over the accounts: account `i`'s `k`-th transaction has nonce `k`.
pub(super) fn sign_all(keys: &[SigningKey], n: usize, chain_id: &str) -> Vec<SignedTx> {
    sign_range(keys, 0..n, chain_id)
}

/// The transactions `range` of the round-robin sequence of [`sign_all`] (transaction `i` is
/// account `i % accounts`'s nonce `i / accounts`), so a later range continues an earlier one.
pub(super) fn sign_range(
    keys: &[SigningKey],
    range: std::ops::Range<usize>,
    chain_id: &str,
) -> Vec<SignedTx> {
    use rayon::prelude::*;
    let addrs: Vec<Address> = keys.iter().map(deai_node::keyfile::address).collect();
    range
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

impl Outcome {
    fn tps(&self) -> f64 {
        self.latencies_ms.len().max(1) as f64 / self.span.as_secs_f64().max(1e-9)
    }
}

async fn drive(
    node: RunningNode,
    txs: Vec<SignedTx>,
    args: &Args,
    via: Via,
    bar: indicatif::ProgressBar,
) -> anyhow::Result<Outcome> {
    let start_height = node.chain.height();
    let ids: Vec<TxId> = txs.iter().map(SignedTx::id).collect();
    let submitted: Arc<std::sync::Mutex<BTreeMap<TxId, Instant>>> = Arc::default();
    let first = Instant::now();
    let mut sender = Some(match via {
        Via::Inproc => tokio::spawn(submit_inproc(
            node.clone(),
            txs,
            args.concurrency,
            submitted.clone(),
        )),
        Via::Http => tokio::spawn(submit_http(
            node.clone(),
            txs,
            args.accounts,
            (args.clients, args.batch),
            submitted.clone(),
        )),
    });
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

/// Whether a refusal is backpressure (retry after the next block), not a failure.
pub(super) fn is_backpressure(code: &str) -> bool {
    // A later nonce whose predecessor was pushed back is too far ahead until it lands.
    matches!(
        code,
        "mempool_full" | "sender_mempool_full" | "nonce_too_high"
    )
}

/// Waits for the next finalized block, or fails after a minute without one.
async fn next_block(finalized: &mut tokio::sync::watch::Receiver<u64>) -> anyhow::Result<()> {
    tokio::time::timeout(Duration::from_secs(60), finalized.changed())
        .await
        .map_err(|_| anyhow::anyhow!("the mempool stayed full for 60 s without a block"))??;
    Ok(())
}

pub(super) type Submitted = Arc<std::sync::Mutex<BTreeMap<TxId, Instant>>>;

pub(super) fn stamp(submitted: &Submitted, txs: &[SignedTx]) {
    let now = Instant::now();
    let mut times = submitted.lock().unwrap_or_else(|p| p.into_inner());
    for tx in txs {
        times.insert(tx.id(), now);
    }
}

async fn submit_inproc(
    node: RunningNode,
    txs: Vec<SignedTx>,
    concurrency: usize,
    submitted: Submitted,
) -> anyhow::Result<()> {
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for tx in txs {
        let permit = limit.clone().acquire_owned().await?;
        stamp(&submitted, std::slice::from_ref(&tx));
        let node = node.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let mut finalized = node.chain.subscribe_finalized();
            loop {
                match node.chain.submit(tx.clone()).await {
                    Ok(_) => return anyhow::Ok(()),
                    Err(e) if is_backpressure(e.code()) => next_block(&mut finalized).await?,
                    Err(e) => return Err(e.into()),
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

/// `clients` HTTP clients, each owning the accounts `a` with `a % clients == c` and posting their
/// transactions in nonce order, `batch` per request.
async fn submit_http(
    node: RunningNode,
    txs: Vec<SignedTx>,
    accounts: usize,
    (clients, batch): (usize, usize),
    submitted: Submitted,
) -> anyhow::Result<()> {
    let mut shares = vec![Vec::new(); clients];
    for (i, tx) in txs.into_iter().enumerate() {
        shares[(i % accounts) % clients].push(tx);
    }
    let base = format!("http://{}", node.http_addr);
    let mut tasks = tokio::task::JoinSet::new();
    for share in shares.into_iter().filter(|s| !s.is_empty()) {
        let (client, submitted) = (Client::new(base.clone()), submitted.clone());
        let mut finalized = node.chain.subscribe_finalized();
        tasks.spawn(async move {
            for chunk in share.chunks(batch) {
                stamp(&submitted, chunk);
                post_until_admitted(&client, chunk.to_vec(), &mut finalized).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// Posts `txs` (one to `/v1/txs`, more to `/v1/txs/batch`); each one's verdict.
/// Posts `todo` to `client` until every transaction is admitted; while a mempool pushes some back
/// (full, or a nonce too far ahead of its sender's), waits for the next block on `finalized` and
/// posts those again. Any other refusal ends the run.
pub(super) async fn post_until_admitted(
    client: &Client,
    mut todo: Vec<SignedTx>,
    finalized: &mut tokio::sync::watch::Receiver<u64>,
) -> anyhow::Result<()> {
    while !todo.is_empty() {
        let verdicts = post(client, &todo).await?;
        let mut again = Vec::new();
        for (tx, verdict) in todo.into_iter().zip(verdicts) {
            match verdict {
                Ok(()) => {}
                Err((code, _)) if is_backpressure(&code) => again.push(tx),
                Err((code, message)) => {
                    anyhow::bail!("{} refused a transaction: {code}: {message}", client.base())
                }
            }
        }
        if !again.is_empty() {
            next_block(finalized).await?;
        }
        todo = again;
    }
    Ok(())
}

pub(super) async fn post(
    client: &Client,
    txs: &[SignedTx],
) -> anyhow::Result<Vec<Result<(), (String, String)>>> {
    if let [tx] = txs {
        return Ok(vec![match client.submit(tx).await {
            Ok(_) => Ok(()),
            Err(ClientError::Api { code, message, .. }) => Err((code, message)),
            Err(e) => return Err(e.into()),
        }]);
    }
    let items = client.submit_batch(txs).await?;
    anyhow::ensure!(
        items.len() == txs.len(),
        "the node answered {} verdicts for {} transactions",
        items.len(),
        txs.len()
    );
    Ok(items
        .into_iter()
        .map(|item| match item {
            BatchItem::Accepted { .. } => Ok(()),
            BatchItem::Rejected { code, message } => Err((code, message)),
        })
        .collect())
}

pub(super) fn percentile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}
