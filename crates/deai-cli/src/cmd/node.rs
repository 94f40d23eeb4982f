//! `deai node`: run a validator with its HTTP API until interrupted.

use std::{net::SocketAddr, path::PathBuf};

use deai_node::run::Overrides;

/// Arguments of `deai node`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  deai node --dir .deai
  deai node --dir v --http 127.0.0.1:0 --json")]
pub struct Args {
    /// The data directory made by `deai init`.
    #[arg(long, env = "DEAI_DIR", default_value = ".deai")]
    pub dir: PathBuf,
    /// Listen for HTTP here instead of the configured address (port 0: any free port, written to
    /// `<dir>/http.addr`).
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// Listen for validators here instead of the configured address.
    #[arg(long)]
    pub p2p: Option<SocketAddr>,
    /// Print one JSON line when the node is up, instead of a human line.
    #[arg(long)]
    pub json: bool,
}

/// Runs `deai node`.
pub fn run(args: Args) -> anyhow::Result<()> {
    init_tracing();
    let json = args.json;
    let overrides = Overrides {
        http_listen: args.http,
        p2p_listen: args.p2p,
    };
    deai_node::run::run(&args.dir, overrides, move |started| {
        if json {
            println!("{}", serde_json::to_string(started).unwrap_or_default());
        } else {
            println!(
                "deai node up: chain {} at height {} (root {}), API on http://{}",
                started.chain_id, started.height, started.state_root, started.http
            );
            if let Some(roles) = &started.roles_http {
                println!("  its roles (data owner, coordinator) answer on {roles}");
            }
        }
    })
}

pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DEAI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
