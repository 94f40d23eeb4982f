//! Starting a role node: an HTTP listener serving its blob store and the routes of its roles,
//! reading the ledger through a validator's API. `deai node` uses it for nodes whose config
//! names roles; the demo and tests start several in one process, each on its own port.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use axum::{Json, Router, extract::State, routing::get};
use ed25519_dalek::SigningKey;
use serde::Serialize;
use tokio::{net::TcpListener, task::JoinHandle};

use super::{
    RoleContext,
    coordinator::{CoordinatorRole, Join},
    owner::{LocalDataset, OwnerRole},
    peer::Peer,
    provider::ProviderRole,
    sessions::SessionLog,
};
use crate::{blobs::BlobStore, client::Client};

/// What a role node is.
pub struct RoleNodeConfig {
    /// Its key (ledger account and message signer).
    pub key: SigningKey,
    /// A validator's HTTP API.
    pub upstream: String,
    /// Where to listen (port 0: any free port).
    pub listen: SocketAddr,
    /// Its blob store directory.
    pub blobs_dir: PathBuf,
    /// Where its durable role state lives (the owner's session log).
    pub state_dir: PathBuf,
    /// Largest blob accepted.
    pub blob_max_bytes: u64,
    /// Datasets held under the node's own key (empty: not a data owner under it).
    pub datasets: Vec<LocalDataset>,
    /// Other owners this node hosts, each with its own key and datasets, served under
    /// [`identity_path`] (one process can run a federation of many owners).
    pub identities: Vec<OwnerIdentity>,
    /// Whether it coordinates tasks.
    pub coordinator: bool,
    /// Coordinators an owner announces its datasets to.
    pub announce_to: Vec<String>,
    /// How long a peer may take to answer one message before it counts as dropped.
    pub peer_timeout: Duration,
    /// Who may write to it and what it reads from peers (`[access]`).
    pub access: crate::config::AccessConfig,
    /// The genesis of the chain it serves: when given, every ledger read is checked as a light
    /// client against the finalization certificates of its validators, and an upstream serving
    /// another chain is refused at start. `None` trusts the upstream's answers (a node whose
    /// upstream is itself).
    pub genesis: Option<deai_ledger::Genesis>,
    /// Serve paid inference for this key's offers (`[roles.provider]`).
    pub provider: Option<crate::config::ProviderConfig>,
}

impl RoleNodeConfig {
    /// A node that is only a provider: `key`'s offers served on a free loopback port, its blobs
    /// in `dir/blobs` and its channel log in `dir`, reading the chain through `upstream`.
    pub fn provider(
        key: SigningKey,
        upstream: &str,
        dir: &std::path::Path,
        cfg: crate::config::ProviderConfig,
    ) -> Self {
        Self {
            key,
            upstream: upstream.to_string(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            blobs_dir: dir.join("blobs"),
            state_dir: dir.to_path_buf(),
            blob_max_bytes: 1 << 24,
            datasets: vec![],
            identities: vec![],
            coordinator: false,
            announce_to: vec![],
            peer_timeout: Duration::from_secs(10),
            access: Default::default(),
            genesis: None,
            provider: Some(cfg),
        }
    }
}

/// An owner identity a node hosts beside its own: a key (its ledger account, the signer of its
/// messages) and the datasets it registered.
pub struct OwnerIdentity {
    /// The owner's key.
    pub key: SigningKey,
    /// Its datasets.
    pub datasets: Vec<LocalDataset>,
}

/// Where a node serves the hosted owner `address`: its peers' base URL is the node's URL
/// followed by this path.
pub fn identity_path(address: &deai_ledger::Address) -> String {
    format!("/owners/{address}")
}

/// A running role node.
pub struct RoleNode {
    /// Its base URL.
    pub url: String,
    /// The owner role under the node's own key, if any.
    pub owner: Option<OwnerRole>,
    /// The hosted owners ([`RoleNodeConfig::identities`]), each with its base URL.
    pub identities: Vec<(OwnerRole, String)>,
    /// The coordinator role, if any.
    pub coordinator: Option<CoordinatorRole>,
    /// The provider role, if any.
    pub provider: Option<ProviderRole>,
    /// Its blob store.
    pub blobs: BlobStore,
    /// Its context (key, chain, validator).
    pub ctx: RoleContext,
    server: JoinHandle<()>,
    sweeper: JoinHandle<()>,
    announcer: Option<JoinHandle<()>>,
    claims: Option<JoinHandle<()>>,
}

impl RoleNode {
    /// Stops serving (the process stays up): from now on its peers find nothing here.
    pub fn stop(&self) {
        self.server.abort();
        self.sweeper.abort();
        if let Some(c) = &self.claims {
            c.abort();
        }
        if let Some(a) = &self.announcer {
            a.abort();
        }
        // What channels spent since the last flush, so a clean stop forgets nothing.
        if let Some(p) = &self.provider {
            p.flush_journal();
        }
    }
}

impl Drop for RoleNode {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Info {
    key: String,
    roles: Vec<&'static str>,
    upstream: String,
    ledger: Client,
    owner: Option<OwnerRole>,
    identities: Vec<OwnerRole>,
    coordinator: Option<CoordinatorRole>,
    /// The upstream's last status answer and when it came: a stranger polling `/v1/status`
    /// makes this node ask its validator at most once a second.
    upstream_status: tokio::sync::Mutex<Option<(std::time::Instant, UpstreamStatus)>>,
}

impl Info {
    /// The datasets held now (they grow while an owner runs).
    fn datasets(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .owner
            .iter()
            .chain(&self.identities)
            .flat_map(OwnerRole::dataset_ids)
            .collect();
        ids.sort_unstable();
        ids
    }
}

/// The upstream's chain and height, or why they could not be read.
type UpstreamStatus = (Option<String>, Option<u64>, Option<String>);

/// How long an upstream status answer is reused.
const UPSTREAM_STATUS_TTL: Duration = Duration::from_secs(1);

#[derive(Serialize)]
struct InfoView {
    key: String,
    roles: Vec<&'static str>,
    upstream: String,
    datasets: Vec<u64>,
}

async fn info(State(i): State<Arc<Info>>) -> Json<InfoView> {
    Json(InfoView {
        key: i.key.clone(),
        roles: i.roles.clone(),
        upstream: i.upstream.clone(),
        datasets: i.datasets(),
    })
}

/// One round an owner agreed to take part in.
#[derive(Serialize)]
struct Session {
    task: u64,
    round: u32,
    dataset: u64,
}

/// `GET /v1/status` of a role node: what it is and what it is doing.
#[derive(Serialize)]
struct RoleStatus {
    key: String,
    roles: Vec<&'static str>,
    upstream: String,
    /// The upstream's chain and height, or why it could not be read.
    chain_id: Option<String>,
    height: Option<u64>,
    upstream_error: Option<String>,
    /// Datasets held (owner).
    datasets: Vec<u64>,
    /// Rounds joined, oldest first (owner).
    #[serde(skip_serializing_if = "Option::is_none")]
    sessions: Option<Vec<Session>>,
    /// Owners joined and tasks driven (coordinator).
    #[serde(skip_serializing_if = "Option::is_none")]
    coordinator: Option<super::coordinator::CoordinatorStatus>,
}

async fn status(State(i): State<Arc<Info>>) -> Json<RoleStatus> {
    let (chain_id, height, upstream_error) = {
        // Held across the request: concurrent pollers wait for one answer instead of each asking.
        let mut cached = i.upstream_status.lock().await;
        match &*cached {
            Some((at, s)) if at.elapsed() < UPSTREAM_STATUS_TTL => s.clone(),
            _ => {
                let s = match i.ledger.status().await {
                    Ok(s) => (Some(s.chain_id), Some(s.height), None),
                    Err(e) => (None, None, Some(e.to_string())),
                };
                *cached = Some((std::time::Instant::now(), s.clone()));
                s
            }
        }
    };
    Json(RoleStatus {
        key: i.key.clone(),
        roles: i.roles.clone(),
        upstream: i.upstream.clone(),
        chain_id,
        height,
        upstream_error,
        datasets: i.datasets(),
        sessions: i.owner.as_ref().map(|o| {
            o.sessions()
                .into_iter()
                .map(|(task, round, dataset)| Session {
                    task,
                    round,
                    dataset,
                })
                .collect()
        }),
        coordinator: i.coordinator.as_ref().map(CoordinatorRole::status),
    })
}

/// Starts a role node under the default `[http]` limits; see [`start_with_limits`].
pub async fn start(cfg: RoleNodeConfig) -> anyhow::Result<RoleNode> {
    start_with_limits(cfg, crate::config::HttpConfig::default()).await
}

/// Starts a role node serving under `http`'s limits and, for an owner, keeps announcing its
/// datasets to the coordinators.
pub async fn start_with_limits(
    cfg: RoleNodeConfig,
    http: crate::config::HttpConfig,
) -> anyhow::Result<RoleNode> {
    let ledger = Client::new(cfg.upstream.clone());
    let ctx = RoleContext::connect(cfg.key.clone(), ledger)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the validator at {}: {e}", cfg.upstream))?
        .with_access(&cfg.access);
    let ctx = match &cfg.genesis {
        Some(genesis) => ctx.verifying(genesis).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot check the validator at {} against the genesis of chain {}: {e}",
                cfg.upstream,
                genesis.chain_id
            )
        })?,
        None => ctx,
    };
    let blobs = BlobStore::open(&cfg.blobs_dir, cfg.blob_max_bytes)?;
    blobs.set_upload_policy(crate::blob_access::role_policy(&cfg.access, &ctx)?);
    let sweeper = crate::blobs::spawn_sweeper(
        blobs.clone(),
        crate::blobs::SWEEP_EVERY,
        crate::blobs::UNFINISHED_MAX_AGE,
    );
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}; is the port taken?", cfg.listen))?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}");
    let mut roles = Vec::new();
    let mut app = crate::api::blob_routes(blobs.clone(), None);
    // An owner with a coordinator to announce to is an owner before it holds anything: datasets
    // added to its config later are picked up while it runs. A node hosting other owners is not
    // one itself unless it holds datasets under its own key.
    let owner =
        if cfg.datasets.is_empty() && (cfg.announce_to.is_empty() || !cfg.identities.is_empty()) {
            None
        } else {
            let sessions = SessionLog::open(&cfg.state_dir)?;
            Some(OwnerRole::new(ctx.clone(), cfg.datasets, sessions))
        };
    if let Some(o) = &owner {
        app = app.merge(o.clone().router());
    }
    let mut identities = Vec::new();
    for id in cfg.identities {
        let ictx = ctx.as_identity(id.key);
        let path = identity_path(&ictx.address());
        let sessions = SessionLog::open(
            &cfg.state_dir
                .join("owners")
                .join(ictx.address().to_string()),
        )?;
        let role = OwnerRole::new(ictx, id.datasets, sessions);
        app = app.nest(&path, role.clone().router());
        identities.push((role, format!("{url}{path}")));
    }
    if owner.is_some() || !identities.is_empty() {
        roles.push("owner");
    }
    let coordinator = cfg.coordinator.then(|| {
        let c = CoordinatorRole::new(ctx.clone(), blobs.clone(), cfg.peer_timeout);
        c.set_public_url(url.clone());
        c
    });
    if let Some(c) = &coordinator {
        roles.push("coordinator");
        app = app.merge(c.clone().router());
    }
    let provider = match cfg.provider {
        Some(p) => Some(ProviderRole::open(ctx.clone(), p, blobs.clone(), &cfg.state_dir).await?),
        None => None,
    };
    if let Some(p) = &provider {
        roles.push("provider");
        app = app.merge(p.clone().router());
    }
    let claims = provider.as_ref().map(ProviderRole::spawn_claims);
    let info_state = Arc::new(Info {
        key: ctx.address().to_string(),
        roles,
        upstream: cfg.upstream.clone(),
        ledger: Client::new(cfg.upstream.clone()),
        owner: owner.clone(),
        identities: identities.iter().map(|(o, _)| o.clone()).collect(),
        coordinator: coordinator.clone(),
        upstream_status: tokio::sync::Mutex::new(None),
    });
    let info = Router::new()
        .route("/v1/node", get(info))
        .route("/v1/status", get(status))
        .with_state(info_state);
    let timeout = Duration::from_millis(http.request_timeout_ms);
    let app = app
        .merge(crate::http::request_timeout(info, timeout))
        .fallback(crate::api::not_found)
        .layer(axum::middleware::map_response(crate::api::json_errors));
    // A role node has no metrics registry: its server's counters stay detached.
    let metrics = crate::http::HttpMetrics::detached();
    let server =
        tokio::spawn(async move { crate::http::serve(listener, app, &http, metrics).await });
    let announced: Vec<Announced> = owner
        .iter()
        .map(|o| (o.clone(), url.clone()))
        .chain(identities.iter().cloned())
        .map(|(o, base)| {
            let peer = o.peer(cfg.peer_timeout);
            (peer, o, base)
        })
        .collect();
    let announcer = (!cfg.announce_to.is_empty() && !announced.is_empty())
        .then(|| tokio::spawn(announce_loop(announced, cfg.announce_to)));
    Ok(RoleNode {
        url,
        owner,
        identities,
        coordinator,
        provider,
        blobs,
        ctx,
        server,
        sweeper,
        announcer,
        claims,
    })
}

/// An owner to announce: who signs, the role, and its base URL.
type Announced = (Peer, OwnerRole, String);

/// Announces each owner's datasets to every coordinator until each accepted, then again now and
/// then (a restarted coordinator hears of them), and at once when datasets are added. One loop
/// for all the owners a node hosts, one owner after another.
async fn announce_loop(owners: Vec<Announced>, coordinators: Vec<String>) {
    loop {
        let mut all = true;
        for (peer, owner, url) in &owners {
            let datasets = owner.dataset_ids();
            if datasets.is_empty() {
                continue;
            }
            let Ok(body) = serde_json::to_vec(&Join {
                datasets,
                url: url.clone(),
            }) else {
                return;
            };
            for c in &coordinators {
                if let Err(e) = peer.post(c, "/v1/fed/join", body.clone(), None).await {
                    tracing::debug!(coordinator = %c, error = %e, "announce failed; retrying");
                    all = false;
                }
            }
        }
        let wait = if all { 10_000 } else { 300 };
        let added = owners.iter().map(|(_, o, _)| Box::pin(o.datasets_added()));
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(wait)) => {}
            _ = futures::future::select_all(added) => {}
        }
    }
}

/// Announces once to one coordinator (what the demo and tests call to be sure before round 1).
pub async fn announce(node: &RoleNode, coordinator: &str) -> anyhow::Result<()> {
    let owners = node
        .owner
        .iter()
        .map(|o| (o, node.url.as_str()))
        .chain(node.identities.iter().map(|(o, u)| (o, u.as_str())));
    for (owner, url) in owners {
        let body = serde_json::to_vec(&Join {
            datasets: owner.dataset_ids(),
            url: url.to_string(),
        })?;
        let peer = owner.peer(Duration::from_secs(10));
        peer.post(coordinator, "/v1/fed/join", body, None).await?;
    }
    Ok(())
}

/// The hosted owners of `files` (each naming a `key`): their keys read from the key files
/// (relative to `dir`), their datasets loaded as [`load_datasets`] does, datasets naming the
/// same key under one owner.
pub fn load_identities(
    dir: &Path,
    files: &[crate::config::DatasetFile],
) -> anyhow::Result<Vec<OwnerIdentity>> {
    let mut by_key: std::collections::BTreeMap<PathBuf, Vec<crate::config::DatasetFile>> =
        std::collections::BTreeMap::new();
    for f in files {
        let Some(key) = &f.key else { continue };
        by_key.entry(key.clone()).or_default().push(f.clone());
    }
    by_key
        .into_iter()
        .map(|(key, files)| {
            let path = if key.is_absolute() {
                key
            } else {
                dir.join(key)
            };
            let key = crate::keyfile::read(&path).map_err(|e| {
                anyhow::anyhow!(
                    "the owner key {} of dataset {}: {e}",
                    path.display(),
                    files[0].id
                )
            })?;
            Ok(OwnerIdentity {
                key,
                datasets: load_datasets(dir, &files)?,
            })
        })
        .collect()
}

/// Suffix of the file beside a dataset file that holds its commitment salt (hex).
pub const SALT_SUFFIX: &str = ".salt";

/// The salt file of the dataset file at `data`.
pub fn salt_path(data: &Path) -> PathBuf {
    let mut name = data.as_os_str().to_owned();
    name.push(SALT_SUFFIX);
    PathBuf::from(name)
}

/// The commitment salt kept beside the dataset file at `data`, if there is one.
pub fn read_salt_file(data: &Path) -> anyhow::Result<Option<deai_ledger::Digest>> {
    let path = salt_path(data);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|e| {
            anyhow::anyhow!(
                "salt file {} is not 64 hex digits: {e}; restore it from a backup (without it the data no longer matches its ledger commitment)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("salt file {}: {e}", path.display())),
    }
}

/// Reads the datasets a config names (paths relative to the data directory), each checked on
/// decoding, and computes each one's commitment: salted with the config's `salt` or the salt
/// file beside the data, else the file's plain BLAKE3. Commitments are checked against the
/// ledger when a round invites them.
pub fn load_datasets(
    dir: &Path,
    files: &[crate::config::DatasetFile],
) -> anyhow::Result<Vec<LocalDataset>> {
    files
        .iter()
        .map(|f| {
            let path = if f.file.is_absolute() {
                f.file.clone()
            } else {
                dir.join(&f.file)
            };
            let bytes = std::fs::read(&path)
                .map_err(|e| anyhow::anyhow!("dataset {} file {}: {e}", f.id, path.display()))?;
            let data = crate::fed::data::decode(&bytes, &crate::fed::data::DataLimits::default())
                .map_err(|e| {
                anyhow::anyhow!(
                    "dataset {} file {} is not a dataset: {e}",
                    f.id,
                    path.display()
                )
            })?;
            let content = deai_ledger::Digest::hash(&bytes);
            let salt = match f.salt {
                Some(salt) => Some(salt),
                None => read_salt_file(&path)?,
            };
            let commitment = match salt {
                Some(salt) => deai_ledger::dataset_commitment(&salt, &content),
                None => content,
            };
            Ok(LocalDataset {
                id: f.id,
                data: Arc::new(data),
                commitment,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatasetFile;

    /// Datasets naming the same key file are one hosted owner, with that key; a dataset without a
    /// key is the node's own and not hosted; a missing key file is named.
    #[test]
    fn hosted_owners_are_grouped_by_key_file() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path();
        let split = crate::fed::data::digits_split(3).expect("digits");
        for (i, d) in split.owners.iter().enumerate() {
            std::fs::write(dir.join(format!("d{i}.bin")), crate::fed::data::encode(d))
                .expect("data");
        }
        std::fs::create_dir_all(dir.join("owners")).expect("mkdir");
        let a = crate::keyfile::create(&dir.join("owners/a.key")).expect("key a");
        let file = |id: u64, i: usize, key: Option<&str>| DatasetFile {
            id,
            file: format!("d{i}.bin").into(),
            salt: None,
            key: key.map(Into::into),
        };
        let files = [
            file(1, 0, Some("owners/a.key")),
            file(2, 1, None),
            file(3, 2, Some("owners/a.key")),
        ];
        let hosted = load_identities(dir, &files).expect("loads");
        assert_eq!(hosted.len(), 1);
        assert_eq!(hosted[0].key.to_bytes(), a.to_bytes());
        let ids: Vec<u64> = hosted[0].datasets.iter().map(|d| d.id).collect();
        assert_eq!(ids, [1, 3]);
        let missing = [file(4, 0, Some("owners/b.key"))];
        let err = load_identities(dir, &missing)
            .map(|_| ())
            .expect_err("no key file");
        assert!(err.to_string().contains("owners/b.key"), "{err}");
    }
}
