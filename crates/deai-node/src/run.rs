//! Running a node: the chain on the Commonware tokio runtime and the HTTP API beside it.

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use commonware_runtime::{Runner as _, Spawner as _, Supervisor as _};
use serde::Serialize;
use tokio::net::TcpListener;

use crate::{
    api::{self, AppState},
    blobs::{self, BlobStore},
    config::{self, BLOBS_DIR, CHAIN_DIR, NODE_KEY_FILE, NodeConfig},
    keyfile,
};

/// Name of the file, inside the data directory, where a running node writes its HTTP address.
///
/// Scripts and tests that start `deai node` with port 0 read the port the OS chose from here.
pub const HTTP_ADDR_FILE: &str = "http.addr";

/// Overrides of `config.toml` given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Listen for HTTP here instead (port 0: any free port).
    pub http_listen: Option<SocketAddr>,
    /// Listen for validators here instead.
    pub p2p_listen: Option<SocketAddr>,
}

/// A node that is up: its chain handle and where its API listens.
#[derive(Clone)]
pub struct RunningNode {
    /// The chain.
    pub chain: deai_chain::Handle,
    /// The HTTP API's bound address.
    pub http_addr: SocketAddr,
}

/// What a started node reports.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Started {
    /// The HTTP API's address.
    pub http: String,
    /// The chain id.
    pub chain_id: String,
    /// The finalized height it resumed from.
    pub height: u64,
    /// The state root at that height.
    pub state_root: String,
    /// On a validator that also holds roles: the roles' API (a role node's is `http`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles_http: Option<String>,
}

/// The chain configuration a data directory describes.
pub fn chain_config(
    dir: &Path,
    cfg: &NodeConfig,
    overrides: &Overrides,
) -> anyhow::Result<deai_chain::Config> {
    let genesis = config::load_genesis(dir)?;
    let key = keyfile::read(&dir.join(NODE_KEY_FILE))?;
    let participants = genesis
        .validators
        .iter()
        .map(|(addr, _)| address_to_public_key(addr))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let bootstrappers = cfg
        .bootstrappers
        .iter()
        .map(|b| {
            let mut raw = [0u8; 32];
            hex::decode_to_slice(&b.public_key, &mut raw).map_err(|e| {
                anyhow::anyhow!(
                    "bootstrapper key {:?} is not 64 hex characters: {e}",
                    b.public_key
                )
            })?;
            Ok((
                address_to_public_key(&deai_ledger::Address(raw))?,
                b.address,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut chain = deai_chain::Config::single(genesis, keyfile::to_commonware(&key));
    chain.participants = participants;
    chain.p2p_listen = overrides.p2p_listen.unwrap_or(cfg.p2p_listen);
    chain.bootstrappers = bootstrappers;
    chain.mempool_txs_max = cfg.mempool_txs_max;
    chain.mempool_sender_txs_max = cfg.mempool_sender_txs_max;
    chain.mempool_expiry_blocks = cfg.mempool_expiry_blocks;
    chain.snapshots = cfg.snapshots.policy()?;
    Ok(chain)
}

fn address_to_public_key(
    addr: &deai_ledger::Address,
) -> anyhow::Result<commonware_cryptography::ed25519::PublicKey> {
    use commonware_codec::DecodeExt as _;
    commonware_cryptography::ed25519::PublicKey::decode(addr.0.to_vec())
        .map_err(|e| anyhow::anyhow!("{addr} is not a valid ed25519 public key: {e}"))
}

/// Refuses to start on a p2p address something else holds: the network binds it inside a task
/// that can only panic, after the node has said it is up.
fn check_p2p_port(p2p: SocketAddr) -> anyhow::Result<()> {
    if p2p.port() == 0 {
        return Ok(());
    }
    std::net::TcpListener::bind(p2p).map(drop).map_err(|e| {
        anyhow::anyhow!(
            "cannot listen for p2p on {p2p}: {e}; is another node running there? (change \
             p2p_listen in config.toml or pass --p2p)"
        )
    })
}

/// Starts the chain and the HTTP API inside an existing Commonware tokio context.
pub async fn start(
    context: commonware_runtime::tokio::Context,
    dir: &Path,
    overrides: &Overrides,
) -> anyhow::Result<RunningNode> {
    let cfg = NodeConfig::load(dir)?;
    let chain_cfg = chain_config(dir, &cfg, overrides)?;
    check_p2p_port(chain_cfg.p2p_listen)?;
    let genesis = Arc::new(chain_cfg.genesis.clone());
    let blobs = BlobStore::open(&dir.join(BLOBS_DIR), cfg.blob_max_bytes)?;
    blobs::spawn_sweeper(blobs.clone(), blobs::SWEEP_EVERY, blobs::UNFINISHED_MAX_AGE);
    // The API encodes the runtime's registry: the chain's and consensus's metrics with its own.
    let metrics = Arc::new(api::Metrics::register(&context, &blobs));
    let mut chain_cfg = chain_cfg;
    chain_cfg.blob_store = Some(crate::blob_exchange::shared(blobs.clone()));
    let chain = deai_chain::start(context, chain_cfg).await?;
    blobs.set_upload_policy(crate::blob_access::validator_policy(
        &cfg.access,
        dir,
        &chain,
    )?);
    let http = overrides.http_listen.unwrap_or(cfg.http_listen);
    let listener = TcpListener::bind(http).await.map_err(|e| {
        anyhow::anyhow!("cannot listen for HTTP on {http}: {e}; is another node running there?")
    })?;
    let http_addr = listener.local_addr()?;
    let http_metrics = metrics.http();
    let app = api::router(
        AppState {
            chain: chain.clone(),
            metrics,
            genesis,
            blobs,
            batch_txs_max: cfg.http.batch_txs_max,
            self_url: {
                // A node listening on every address is reached on loopback by itself.
                let mut own = http_addr;
                if own.ip().is_unspecified() {
                    own.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                format!("http://{own}")
            },
            verified: Default::default(),
        },
        &cfg.http,
    );
    let limits = cfg.http.clone();
    tokio::spawn(async move { crate::http::serve(listener, app, &limits, http_metrics).await });
    fs::write(dir.join(HTTP_ADDR_FILE), http_addr.to_string())?;
    if cfg.roles.vote_challenges {
        let key = keyfile::read(&dir.join(NODE_KEY_FILE))?;
        let api = crate::client::Client::new(format!("http://{http_addr}"));
        tokio::spawn(crate::challenge_voter::run(chain.clone(), key, api));
    }
    Ok(RunningNode { chain, http_addr })
}

/// Runs a node until SIGINT or SIGTERM. `on_start` is told once the API answers.
///
/// A validator (`[roles] validator = true`, the default) runs the chain and the full API, and any
/// roles it holds (data owner, coordinator) beside them, on their own API (`[roles] listen`) with
/// its own API as their upstream; a node that is not a validator runs its roles against its
/// `upstream` validator.
pub fn run(
    dir: &Path,
    overrides: Overrides,
    on_start: impl FnOnce(&Started) + Send + 'static,
) -> anyhow::Result<()> {
    let cfg = NodeConfig::load(dir)?;
    if !cfg.roles.validator {
        return run_roles(dir, &cfg, &overrides, on_start);
    }
    let dir = dir.to_path_buf();
    runner(&dir).start(|context| async move {
        let stopper = context.child("shutdown");
        let node = start(context, &dir, &overrides).await?;
        let roles = if cfg.roles.has_roles() {
            let upstream = format!("http://{}", node.http_addr);
            let listen = cfg
                .roles
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
            // The roles keep their blobs apart from the validator's store: one process opens a
            // store's directory once.
            let blobs_dir = dir.join(ROLE_BLOBS_DIR);
            // Its upstream is this process: there is no one else to check.
            Some(start_roles(&dir, &cfg, upstream, listen, blobs_dir, None).await?)
        } else {
            None
        };
        let status = node.chain.status();
        on_start(&Started {
            http: node.http_addr.to_string(),
            chain_id: status.chain_id.clone(),
            height: status.height,
            state_root: status.state_root.to_string(),
            roles_http: roles.as_ref().map(|r| r.url.clone()),
        });
        shutdown_signal().await;
        let _ = fs::remove_file(dir.join(HTTP_ADDR_FILE));
        drop(roles);
        stop_actors(stopper).await;
        drop(node);
        Ok(())
    })
}

/// How long the actors get to wind down once asked.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Asks every actor of the runtime (consensus, p2p, resolver, marshal) to stop and waits for them,
/// so they wind down in order instead of being dropped mid-loop (where each reports its closed
/// channels as errors).
async fn stop_actors(context: commonware_runtime::tokio::Context) {
    if let Err(e) = context.stop(0, Some(STOP_GRACE)).await {
        tracing::warn!(error = %e, "actors still running after the stop grace; stopping anyway");
    }
}

/// Where a validator that also holds roles keeps the roles' blobs, inside its data directory.
pub const ROLE_BLOBS_DIR: &str = "role-blobs";

/// Starts the roles `cfg` names (data owner, coordinator, provider) against the validator at `upstream`,
/// their API on `listen` and their blobs in `blobs_dir`; a coordinator starts driving its tasks.
async fn start_roles(
    dir: &Path,
    cfg: &NodeConfig,
    upstream: String,
    listen: SocketAddr,
    blobs_dir: PathBuf,
    genesis: Option<deai_ledger::Genesis>,
) -> anyhow::Result<crate::roles::serve::RoleNode> {
    let key = keyfile::read(&dir.join(NODE_KEY_FILE))?;
    let (own, hosted): (Vec<_>, Vec<_>) = cfg
        .roles
        .datasets
        .iter()
        .cloned()
        .partition(|d| d.key.is_none());
    let datasets = crate::roles::serve::load_datasets(dir, &own)?;
    let identities = crate::roles::serve::load_identities(dir, &hosted)?;
    let role_cfg = crate::roles::serve::RoleNodeConfig {
        key,
        upstream: upstream.clone(),
        listen,
        blobs_dir,
        state_dir: dir.to_path_buf(),
        blob_max_bytes: cfg.blob_max_bytes,
        datasets,
        identities,
        coordinator: cfg.roles.coordinator,
        announce_to: cfg.roles.announce_to.clone(),
        peer_timeout: std::time::Duration::from_millis(cfg.roles.peer_timeout_ms),
        access: cfg.access.clone(),
        genesis,
        provider: cfg.roles.provider.clone(),
    };
    let node = crate::roles::serve::start_with_limits(role_cfg, cfg.http.clone()).await?;
    if let Some(c) = node.coordinator.clone() {
        c.set_lies(
            cfg.roles
                .coordinator_lies
                .iter()
                .map(|l| (l.round, l.claim))
                .collect(),
        );
        tokio::spawn(c.drive(crate::client::Client::new(upstream)));
    }
    if let Some(owner) = node.owner.clone() {
        let hosted = node
            .identities
            .iter()
            .flat_map(|(o, _)| o.dataset_ids())
            .collect();
        tokio::spawn(watch_config_datasets(dir.to_path_buf(), owner, hosted));
    }
    Ok(node)
}

/// How often an owner node looks at its config for datasets added while it runs.
const CONFIG_POLL: Duration = Duration::from_secs(2);

/// Picks up datasets added to `dir`'s config while the node runs (what `deai dataset import
/// --dir` writes): each new `[[roles.datasets]]` entry is read and checked as at start, then held,
/// and the coordinators hear of it at once. An entry that cannot be read is logged and tried again
/// when the config next changes; an entry removed from the config stays held until a restart, and
/// so does an entry naming another owner's key (a hosted owner's routes are set at start).
async fn watch_config_datasets(
    dir: PathBuf,
    owner: crate::roles::owner::OwnerRole,
    hosted: std::collections::BTreeSet<u64>,
) {
    let path = dir.join(config::CONFIG_FILE);
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen = modified(&path);
    loop {
        tokio::time::sleep(CONFIG_POLL).await;
        let now = modified(&path);
        if now == seen {
            continue;
        }
        seen = now;
        let cfg = match NodeConfig::load(&dir) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "the config changed but does not load; keeping the datasets held");
                continue;
            }
        };
        let held = owner.dataset_ids();
        let new = cfg
            .roles
            .datasets
            .iter()
            .filter(|d| !held.contains(&d.id) && !hosted.contains(&d.id));
        for entry in new {
            if entry.key.is_some() {
                tracing::warn!(
                    dataset = entry.id,
                    "a dataset of another owner key is served from the next start"
                );
                continue;
            }
            match crate::roles::serve::load_datasets(&dir, std::slice::from_ref(entry)) {
                Ok(loaded) => {
                    for id in owner.add_datasets(loaded) {
                        tracing::info!(dataset = id, "dataset added to the config: now held");
                    }
                }
                Err(e) => tracing::warn!(
                    dataset = entry.id,
                    error = %e,
                    "a dataset in the config cannot be read; fix it and save the config again"
                ),
            }
        }
    }
}

/// Runs a role node (not a validator) until SIGINT or SIGTERM.
fn run_roles(
    dir: &Path,
    cfg: &NodeConfig,
    overrides: &Overrides,
    on_start: impl FnOnce(&Started) + Send + 'static,
) -> anyhow::Result<()> {
    let upstream = cfg.roles.upstream.clone().ok_or_else(|| {
        anyhow::anyhow!(
            "{}: `[roles] validator = false` needs `upstream`, the HTTP API of a validator",
            dir.join(config::CONFIG_FILE).display()
        )
    })?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listen = overrides.http_listen.unwrap_or(cfg.http_listen);
    let dir = dir.to_path_buf();
    let cfg = cfg.clone();
    rt.block_on(async move {
        // A role node checks what its upstream says against the validators of its own genesis
        // (the network's, copied in by `deai init --genesis`).
        let genesis = config::load_genesis(&dir).map_err(|e| {
            anyhow::anyhow!(
                "{e}; a role node checks what its upstream says against the network's genesis: copy the network's genesis.json into {} (or make the directory with `deai init --genesis FILE`)",
                dir.display()
            )
        })?;
        let node = start_roles(
            &dir,
            &cfg,
            upstream.clone(),
            listen,
            dir.join(BLOBS_DIR),
            Some(genesis),
        )
        .await?;
        let status = crate::client::Client::new(upstream).status().await?;
        let http = node.url.trim_start_matches("http://").to_string();
        fs::write(dir.join(HTTP_ADDR_FILE), &http)?;
        on_start(&Started {
            http,
            chain_id: status.chain_id,
            height: status.height,
            state_root: status.state_root.to_string(),
            roles_http: None,
        });
        shutdown_signal().await;
        let _ = fs::remove_file(dir.join(HTTP_ADDR_FILE));
        drop(node);
        Ok(())
    })
}

/// The Commonware tokio runtime a node of `dir` runs on: two workers, storage inside the data dir.
fn runner(dir: &Path) -> commonware_runtime::tokio::Runner {
    let cfg = commonware_runtime::tokio::Config::new()
        .with_worker_threads(2)
        .with_storage_directory(storage_dir(dir));
    commonware_runtime::tokio::Runner::new(cfg)
}

/// Where the runtime keeps its storage for a data directory.
pub fn storage_dir(dir: &Path) -> PathBuf {
    dir.join(CHAIN_DIR)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Starts a node for `dir` on a runtime of its own with its API on a free loopback port, runs `f`
/// against it, and stops everything when `f` returns. The demo and the benchmarks use this.
pub fn with_embedded<T, F, Fut>(dir: &Path, f: F) -> anyhow::Result<T>
where
    F: FnOnce(RunningNode) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    with_embedded_on(dir, SocketAddr::from(([127, 0, 0, 1], 0)), f)
}

/// [`with_embedded`] with the API on `http_listen` (port 0: a free one); p2p on a free port.
pub fn with_embedded_on<T, F, Fut>(dir: &Path, http_listen: SocketAddr, f: F) -> anyhow::Result<T>
where
    F: FnOnce(RunningNode) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let overrides = Overrides {
        http_listen: Some(http_listen),
        p2p_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
    };
    let dir = dir.to_path_buf();
    runner(&dir).start(|context| async move {
        let stopper = context.child("shutdown");
        let node = start(context, &dir, &overrides).await?;
        let out = f(node).await;
        stop_actors(stopper).await;
        out
    })
}
