//! `deai up`: a local network that stays up, for trying things by hand (what Foundry's `anvil`
//! is to Ethereum). A validator (or several, as processes), a coordinator that drives the tasks
//! assigned to it, and owner nodes each holding a slice of the digits set registered with consent,
//! plus funded accounts whose key files are printed; a task file ready for `deai task create`.
//! It prints what it started, then a status line as the chain moves, until Ctrl-C or SIGTERM.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use deai_ledger::{ConsentPolicy, EPSILON_SCALE, Genesis, TOKEN};
use deai_node::{
    client::Client,
    config::NodeConfig,
    fed::{self, import, schema},
    keyfile,
    roles::{
        RoleContext,
        owner::LocalDataset,
        serve::{self, RoleNode, RoleNodeConfig},
        setup,
    },
};
use ed25519_dalek::SigningKey;
use serde::Serialize;

use crate::local_network::LocalNetwork;

/// The purpose the owners consent to and the ready task file names.
const PURPOSE: &str = "digit-recognition";

/// Arguments of `deai up`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  deai up --dir net --port 7700
  deai task create --spec net/task.toml --key net/coordinator/node.key --node http://127.0.0.1:7700
(the exact commands are printed once the network is up)")]
pub struct Args {
    /// Where to keep the nodes' data (must be absent or empty); default: a temporary directory,
    /// removed when it stops.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Validators: 1 runs in this process, more as `deai node` processes on loopback.
    #[arg(long, default_value_t = 1)]
    pub validators: usize,
    /// Data-owner nodes, each holding a slice of the digits set registered with consent for
    /// `digit-recognition` (0: none; import your own with `deai dataset import`).
    #[arg(long, default_value_t = 4)]
    pub owners: usize,
    /// Extra funded accounts (key files in DIR/accounts).
    #[arg(long, default_value_t = 2)]
    pub accounts: usize,
    /// Fixed ports from P: the validator's API on P (with one validator), the coordinator on
    /// P+1, owner i on P+2+i; default: free ports, printed.
    #[arg(long, value_name = "P")]
    pub port: Option<u16>,
    /// Print one JSON line describing the network (then stay up) instead of the human screen.
    #[arg(long)]
    pub json: bool,
}

/// A funded account.
#[derive(Debug, Serialize)]
pub struct Account {
    /// Its address.
    pub address: String,
    /// Its key file.
    pub key: String,
    /// Its balance at genesis, base units.
    pub balance: String,
    /// The same in tokens, an exact decimal.
    pub balance_decimal: String,
}

/// One owner node.
#[derive(Debug, Serialize)]
pub struct Owner {
    /// Its API.
    pub url: String,
    /// Its account.
    pub address: String,
    /// Its key file.
    pub key: String,
    /// The dataset it holds.
    pub dataset: u64,
    /// Samples in it.
    pub samples: usize,
}

/// What `deai up` started.
#[derive(Debug, Serialize)]
pub struct Network {
    /// The data directory.
    pub dir: String,
    /// The chain.
    pub chain_id: String,
    /// Each validator's API.
    pub validators: Vec<String>,
    /// The coordinator's API.
    pub coordinator: String,
    /// Its key file (also a funded account: it creates tasks it coordinates).
    pub coordinator_key: String,
    /// The owners.
    pub owners: Vec<Owner>,
    /// Extra funded accounts.
    pub accounts: Vec<Account>,
    /// A task file over the owners' datasets, ready for `deai task create`.
    pub task_file: String,
}

const ACCOUNT_TOKENS: u128 = 1_000_000;

fn key_at(path: &Path) -> anyhow::Result<SigningKey> {
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    Ok(keyfile::create(path)?)
}

/// Runs `deai up`.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=deai_node::testnet::VALIDATORS_MAX).contains(&args.validators),
        "--validators must be between 1 and {}",
        deai_node::testnet::VALIDATORS_MAX
    );
    anyhow::ensure!(
        args.owners == 0 || args.owners >= 3,
        "--owners {}: a secure-aggregation group needs 3 or more owners (or 0 for none)",
        args.owners
    );
    if let Some(p) = args.port {
        anyhow::ensure!(
            p != 0 && u32::from(p) + 1 + args.owners as u32 <= u32::from(u16::MAX),
            "--port {p}: the coordinator and {} owners need the ports up to {}; choose a lower port",
            args.owners,
            u32::from(p) + 1 + args.owners as u32
        );
    }
    let tmp = tempfile::tempdir()?;
    let root = match &args.dir {
        Some(d) => {
            if d.exists() && std::fs::read_dir(d)?.next().is_some() {
                anyhow::bail!(
                    "{} exists and is not empty; `deai up` starts a fresh network: choose a new --dir",
                    d.display()
                );
            }
            d.clone()
        }
        None => tmp.path().to_path_buf(),
    };
    let existed = root.exists();
    let ran = run_in(&args, &root);
    if ran.is_err() {
        // A network that did not start leaves nothing behind: the folder is as it was (absent or
        // empty), so the same command can be run again once the cause is fixed.
        clear(&root, existed);
    }
    ran
}

/// Removes what a failed start wrote under `root`, and `root` itself unless it `existed`.
fn clear(root: &Path, existed: bool) {
    if !existed {
        let _ = std::fs::remove_dir_all(root);
        return;
    }
    for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let _ = std::fs::remove_dir_all(e.path()).or_else(|_| std::fs::remove_file(e.path()));
    }
}

/// Starts the network in the empty folder `root` and serves until stopped.
fn run_in(args: &Args, root: &Path) -> anyhow::Result<()> {
    // Every key first: the genesis funds them.
    let coordinator_key_file = root.join("coordinator").join("node.key");
    let coordinator_key = key_at(&coordinator_key_file)?;
    let owner_keys = (0..args.owners)
        .map(|i| {
            let f = root.join(format!("owner-{i}")).join("node.key");
            key_at(&f).map(|k| (f, k))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let account_keys = (0..args.accounts)
        .map(|i| {
            let f = root.join("accounts").join(format!("account-{i}.key"));
            key_at(&f).map(|k| (f, k))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let funded: Vec<_> = std::iter::once(&coordinator_key)
        .chain(owner_keys.iter().map(|(_, k)| k))
        .chain(account_keys.iter().map(|(_, k)| k))
        .map(|k| (keyfile::address(k), ACCOUNT_TOKENS * TOKEN))
        .collect();
    let plan = Plan {
        root: root.to_path_buf(),
        coordinator: (coordinator_key_file, coordinator_key),
        owners: owner_keys,
        accounts: account_keys,
        json: args.json,
        port: args.port,
    };
    if args.validators == 1 {
        let dir = root.join("validator");
        deai_node::init::init_with(&dir, NodeConfig::default(), |g| {
            g.balances.extend(funded.iter().cloned())
        })?;
        let api = SocketAddr::from(([127, 0, 0, 1], args.port.unwrap_or(0)));
        deai_node::run::with_embedded_on(&dir, api, |node| async move {
            plan.serve(vec![format!("http://{}", node.http_addr)]).await
        })
    } else {
        let mut net = LocalNetwork::start(
            &root.join("network"),
            args.validators,
            |g| g.balances.extend(funded.iter().cloned()),
            |_| {},
        )?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let served = rt.block_on(async {
            net.await_connected(Duration::from_secs(60)).await?;
            plan.serve(net.urls.clone()).await
        });
        net.stop();
        served
    }
}

/// What to start once the validators serve.
struct Plan {
    root: PathBuf,
    coordinator: (PathBuf, SigningKey),
    owners: Vec<(PathBuf, SigningKey)>,
    accounts: Vec<(PathBuf, SigningKey)>,
    json: bool,
    /// The first fixed port, if any.
    port: Option<u16>,
}

impl Plan {
    /// The role node at `offset` above `--port` listens there; on a free port without one.
    fn listen(&self, offset: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port.map_or(0, |p| p + offset)))
    }
}

fn role_config(
    listen: SocketAddr,
    dir: &Path,
    key: SigningKey,
    upstream: &str,
    genesis: &Genesis,
    datasets: Vec<LocalDataset>,
    coordinator: Option<&str>,
) -> RoleNodeConfig {
    RoleNodeConfig {
        key,
        upstream: upstream.to_string(),
        listen,
        blobs_dir: dir.join("blobs"),
        state_dir: dir.to_path_buf(),
        blob_max_bytes: 64 << 20,
        coordinator: coordinator.is_none(),
        announce_to: coordinator.map(|c| vec![c.to_string()]).unwrap_or_default(),
        datasets,
        peer_timeout: Duration::from_secs(20),
        access: Default::default(),
        genesis: Some(genesis.clone()),
        provider: None,
        identities: vec![],
    }
}

impl Plan {
    /// Starts the coordinator and the owners against `validators`, prints the network, and
    /// serves until Ctrl-C.
    async fn serve(self, validators: Vec<String>) -> anyhow::Result<()> {
        let entry = |i: usize| validators[i % validators.len()].clone();
        let bar = crate::progress::bar(self.json, 1 + self.owners.len() as u64, "starting nodes");
        let ledger = Client::new(entry(0));
        let genesis: Genesis = ledger.get("/v1/genesis").await?;
        let cdir = self.root.join("coordinator");
        let coordinator = serve::start(role_config(
            self.listen(1),
            &cdir,
            self.coordinator.1.clone(),
            &entry(0),
            &genesis,
            vec![],
            None,
        ))
        .await?;
        if let Some(c) = coordinator.coordinator.clone() {
            tokio::spawn(c.drive(ledger.clone()));
        }
        bar.inc(1);
        let digits = schema::find("digits-8x8")?;
        let split = (!self.owners.is_empty())
            .then(|| fed::data::digits_split(self.owners.len()))
            .transpose()?;
        let mut owners = Vec::new();
        let mut nodes: Vec<RoleNode> = Vec::new();
        for (i, (key_file, key)) in self.owners.iter().enumerate() {
            let data = match &split {
                Some(s) => s.owners[i].clone(),
                None => break,
            };
            let ctx = RoleContext::connect(key.clone(), Client::new(entry(i))).await?;
            let salt = setup::fresh_salt();
            let policy = ConsentPolicy {
                purposes: vec![PURPOSE.into()],
                creators: None,
                reward_min: 0,
                epsilon_max: 1_000 * EPSILON_SCALE,
                expiry_height: 100_000_000,
                epsilon_round_max: 0,
                noise_multiplier_min: 0,
                royalty_bps_min: 0,
            };
            let id = setup::register_dataset(&ctx, &data, &salt, digits.name, policy).await?;
            let dir = self.root.join(format!("owner-{i}"));
            let node = serve::start(role_config(
                self.listen(2 + i as u16),
                &dir,
                key.clone(),
                &entry(i),
                &genesis,
                vec![LocalDataset {
                    id,
                    data: Arc::new(data.clone()),
                    commitment: setup::salted_commitment(&salt, &data),
                }],
                Some(&coordinator.url),
            ))
            .await?;
            serve::announce(&node, &coordinator.url).await?;
            owners.push(Owner {
                url: node.url.clone(),
                address: node.ctx.address().to_string(),
                key: key_file.display().to_string(),
                dataset: id,
                samples: data.len(),
            });
            nodes.push(node);
            bar.inc(1);
        }
        bar.finish_and_clear();
        let task_file = self.root.join("task.toml");
        if let Some(s) = &split {
            std::fs::write(
                self.root.join("validation.csv"),
                import::to_csv(&s.validation, digits),
            )?;
        }
        let per_round = owners.len().clamp(3, 8);
        std::fs::write(
            &task_file,
            format!(
                "# A task over the owners `deai up` started (docs/data.md describes every field).\n\
                 purpose = \"{PURPOSE}\"\nreward = \"100\"\ncoordinator = \"{}\"\n\n\
                 [training]\nrounds = 5\ndatasets_per_round = {per_round}\n\n\
                 [privacy]\nnoise_multiplier = 0.5\n\n\
                 [secure_aggregation]\ngroup_size_min = {}\n\n\
                 [validation]\ncsv = \"validation.csv\"\nlabel_column = \"label\"\n",
                coordinator.url,
                per_round.min(4)
            ),
        )?;
        let net = Network {
            dir: self.root.display().to_string(),
            chain_id: genesis.chain_id.clone(),
            validators: validators.clone(),
            coordinator: coordinator.url.clone(),
            coordinator_key: self.coordinator.0.display().to_string(),
            owners,
            accounts: self
                .accounts
                .iter()
                .map(|(f, k)| Account {
                    address: keyfile::address(k).to_string(),
                    key: f.display().to_string(),
                    balance: (ACCOUNT_TOKENS * TOKEN).to_string(),
                    balance_decimal: ACCOUNT_TOKENS.to_string(),
                })
                .collect(),
            task_file: task_file.display().to_string(),
        };
        if self.json {
            // One line, so a script can read it and go on while the network runs.
            crate::output::write_stdout(format_args!("{}\n", serde_json::to_string(&net)?));
        } else {
            print(&net);
        }
        watch(&ledger, self.json).await;
        drop(nodes);
        drop(coordinator);
        Ok(())
    }
}

fn print(n: &Network) {
    let out = |s: String| crate::output::write_stdout(format_args!("{s}\n"));
    out(format!("deai up: chain {} in {}", n.chain_id, n.dir));
    for (i, v) in n.validators.iter().enumerate() {
        out(format!("  validator {i}   {v}"));
    }
    out(format!(
        "  coordinator   {}  (key {})",
        n.coordinator, n.coordinator_key
    ));
    for (i, o) in n.owners.iter().enumerate() {
        out(format!(
            "  owner {i}       {}  dataset {} ({} samples)",
            o.url, o.dataset, o.samples
        ));
    }
    out(format!("accounts ({ACCOUNT_TOKENS} tokens each):"));
    for a in &n.accounts {
        out(format!("  {}  key {}", a.address, a.key));
    }
    out("try:".into());
    out(format!("  export DEAI_NODE={}", n.validators[0]));
    out(format!(
        "  deai task create --spec {} --key {}",
        n.task_file, n.coordinator_key
    ));
    out(format!(
        "  deai task watch 1 --coordinator {}",
        n.coordinator
    ));
    out("Ctrl-C stops everything.".into());
}

/// Resolves on Ctrl-C or SIGTERM (what `kill` sends), so both stop the network cleanly.
async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
        return;
    }
    let _ = ctrl_c.await;
}

/// Prints a status line whenever the chain's tasks change (not with `--json`), until Ctrl-C or
/// SIGTERM.
async fn watch(ledger: &Client, json: bool) {
    let stop = stop_signal();
    tokio::pin!(stop);
    let mut last = String::new();
    loop {
        tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if json {
            continue;
        }
        let Ok(tasks) = ledger.get::<Vec<deai_ledger::Task>>("/v1/tasks").await else {
            continue;
        };
        let line = tasks
            .iter()
            .map(|t| {
                let done = t.round_log.iter().filter(|r| r.outcome.is_some()).count();
                format!(
                    "task {} {} {done}/{} rounds",
                    t.id,
                    t.status.name(),
                    t.rounds
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        if !line.is_empty() && line != last {
            let height = ledger.status().await.map(|s| s.height).unwrap_or(0);
            crate::output::write_stdout(format_args!("height {height}: {line}\n"));
            last = line;
        }
    }
}
