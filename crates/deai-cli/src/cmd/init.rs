//! `deai init`: a new data directory with a node key, a dev genesis with a funded account, a config.

use std::{net::SocketAddr, path::PathBuf};

use deai_node::config::NodeConfig;

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
    /// Print one JSON object instead of a human summary.
    #[arg(long)]
    pub json: bool,
}

/// Runs `deai init`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let config = NodeConfig {
        http_listen: args.http,
        p2p_listen: args.p2p,
        ..NodeConfig::default()
    };
    let report = deai_node::init::init(&args.dir, config)?;
    crate::output::emit(args.json, &report, |r| {
        println!("initialised {}", r.dir);
        println!("  chain id      {}", r.chain_id);
        println!("  validator     {}", r.node_address);
        println!(
            "  dev account   {} ({} base units, key in {}/dev.key)",
            r.dev_address, r.dev_balance, r.dir
        );
        println!("  HTTP API      {}", r.http_listen);
        println!("start it with: deai node --dir {}", r.dir);
    })
}
