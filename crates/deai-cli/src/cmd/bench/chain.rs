//! `deai bench chain`: a validator network of separate `deai node` processes on loopback, loaded
//! through every entry point, against one validator loaded the same way in the same run.
//!
//! Both networks are made by `deai testnet init` (same chain id, same funded accounts, so the very
//! same signed transactions run on both) and started as child processes of this one. HTTP clients
//! post batches of transfers, client `c` to validator `c mod N`, each client owning its accounts so
//! every sender's nonces arrive in order at one entry point; gossip carries them to the others.
//!
//! Finality is what validator 0 reports: a transaction's latency runs from its post to the moment
//! a poll of validator 0 (every [`POLL`]) sees its block finalized, so it includes up to one poll
//! interval. `finalized_tps` counts from the first post to the last transaction seen finalized.
//!
//! Every validator checks every transaction's signature (on gossip or in the block it votes on),
//! so with `C` cores and `N ≥ C` validators the network cannot beat `single × C / N`: that is the
//! `ceiling_tps` the report compares with. A second phase offers half the measured maximum at a
//! steady pace for `--half-load-s` seconds: the latency a lightly loaded network gives. Afterwards
//! every validator must report the same state root at a common height, or the run fails.

use std::{
    collections::BTreeSet,
    sync::Arc,
    time::{Duration, Instant},
};

use deai_ledger::{SignedTx, TxId};
use deai_node::client::Client;
use ed25519_dalek::SigningKey;
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use super::ledger::{Submitted, account_keys, percentile, post_until_admitted, sign_range, stamp};
use crate::local_network::LocalNetwork;

/// How often validator 0 is asked for its finalized height.
const POLL: Duration = Duration::from_millis(10);
/// How long a network may take to connect all its validators and finalize a block.
const WARM_UP: Duration = Duration::from_secs(60);
/// A network that finalizes nothing for this long has failed.
const STALL: Duration = Duration::from_secs(60);

/// Arguments of `deai bench chain`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  deai bench chain --validators 4 --txs 20000 --json")]
pub struct Args {
    /// Validators of the measured network, each its own process.
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Transactions finalized at full load (on each network).
    #[arg(long, default_value_t = 20_000)]
    pub txs: usize,
    /// Distinct sending accounts.
    #[arg(long, default_value_t = 1_000)]
    pub accounts: usize,
    /// HTTP clients in all, spread over the entry points, each posting one request at a time.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Transactions per request (`POST /v1/txs/batch`).
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Seconds of steady load at half the measured maximum, for the latency a network not at its
    /// limit gives (0 skips it).
    #[arg(long, default_value_t = 10.0)]
    pub half_load_s: f64,
    /// Print one JSON object instead of a human summary.
    #[arg(long)]
    pub json: bool,
}

/// What the benchmark measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Validators of the measured network.
    pub validators: usize,
    /// Transactions finalized at full load, on each network.
    pub txs: usize,
    /// Sending accounts.
    pub accounts: usize,
    /// HTTP clients, spread over the entry points.
    pub clients: usize,
    /// Transactions per request.
    pub batch: usize,
    /// The network's finalized transactions per second at full load.
    pub finalized_tps: f64,
    /// Median submission-to-finality latency at full load.
    pub p50_finality_ms: f64,
    /// 99th percentile submission-to-finality latency at full load.
    pub p99_finality_ms: f64,
    /// Blocks the full-load transactions landed in.
    pub blocks: u64,
    /// One validator's finalized transactions per second, same transactions, same run.
    pub single_validator_tps: f64,
    /// finalized_tps / single_validator_tps.
    pub ratio: f64,
    /// Cores this machine offers the processes.
    pub cores: usize,
    /// single_validator_tps × min(cores, validators) / validators: what signature checking on
    /// every validator leaves, before consensus costs.
    pub ceiling_tps: f64,
    /// finalized_tps / ceiling_tps (the goal is at least 0.6).
    pub of_ceiling: f64,
    /// Steady load at half of finalized_tps (absent with `--half-load-s 0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub half_load: Option<Paced>,
    /// A height every validator had finalized at the end, where all their state roots agreed.
    pub agreed_height: u64,
    /// Whole run, seconds.
    pub wall_s: f64,
}

/// The steady half-load phase.
#[derive(Debug, Serialize)]
pub struct Paced {
    /// Transactions per second offered.
    pub offered_tps: f64,
    /// Transactions offered.
    pub txs: usize,
    /// Median submission-to-finality latency.
    pub p50_finality_ms: f64,
    /// 99th percentile submission-to-finality latency (the goal is under 1 s).
    pub p99_finality_ms: f64,
}

/// Runs `deai bench chain`.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=deai_node::testnet::VALIDATORS_MAX).contains(&args.validators),
        "--validators must be between 1 and {}",
        deai_node::testnet::VALIDATORS_MAX
    );
    anyhow::ensure!(
        args.txs > 0 && args.accounts > 0 && args.clients > 0 && args.batch > 0,
        "--txs, --accounts, --clients and --batch must be positive"
    );
    anyhow::ensure!(
        args.half_load_s.is_finite() && args.half_load_s >= 0.0,
        "--half-load-s must be a number of seconds, 0 or more"
    );
    let started = Instant::now();
    let keys = account_keys(args.accounts);
    let txs = sign_range(&keys, 0..args.txs, deai_node::testnet::CHAIN_ID);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    let single = {
        let net = Network::start(1, &keys, &args)?;
        let bar = crate::progress::bar(args.json, args.txs as u64, "one validator");
        let load = rt.block_on(net.load(txs.clone(), &args, None, bar.clone()));
        bar.finish_and_clear();
        net.finish(load)?
    };

    let net = Network::start(args.validators, &keys, &args)?;
    let measured = rt.block_on(async {
        let bar = crate::progress::bar(args.json, args.txs as u64, "network");
        let full = net.load(txs, &args, None, bar.clone()).await?;
        bar.finish_and_clear();
        let half_rate = full.tps() / 2.0;
        let half = if args.half_load_s > 0.0 {
            let n = ((half_rate * args.half_load_s).ceil() as usize).max(1);
            let paced = sign_range(&keys, args.txs..args.txs + n, deai_node::testnet::CHAIN_ID);
            let bar = crate::progress::bar(args.json, n as u64, "half load");
            let outcome = net.load(paced, &args, Some(half_rate), bar.clone()).await?;
            bar.finish_and_clear();
            Some(Paced {
                offered_tps: half_rate,
                txs: n,
                p50_finality_ms: percentile(&outcome.latencies_ms, 0.50),
                p99_finality_ms: percentile(&outcome.latencies_ms, 0.99),
            })
        } else {
            None
        };
        let agreed = net.agreed_height().await?;
        anyhow::Ok((full, half, agreed))
    });
    let (full, half_load, agreed_height) = net.finish(measured)?;

    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let single_validator_tps = single.tps();
    let finalized_tps = full.tps();
    let ceiling_tps =
        single_validator_tps * cores.min(args.validators) as f64 / args.validators as f64;
    let report = Report {
        validators: args.validators,
        txs: args.txs,
        accounts: args.accounts,
        clients: args.clients,
        batch: args.batch,
        finalized_tps,
        p50_finality_ms: percentile(&full.latencies_ms, 0.50),
        p99_finality_ms: percentile(&full.latencies_ms, 0.99),
        blocks: full.blocks,
        single_validator_tps,
        ratio: finalized_tps / single_validator_tps,
        cores,
        ceiling_tps,
        of_ceiling: finalized_tps / ceiling_tps,
        half_load,
        agreed_height,
        wall_s: started.elapsed().as_secs_f64(),
    };
    crate::output::emit(args.json, &report, |r| {
        println!(
            "chain bench: {} validators as processes on loopback; {} transfers from {} accounts, \
             {} HTTP clients over every entry point, {} per request",
            r.validators, r.txs, r.accounts, r.clients, r.batch
        );
        println!(
            "  network        {:>9.0} tx/s  p50 {:.0} ms  p99 {:.0} ms  ({} blocks)",
            r.finalized_tps, r.p50_finality_ms, r.p99_finality_ms, r.blocks
        );
        println!(
            "  one validator  {:>9.0} tx/s  (same transactions, same run)",
            r.single_validator_tps
        );
        println!("  ratio          {:>9.3}", r.ratio);
        println!(
            "  ceiling        {:>9.0} tx/s  (one validator × {}/{} cores' share); reached {:.2} of \
             it (goal >= 0.6)",
            r.ceiling_tps,
            r.cores.min(r.validators),
            r.validators,
            r.of_ceiling
        );
        if let Some(h) = &r.half_load {
            println!(
                "  half load      {:>9.0} tx/s offered for {} txs: p50 {:.0} ms  p99 {:.0} ms \
                 (goal p99 < 1000 ms)",
                h.offered_tps, h.txs, h.p50_finality_ms, h.p99_finality_ms
            );
        }
        println!(
            "  all {} validators report the same state root at height {}",
            r.validators, r.agreed_height
        );
    })
}

/// A benchmark network in a temporary directory, kept (and named) when the run fails.
struct Network {
    /// The network's directory; `None` once kept for reading its logs.
    dir: Option<tempfile::TempDir>,
    processes: LocalNetwork,
    urls: Vec<String>,
}

impl Network {
    /// Initializes `n` validators funding `keys` and starts each as its own process.
    fn start(n: usize, keys: &[SigningKey], args: &Args) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("deai-bench-chain-")
            .tempdir()?;
        let batch = args.batch;
        let started = LocalNetwork::start(
            &dir.path().join("net"),
            n,
            |g| {
                for k in keys {
                    g.balances
                        .push((deai_node::keyfile::address(k), 1_000_000_000));
                }
                g.params.block_txs_max = g.params.block_txs_max.max(20_000);
            },
            |c| {
                // Every client posts from 127.0.0.1: the per-address write limit would measure
                // itself.
                c.http.writes_per_ip_per_s = 0;
                c.http.batch_txs_max = c.http.batch_txs_max.max(batch);
            },
        );
        match started {
            Ok(processes) => Ok(Self {
                dir: Some(dir),
                urls: processes.urls.clone(),
                processes,
            }),
            Err(e) => Err(e.context(format!(
                "the nodes' logs are kept in {}",
                dir.keep().display()
            ))),
        }
    }

    /// Stops the nodes; on failure keeps their directories (logs) and says where.
    fn finish<T>(mut self, outcome: anyhow::Result<T>) -> anyhow::Result<T> {
        self.processes.stop();
        match (outcome, self.dir.take()) {
            (Ok(v), _) => Ok(v),
            (Err(e), Some(dir)) => Err(e.context(format!(
                "the nodes' logs are kept in {}",
                dir.keep().display()
            ))),
            (Err(e), None) => Err(e),
        }
    }

    async fn agreed_height(&self) -> anyhow::Result<u64> {
        self.processes.agreed_height().await
    }

    /// Posts `txs` through every entry point (all at once, or `pace` per second in order) and
    /// waits until validator 0 has finalized every one.
    async fn load(
        &self,
        txs: Vec<SignedTx>,
        args: &Args,
        pace: Option<f64>,
        bar: indicatif::ProgressBar,
    ) -> anyhow::Result<Outcome> {
        self.processes.await_connected(WARM_UP).await?;
        let observer = Client::new(self.urls[0].clone());
        let start_height = observer.status().await?.height;
        let mut pending: BTreeSet<TxId> = txs.iter().map(SignedTx::id).collect();
        let submitted: Submitted = Arc::default();
        let (tip_tx, tip_rx) = watch::channel(start_height);
        let first = Instant::now();
        let mut sender = Some(tokio::spawn(submit(
            self.urls.clone(),
            txs,
            (args.accounts, args.clients, args.batch),
            pace,
            submitted.clone(),
            tip_rx,
        )));
        let mut latencies_ms = Vec::with_capacity(pending.len());
        let (mut rejected, mut seen, mut last, mut moved) = (0usize, start_height, first, first);
        let mut poll = tokio::time::interval(POLL);
        while !pending.is_empty() {
            // A failed submission ends the run at once, not after waiting for what never comes.
            if sender.as_ref().is_some_and(|s| s.is_finished())
                && let Some(s) = sender.take()
            {
                s.await??;
            }
            poll.tick().await;
            let tip = observer.status().await?.height;
            let now = Instant::now();
            if tip == seen {
                anyhow::ensure!(
                    now.duration_since(moved) < STALL,
                    "validator 0 finalized nothing for {} s with {} transactions pending",
                    STALL.as_secs(),
                    pending.len()
                );
                continue;
            }
            for h in seen + 1..=tip {
                let block = observer.block(h).await?;
                let times = submitted.lock().unwrap_or_else(|p| p.into_inner());
                for (id, receipt) in block.tx_ids.iter().zip(&block.receipts) {
                    if pending.remove(id) {
                        rejected += usize::from(receipt.result.is_err());
                        if let Some(t) = times.get(id) {
                            latencies_ms.push(now.duration_since(*t).as_secs_f64() * 1e3);
                        }
                        last = now;
                    }
                }
            }
            seen = tip;
            moved = now;
            tip_tx.send_replace(tip);
            bar.set_position(latencies_ms.len() as u64);
        }
        if let Some(s) = sender {
            s.await??;
        }
        anyhow::ensure!(
            rejected == 0,
            "{rejected} transactions failed in their blocks"
        );
        Ok(Outcome {
            span: last.duration_since(first),
            latencies_ms,
            blocks: seen - start_height,
        })
    }
}

/// What one load phase measured.
struct Outcome {
    span: Duration,
    latencies_ms: Vec<f64>,
    blocks: u64,
}

impl Outcome {
    fn tps(&self) -> f64 {
        self.latencies_ms.len().max(1) as f64 / self.span.as_secs_f64().max(1e-9)
    }
}

/// Hands `txs` to `clients` HTTP clients (client `c` owns the accounts `a` with
/// `a % clients == c` and posts to entry point `c % urls.len()`), all at once or released in order
/// at `pace` per second. Backpressure refusals are posted again after the next block.
async fn submit(
    urls: Vec<String>,
    txs: Vec<SignedTx>,
    (accounts, clients, batch): (usize, usize, usize),
    pace: Option<f64>,
    submitted: Submitted,
    tip: watch::Receiver<u64>,
) -> anyhow::Result<()> {
    let mut queues = Vec::with_capacity(clients);
    let mut workers = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (tx, rx) = mpsc::unbounded_channel::<SignedTx>();
        queues.push(tx);
        let client = Client::new(urls[c % urls.len()].clone());
        workers.spawn(post_queue(
            client,
            rx,
            batch,
            submitted.clone(),
            tip.clone(),
        ));
    }
    let owner = |i: usize| (i % accounts) % clients;
    match pace {
        None => {
            for (i, tx) in txs.into_iter().enumerate() {
                let _ = queues[owner(i)].send(tx);
            }
        }
        Some(rate) => {
            let start = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            let mut txs = txs.into_iter().enumerate().peekable();
            while txs.peek().is_some() {
                tick.tick().await;
                let due = (start.elapsed().as_secs_f64() * rate) as usize;
                while let Some((i, tx)) = txs.next_if(|(i, _)| *i < due) {
                    let _ = queues[owner(i)].send(tx);
                }
            }
        }
    }
    drop(queues);
    while let Some(done) = workers.join_next().await {
        done??;
    }
    Ok(())
}

/// One client: posts what its queue holds, up to `batch` per request, one request at a time.
async fn post_queue(
    client: Client,
    mut queue: mpsc::UnboundedReceiver<SignedTx>,
    batch: usize,
    submitted: Submitted,
    mut tip: watch::Receiver<u64>,
) -> anyhow::Result<()> {
    while let Some(first) = queue.recv().await {
        let mut todo = vec![first];
        while todo.len() < batch {
            match queue.try_recv() {
                Ok(tx) => todo.push(tx),
                Err(_) => break,
            }
        }
        stamp(&submitted, &todo);
        post_until_admitted(&client, todo, &mut tip).await?;
    }
    Ok(())
}
