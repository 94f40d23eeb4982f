//! `deai init`: a new data directory with a node key, a dev genesis with a funded account, a config.

use std::{net::SocketAddr, path::PathBuf};

use deai_node::config::{Bootstrapper, NodeConfig};

/// A role a node can hold besides (or instead of) validating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Holds datasets and trains on them when a coordinator invites it.
    Owner,
    /// Runs the rounds of tasks assigned to it.
    Coordinator,
    /// Serves paid inference for its key's offers.
    Provider,
}

/// Arguments of `deai init`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  deai init                                   a dev validator in .deai (one funded dev account)
  deai init --dir coord --role coordinator --upstream http://127.0.0.1:7650
  deai init --dir alice --role owner --upstream http://127.0.0.1:7650 --coordinator http://127.0.0.1:7660")]
pub struct Args {
    /// The data directory to create (refused if it exists and is not empty).
    #[arg(long, env = "DEAI_DIR", default_value = ".deai")]
    pub dir: PathBuf,
    /// Where the node's HTTP API will listen (default 127.0.0.1:7650 for a validator; for a
    /// role node a free port, printed at start and kept in DIR/http.addr).
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// Make a role node instead of a validator (repeat for several roles): it reads the ledger
    /// and submits through --upstream, checking every answer against the network's genesis.
    #[arg(long = "role", value_enum, requires = "upstream")]
    pub roles: Vec<Role>,
    /// With --role: a validator's HTTP API. Without --genesis, the genesis is fetched from it
    /// (trusted on first use; give --genesis for a network you do not run).
    #[arg(long, value_name = "URL", requires = "roles")]
    pub upstream: Option<String>,
    /// With --role owner: a coordinator to announce the datasets to (repeat for several).
    #[arg(long = "coordinator", value_name = "URL", requires = "roles")]
    pub coordinators: Vec<String>,
    /// Where the node listens for other validators.
    #[arg(long, default_value = "127.0.0.1:7651")]
    pub p2p: SocketAddr,
    /// Join an existing network: its genesis file (shared by every validator) instead of a new
    /// dev genesis. For a validator it needs `--node-key`; a key the genesis does not list follows
    /// the chain until an account stakes for it and declares it (`deai validator declare`).
    #[arg(long)]
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

fn read_genesis(path: &std::path::Path) -> anyhow::Result<deai_ledger::Genesis> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    deai_ledger::Genesis::from_json(&text)
        .map_err(|e| anyhow::anyhow!("{} is not a valid genesis: {e}", path.display()))
}

/// `deai init --role ...`: a role node's directory.
fn run_role(args: &Args) -> anyhow::Result<()> {
    let upstream = args
        .upstream
        .clone()
        .ok_or_else(|| anyhow::anyhow!("--role needs --upstream URL, a validator's HTTP API"))?;
    if args.node_key.is_some() || !args.bootstrappers.is_empty() {
        anyhow::bail!(
            "--node-key and --bootstrap make a validator; a role node (--role) takes neither"
        );
    }
    let has = |r: Role| args.roles.contains(&r);
    if !args.coordinators.is_empty() && !has(Role::Owner) {
        anyhow::bail!("--coordinator is where an owner announces its datasets: add --role owner");
    }
    let genesis = match &args.genesis {
        Some(path) => read_genesis(path)?,
        None => {
            let client = deai_node::client::Client::new(upstream.clone());
            let genesis: deai_ledger::Genesis = super::common::block_on(async move {
                client.get("/v1/genesis").await
            })?
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot fetch the genesis from {upstream}: {e}; is the validator running? (or give --genesis FILE)"
                )
            })?;
            genesis
        }
    };
    let config = NodeConfig {
        http_listen: args
            .http
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
        p2p_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        roles: deai_node::config::RolesConfig {
            validator: false,
            upstream: Some(upstream),
            coordinator: has(Role::Coordinator),
            announce_to: args.coordinators.clone(),
            provider: has(Role::Provider).then(Default::default),
            ..Default::default()
        },
        ..NodeConfig::default()
    };
    let mut report = deai_node::init::init_role(&args.dir, &genesis, &config)?;
    if has(Role::Owner) && !report.roles.iter().any(|r| r == "owner") {
        report.roles.insert(0, "owner".into());
    }
    crate::output::emit(args.json, &report, |r| {
        println!("initialised {} ({} node)", r.dir, r.roles.join(" + "));
        println!("  chain id   {}", r.chain_id);
        println!("  account    {} (key in {}/node.key)", r.address, r.dir);
        println!("  upstream   {}", r.upstream);
        println!(
            "fund it:     deai tx transfer --to {} --amount 1000 --key DEV_KEY --node {}",
            r.address, r.upstream
        );
        if has(Role::Owner) {
            println!(
                "add data:    deai dataset import --csv FILE --label-column COLUMN --dir {} --register --purpose ... --epsilon-max ... --expiry-height ... --node {}",
                r.dir, r.upstream
            );
        }
        println!("start it:    deai node --dir {}", r.dir);
    })
}

/// Runs `deai init`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if !args.roles.is_empty() {
        return run_role(&args);
    }
    if args.genesis.is_some() && args.node_key.is_none() {
        anyhow::bail!(
            "--genesis for a validator needs --node-key FILE (or add --role for a role node)"
        );
    }
    let config = NodeConfig {
        http_listen: args
            .http
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7650))),
        p2p_listen: args.p2p,
        bootstrappers: args.bootstrappers,
        ..NodeConfig::default()
    };
    let report = match (&args.genesis, &args.node_key) {
        (Some(genesis), Some(key)) => {
            deai_node::testnet::join(&args.dir, &read_genesis(genesis)?, key, config)?
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
