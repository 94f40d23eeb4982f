//! `deai init`: a new data directory with a node key, a dev genesis with a funded account, a config.

use std::{net::SocketAddr, path::PathBuf};

use deai_node::config::{Bootstrapper, NodeConfig};

/// Arguments of `deai init`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The data directory to create (refused if it exists and is not empty).
    #[arg(long, env = "DEAI_DIR", default_value = ".deai")]
    pub dir: PathBuf,
    /// Where the node's HTTP API will listen.
    #[arg(long, default_value = "127.0.0.1:7650")]
    pub http: SocketAddr,
    /// Where the node listens for other validators.
    #[arg(long, default_value = "127.0.0.1:7651")]
    pub p2p: SocketAddr,
    /// Join an existing network: its genesis file (shared by every validator) instead of a new
    /// dev genesis. Needs `--node-key`; a key the genesis does not list follows the chain until an
    /// account stakes for it and declares it (`deai validator declare`).
    #[arg(long, requires = "node_key")]
    pub genesis: Option<PathBuf>,
    /// With `--genesis`: this node's key file (made by `deai key new`).
    #[arg(long, requires = "genesis")]
    pub node_key: Option<PathBuf>,
    /// With `--genesis`: a validator to dial at start, as `PUBLIC_KEY_HEX@HOST:PORT` (repeat for
    /// each; every genesis validator must be listed).
    #[arg(long = "bootstrap", requires = "genesis", value_parser = parse_bootstrapper)]
    pub bootstrappers: Vec<Bootstrapper>,
    /// Print one JSON object instead of a human summary.
    #[arg(long)]
    pub json: bool,
}

fn parse_bootstrapper(s: &str) -> Result<Bootstrapper, String> {
    let (key, addr) = s
        .split_once('@')
        .ok_or_else(|| format!("{s:?} is not PUBLIC_KEY_HEX@HOST:PORT"))?;
    let mut raw = [0u8; 32];
    hex::decode_to_slice(key, &mut raw)
        .map_err(|e| format!("{key:?} is not a 64-hex-character public key: {e}"))?;
    let address = addr
        .parse()
        .map_err(|e| format!("{addr:?} is not HOST:PORT: {e}"))?;
    Ok(Bootstrapper {
        public_key: key.to_lowercase(),
        address,
    })
}

/// Runs `deai init`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let config = NodeConfig {
        http_listen: args.http,
        p2p_listen: args.p2p,
        bootstrappers: args.bootstrappers,
        ..NodeConfig::default()
    };
    let report = match (&args.genesis, &args.node_key) {
        (Some(genesis), Some(key)) => {
            let text = std::fs::read_to_string(genesis)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", genesis.display()))?;
            let genesis = deai_ledger::Genesis::from_json(&text).map_err(|e| {
                anyhow::anyhow!("{} is not a valid genesis: {e}", genesis.display())
            })?;
            deai_node::testnet::join(&args.dir, &genesis, key, config)?
        }
        _ => deai_node::init::init(&args.dir, config)?,
    };
    crate::output::emit(args.json, &report, |r| {
        println!("initialised {}", r.dir);
        println!("  chain id      {}", r.chain_id);
        println!("  validator     {}", r.node_address);
        if !r.dev_address.is_empty() {
            println!(
                "  dev account   {} ({} base units, key in {}/dev.key)",
                r.dev_address, r.dev_balance, r.dir
            );
        }
        println!("  HTTP API      {}", r.http_listen);
        println!("start it with: deai node --dir {}", r.dir);
    })
}
