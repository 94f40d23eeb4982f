//! `deai testnet`: a local validator network, each validator its own `deai node` process.
//!
//! `init` writes the network directory (see [`deai_node::testnet`]); `up` starts every node, prints
//! their endpoints once all are serving, and stops them all on Ctrl-C (or when one of them dies,
//! saying which and where its log is).

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use clap::Subcommand;
use deai_node::testnet::{Manifest, Ports};
use serde::Serialize;

use crate::node_process::{Listen, NodeProcess};

/// Arguments of `deai testnet`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: TestnetCommand,
}

/// The subcommands of `deai testnet`.
#[derive(Debug, Subcommand)]
pub enum TestnetCommand {
    /// Write N validators' data directories sharing one genesis (funded dev account each).
    Init(InitArgs),
    /// Start every validator of a network as its own process; Ctrl-C stops them all.
    Up(UpArgs),
}

/// Arguments of `deai testnet init`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  deai testnet init --validators 4 --dir testnet")]
pub struct InitArgs {
    /// How many validators.
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// The network directory to create (refused if it exists and is not empty).
    #[arg(long, default_value = "testnet")]
    pub dir: PathBuf,
    /// First port: node i listens for HTTP on base + 2i and for validators on base + 2i + 1.
    /// 0 picks free ports now.
    #[arg(long, default_value_t = 7700)]
    pub base_port: u16,
    /// Blocks per validator epoch (the set changes by stake at epoch boundaries); at least 4.
    #[arg(long, default_value_t = deai_ledger::EPOCH_BLOCKS_DEFAULT)]
    pub epoch_blocks: u64,
    /// Print one JSON object instead of a human summary.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `deai testnet up`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  deai testnet init --validators 4 --dir testnet && deai testnet up --dir testnet")]
pub struct UpArgs {
    /// The network directory made by `deai testnet init`.
    #[arg(long, default_value = "testnet")]
    pub dir: PathBuf,
    /// Seconds to wait for every node to serve.
    #[arg(long, default_value_t = 60)]
    pub start_timeout: u64,
    /// Print one JSON object when every node serves, instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `deai testnet`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        TestnetCommand::Init(a) => init(a),
        TestnetCommand::Up(a) => up(a),
    }
}

fn init(args: InitArgs) -> anyhow::Result<()> {
    let ports = match args.base_port {
        0 => Ports::Free,
        p => Ports::From(p),
    };
    let epoch_blocks = args.epoch_blocks;
    let manifest = deai_node::testnet::init(&args.dir, args.validators, ports, |g| {
        g.params.epoch_blocks = epoch_blocks;
    })?;
    crate::output::emit(args.json, &manifest, |m| {
        println!(
            "network of {} validators in {} (chain {})",
            m.nodes.len(),
            args.dir.display(),
            m.chain_id
        );
        for n in &m.nodes {
            println!(
                "  {:<7} http://{:<21} p2p {:<21} validator {}",
                n.name,
                n.http,
                n.p2p,
                short(&n.validator.to_string())
            );
        }
        println!(
            "each node's funded dev key: {}/nodeI/dev.key",
            args.dir.display()
        );
        println!(
            "start it with: deai testnet up --dir {}",
            args.dir.display()
        );
    })
}

/// One node of a running network, as `up` reports it.
#[derive(Debug, Serialize)]
struct UpNode {
    name: String,
    http: String,
    pid: u32,
    log: String,
}

/// What `up --json` prints once every node serves.
#[derive(Debug, Serialize)]
struct UpReport {
    chain_id: String,
    height: u64,
    nodes: Vec<UpNode>,
}

fn up(args: UpArgs) -> anyhow::Result<()> {
    let manifest = Manifest::load(&args.dir)?;
    let deadline = Instant::now() + Duration::from_secs(args.start_timeout);
    let mut nodes: Vec<(String, PathBuf, NodeProcess)> = Vec::new();
    for n in &manifest.nodes {
        let dir = Manifest::node_dir(&args.dir, n);
        let log = dir.join("node.log");
        // A network's logs are for reading: `info` unless DEAI_LOG says otherwise.
        let left = deadline.saturating_duration_since(Instant::now());
        let started = NodeProcess::start(&dir, &log, Listen::Configured, Some("info"), left)
            .map_err(|e| {
                anyhow::anyhow!(
                    "{} did not start: {e:#}; the nodes started before it were stopped",
                    n.name
                )
            });
        match started {
            Ok(p) => nodes.push((n.name.clone(), log, p)),
            Err(e) => {
                stop_all(&mut nodes);
                return Err(e);
            }
        }
    }
    let report = UpReport {
        chain_id: manifest.chain_id.clone(),
        height: nodes.first().map_or(0, |(_, _, p)| p.started.height),
        nodes: nodes
            .iter()
            .map(|(name, log, p)| UpNode {
                name: name.clone(),
                http: format!("http://{}", p.http),
                pid: p.pid(),
                log: log.display().to_string(),
            })
            .collect(),
    };
    crate::output::emit(args.json, &report, |r| {
        println!(
            "{} validators up (chain {}); Ctrl-C stops them all",
            r.nodes.len(),
            r.chain_id
        );
        for n in &r.nodes {
            println!(
                "  {:<7} {:<28} pid {:<8} log {}",
                n.name, n.http, n.pid, n.log
            );
        }
    })?;
    let outcome = supervise(&mut nodes);
    stop_all(&mut nodes);
    outcome
}

/// Waits for Ctrl-C or SIGTERM, or for a node to die (an error naming it).
fn supervise(nodes: &mut [(String, PathBuf, NodeProcess)]) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                _ = term.recv() => return Ok(()),
                _ = tick.tick() => {
                    for (name, log, p) in nodes.iter_mut() {
                        if !p.alive() {
                            anyhow::bail!(
                                "{name} exited; see {} (the other nodes were stopped)",
                                log.display()
                            );
                        }
                    }
                }
            }
        }
    })
}

/// SIGTERM to every node at once, then up to 10 s for all of them to exit before killing.
fn stop_all(nodes: &mut [(String, PathBuf, NodeProcess)]) {
    for (_, _, p) in nodes.iter_mut() {
        p.terminate();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for (_, _, p) in nodes.iter_mut() {
        p.wait_or_kill(deadline);
    }
}

fn short(s: &str) -> String {
    if s.len() > 16 {
        format!("{}…", &s[..16])
    } else {
        s.to_string()
    }
}
