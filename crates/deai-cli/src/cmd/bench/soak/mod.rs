//! `deai bench soak`: a real `deai node` process under honest load and every attack of issue 12 at
//! once.
//!
//! The run has two phases on one node: first honest load alone (the no-attack figure), then the
//! same honest load with all attacks running, each from its own loopback address. It reports the
//! honest finalized tx/s of each phase and their ratio, honest p99 latency (submission to the
//! watcher seeing the block, which polls every 100 ms), the node's resident memory and open
//! descriptors (read from `/proc`), and the mempool. Memory is judged from the end of a warm-up
//! (a quarter of the attack phase, when every attack has reached its steady state and the
//! node's window of recent blocks has filled) to the end.

mod attacks;
mod honest;

use std::time::{Duration, Instant};

use crate::node_process::{Listen, NodeProcess, fds, rss_kb};
use deai_ledger::{Address, SignedTx, Transfer, Tx, TxBody};
use deai_node::{client::Client, config::NodeConfig};
use ed25519_dalek::SigningKey;
use serde::Serialize;

pub use attacks::Tally;

/// Arguments of `deai bench soak`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  deai bench soak --minutes 5 --json")]
pub struct Args {
    /// Length of the run in minutes.
    #[arg(long, conflicts_with = "seconds")]
    pub minutes: Option<f64>,
    /// Length of the run in seconds (for short runs; `--minutes` otherwise).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Honest transfers offered per second, over all honest clients.
    #[arg(long, default_value_t = 200.0)]
    pub honest_tps: f64,
    /// Honest accounts are 8 per client; each account submits on its own connection.
    #[arg(long, default_value_t = 4)]
    pub honest_clients: usize,
    /// Print one JSON object instead of a human summary.
    #[arg(long)]
    pub json: bool,
}

/// What the soak measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Whole run, seconds (both phases).
    pub seconds: f64,
    /// Honest load alone, seconds.
    pub baseline_s: f64,
    /// Honest load under attack, seconds.
    pub attack_s: f64,
    /// Honest transfers offered per second.
    pub honest_offered_tps: f64,
    /// Honest finalized tx/s without attacks.
    pub honest_baseline_tps: f64,
    /// Honest finalized tx/s under attack.
    pub honest_attack_tps: f64,
    /// honest_attack_tps / honest_baseline_tps (the bar is 0.5).
    pub honest_ratio: f64,
    /// Honest p99 submission-to-finality latency without attacks, ms.
    pub honest_baseline_p99_ms: f64,
    /// Honest p99 submission-to-finality latency under attack, ms.
    pub honest_attack_p99_ms: f64,
    /// Honest submissions the node refused, by code (429s, 503s; retried on the next turn).
    pub honest_refused: std::collections::BTreeMap<String, u64>,
    /// Honest transactions never seen final by the end.
    pub honest_unfinalized: usize,
    /// Honest transactions whose receipt is an error.
    pub honest_failed_in_block: u64,
    /// Node RSS once up, kB.
    pub rss_start_kb: u64,
    /// Node RSS at the end of the attack warm-up, kB.
    pub rss_warm_kb: u64,
    /// Node RSS at the end, kB.
    pub rss_end_kb: u64,
    /// Largest RSS sampled (once a second), kB.
    pub rss_max_kb: u64,
    /// rss_end_kb / rss_warm_kb - 1 (the bar is within ±0.10).
    pub rss_growth_after_warmup: f64,
    /// Node descriptors once up.
    pub fds_start: u64,
    /// Most node descriptors sampled.
    pub fds_max: u64,
    /// Node descriptors at the end.
    pub fds_end: u64,
    /// Largest mempool seen.
    pub mempool_max: u64,
    /// Mempool at the end.
    pub mempool_end: u64,
    /// Finalized height at the end.
    pub height_end: u64,
    /// Whether the node process was alive throughout.
    pub node_alive: bool,
    /// Each attack's attempts and the node's answers.
    pub attacks: Vec<Tally>,
    /// honest_ratio >= 0.5, RSS within 10 % after warm-up, node alive.
    pub pass: bool,
}

/// Runs `deai bench soak`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let seconds = match (args.minutes, args.seconds) {
        (Some(m), None) => m * 60.0,
        (None, Some(s)) => s,
        _ => 300.0,
    };
    anyhow::ensure!(
        (4.0..=86_400.0).contains(&seconds),
        "the run must last between 4 seconds and a day (got {seconds} s)"
    );
    anyhow::ensure!(
        args.honest_tps > 0.0 && args.honest_clients > 0,
        "--honest-tps and --honest-clients must be positive"
    );
    // The attackers alone hold thousands of sockets.
    deai_node::http::raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(soak(&args, seconds))?;
    // Attack tasks still blocked in reads are dropped with the runtime, not awaited.
    runtime.shutdown_background();
    crate::output::emit(args.json, &report, print)?;
    anyhow::ensure!(
        report.pass,
        "the node did not hold: honest ratio {:.2} (bar 0.5), RSS growth {:+.1} % (bar ±10 %), alive {}",
        report.honest_ratio,
        report.rss_growth_after_warmup * 100.0,
        report.node_alive
    );
    Ok(())
}

/// A transfer of 1 from `key` to `to`, signed: what every soak participant sends.
fn transfer(key: &SigningKey, chain_id: &str, nonce: u64, fee: u128, to: u8) -> SignedTx {
    SignedTx::sign(
        Tx {
            chain_id: chain_id.to_string(),
            sender: deai_node::keyfile::address(key),
            nonce,
            fee,
            body: TxBody::Transfer(Transfer {
                to: Address([to; 32]),
                amount: 1,
            }),
        },
        key,
    )
}

fn key(label: &str, i: usize) -> SigningKey {
    SigningKey::from_bytes(blake3::hash(format!("soak/{label}/{i}").as_bytes()).as_bytes())
}

async fn soak(args: &Args, seconds: f64) -> anyhow::Result<Report> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("node");
    let honest: Vec<SigningKey> = (0..args.honest_clients * 8)
        .map(|i| key("honest", i))
        .collect();
    let funded: Vec<SigningKey> = (0..8).map(|i| key("attacker", i)).collect();
    let init = deai_node::init::init_with(&data, NodeConfig::default(), |g| {
        for k in honest.iter().chain(&funded) {
            g.balances
                .push((deai_node::keyfile::address(k), 1_000_000_000_000));
        }
    })?;
    let log = dir.path().join("node.log");
    let start_dir = data.clone();
    // Starting waits on the child's first line: a blocking read, kept off the runtime's workers.
    let mut node = tokio::task::spawn_blocking(move || {
        NodeProcess::start(
            &start_dir,
            &log,
            Listen::AnyLoopbackPort,
            None,
            Duration::from_secs(60),
        )
    })
    .await??;
    let pid = node.pid();
    let base = format!("http://{}", node.http);
    let fee = Client::new(base.clone()).status().await?.fee_min;
    let (rss_start_kb, fds_start) = (rss_kb(pid), fds(pid));

    let book = honest::Shared::default();
    let mut honest_tasks = tokio::task::JoinSet::new();
    honest_tasks.spawn(honest::watcher(base.clone(), book.clone()));
    let per_account = args.honest_tps / honest.len() as f64;
    for key in &honest {
        honest_tasks.spawn(honest::account(
            base.clone(),
            key.clone(),
            init.chain_id.clone(),
            fee,
            per_account,
            book.clone(),
        ));
    }

    let baseline = Duration::from_secs_f64((seconds / 5.0).max(2.0));
    let attack = Duration::from_secs_f64(seconds) - baseline;
    let warmup = attack / 4;
    let bar = crate::progress::bar(args.json, seconds as u64, "seconds");
    let mut sampler = Sampler::new(pid);
    let t0 = Instant::now();
    sampler.run_until(&mut node, t0 + baseline, &bar, t0).await;
    let attack_start = Instant::now();
    let mut attack_tasks = tokio::task::JoinSet::new();
    let target = attacks::Target {
        http: node.http,
        chain_id: init.chain_id.clone(),
        funded,
    };
    let counters = attacks::start_all(&target, &mut attack_tasks);
    sampler
        .run_until(&mut node, attack_start + warmup, &bar, t0)
        .await;
    let rss_warm_kb = rss_kb(pid);
    sampler
        .run_until(&mut node, attack_start + attack, &bar, t0)
        .await;
    let end = Instant::now();
    let (rss_end_kb, fds_end) = (rss_kb(pid), fds(pid));
    attack_tasks.abort_all();
    bar.finish_and_clear();
    let status = Client::new(base).status().await;
    let node_alive = sampler.alive && node.alive() && status.is_ok();
    honest_tasks.abort_all();

    let b = honest::lock(&book);
    let before = b.window(t0, attack_start);
    let during = b.window(attack_start, end);
    let baseline_tps = before.len() as f64 / attack_start.duration_since(t0).as_secs_f64();
    let attack_tps = during.len() as f64 / end.duration_since(attack_start).as_secs_f64();
    let honest_ratio = if baseline_tps > 0.0 {
        attack_tps / baseline_tps
    } else {
        0.0
    };
    let rss_growth = rss_end_kb as f64 / rss_warm_kb.max(1) as f64 - 1.0;
    Ok(Report {
        seconds: end.duration_since(t0).as_secs_f64(),
        baseline_s: attack_start.duration_since(t0).as_secs_f64(),
        attack_s: end.duration_since(attack_start).as_secs_f64(),
        honest_offered_tps: args.honest_tps,
        honest_baseline_tps: baseline_tps,
        honest_attack_tps: attack_tps,
        honest_ratio,
        honest_baseline_p99_ms: p99(before),
        honest_attack_p99_ms: p99(during),
        honest_refused: b.refused.clone(),
        honest_unfinalized: b.unfinalized(),
        honest_failed_in_block: b.failed_in_block,
        rss_start_kb,
        rss_warm_kb,
        rss_end_kb,
        rss_max_kb: sampler.rss_max_kb,
        rss_growth_after_warmup: rss_growth,
        fds_start,
        fds_max: sampler.fds_max,
        fds_end,
        mempool_max: b.mempool_max,
        mempool_end: b.mempool_last,
        height_end: status.map(|s| s.height).unwrap_or(0),
        node_alive,
        attacks: counters.iter().map(|c| c.tally()).collect(),
        pass: honest_ratio >= 0.5 && rss_growth.abs() <= 0.10 && node_alive,
    })
}

/// Once a second: the node's memory and descriptors, and whether it still runs.
struct Sampler {
    pid: u32,
    rss_max_kb: u64,
    fds_max: u64,
    alive: bool,
}

impl Sampler {
    fn new(pid: u32) -> Self {
        Self {
            pid,
            rss_max_kb: 0,
            fds_max: 0,
            alive: true,
        }
    }

    async fn run_until(
        &mut self,
        node: &mut NodeProcess,
        until: Instant,
        bar: &indicatif::ProgressBar,
        t0: Instant,
    ) {
        while Instant::now() < until {
            let left = until.saturating_duration_since(Instant::now());
            tokio::time::sleep(left.min(Duration::from_secs(1))).await;
            self.rss_max_kb = self.rss_max_kb.max(rss_kb(self.pid));
            self.fds_max = self.fds_max.max(fds(self.pid));
            self.alive &= node.alive();
            bar.set_position(t0.elapsed().as_secs());
        }
    }
}

fn p99(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    xs[((xs.len() - 1) as f64 * 0.99).round() as usize]
}

fn print(r: &Report) {
    println!(
        "soak: {:.0} s on a real node process ({:.0} s honest load alone, {:.0} s under {} attacks)",
        r.seconds,
        r.baseline_s,
        r.attack_s,
        r.attacks.len()
    );
    println!(
        "  honest finalized  {:>8.1} tx/s alone, {:>8.1} under attack: ratio {:.2} (bar 0.5); offered {:.0}",
        r.honest_baseline_tps, r.honest_attack_tps, r.honest_ratio, r.honest_offered_tps
    );
    println!(
        "  honest p99        {:>8.0} ms alone, {:>8.0} ms under attack; {} unfinalized, refused {:?}",
        r.honest_baseline_p99_ms, r.honest_attack_p99_ms, r.honest_unfinalized, r.honest_refused
    );
    println!(
        "  node RSS          {} kB at start, {} kB after warm-up, {} kB at end ({:+.1} %, bar ±10 %), max {} kB",
        r.rss_start_kb,
        r.rss_warm_kb,
        r.rss_end_kb,
        r.rss_growth_after_warmup * 100.0,
        r.rss_max_kb
    );
    println!(
        "  descriptors       {} at start, max {}, {} at end; mempool max {}, {} at end; height {}",
        r.fds_start, r.fds_max, r.fds_end, r.mempool_max, r.mempool_end, r.height_end
    );
    for a in &r.attacks {
        println!(
            "  {:<26} from {:<11} {:>8} attempts  {:?}",
            a.name, a.from, a.attempts, a.outcomes
        );
    }
    println!("  {}", if r.pass { "PASS" } else { "FAIL" });
}
