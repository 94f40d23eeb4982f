//! A node's data directory and its `config.toml`.
//!
//! Layout made by `deai init`:
//! ```text
//! <dir>/config.toml    listen addresses, peers, limits (this file)
//! <dir>/genesis.json   the chain's genesis (chain id, balances, validators, parameters)
//! <dir>/node.key       the node's ed25519 identity: validator and p2p key
//! <dir>/dev.key        a funded development account (dev genesis only)
//! <dir>/chain/         consensus and ledger storage
//! <dir>/blobs/         the content-addressed blob store (models, masked updates)
//! ```

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// Name of the config file inside a data directory.
pub const CONFIG_FILE: &str = "config.toml";
/// Name of the genesis file inside a data directory.
pub const GENESIS_FILE: &str = "genesis.json";
/// Name of the node key file inside a data directory.
pub const NODE_KEY_FILE: &str = "node.key";
/// Name of the development account's key file inside a data directory.
pub const DEV_KEY_FILE: &str = "dev.key";
/// Name of the storage directory inside a data directory.
pub const CHAIN_DIR: &str = "chain";
/// Name of the blob store's directory inside a data directory.
pub const BLOBS_DIR: &str = "blobs";
/// Default largest blob a node stores: 64 MiB.
pub const BLOB_MAX_BYTES_DEFAULT: u64 = 64 << 20;

/// A peer validator to dial at start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Bootstrapper {
    /// Its ed25519 public key, hex.
    pub public_key: String,
    /// Its p2p address.
    pub address: SocketAddr,
}

/// The contents of `config.toml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Where the HTTP API listens (keep it on loopback unless a proxy fronts it).
    pub http_listen: SocketAddr,
    /// Where validators reach this node.
    pub p2p_listen: SocketAddr,
    /// Validators to dial at start (empty for a single validator).
    #[serde(default)]
    pub bootstrappers: Vec<Bootstrapper>,
    /// Most transactions the mempool holds.
    pub mempool_txs_max: usize,
    /// Most transactions the mempool holds for one sender.
    #[serde(default = "mempool_sender_txs_max_default")]
    pub mempool_sender_txs_max: usize,
    /// Blocks after which a pooled transaction that cannot run (a lower nonce of its sender is
    /// missing) leaves the mempool.
    #[serde(default = "mempool_expiry_blocks_default")]
    pub mempool_expiry_blocks: u64,
    /// Largest blob the blob store accepts, in bytes.
    #[serde(default = "blob_max_bytes_default")]
    pub blob_max_bytes: u64,
    /// What this node does besides serving its API: validate, coordinate, hold datasets.
    #[serde(default)]
    pub roles: RolesConfig,
    /// Limits of the HTTP server against clients that misbehave (`[http]`).
    #[serde(default)]
    pub http: HttpConfig,
    /// Who may write to this node (signed requests, blob uploads) and what it reads from peers.
    #[serde(default)]
    pub access: AccessConfig,
    /// How often a validator snapshots its state (`[snapshots]`).
    #[serde(default)]
    pub snapshots: SnapshotConfig,
}

/// The `[snapshots]` section: a validator writes its state to disk after this many blocks or
/// transactions since the last snapshot, whichever comes first, so that a restart replays at
/// most that much of the journal (`docs/chain.md`, "History, snapshots and restart"). Smaller
/// means faster restarts and more disk writes; 0 is refused.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotConfig {
    /// Blocks between snapshots.
    pub every_blocks: u64,
    /// Transactions between snapshots.
    pub every_txs: u64,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        let d = deai_chain::SnapshotPolicy::default();
        Self {
            every_blocks: d.every_blocks,
            every_txs: d.every_txs,
        }
    }
}

impl SnapshotConfig {
    /// The chain's policy, or why these values cannot be one.
    pub fn policy(&self) -> anyhow::Result<deai_chain::SnapshotPolicy> {
        anyhow::ensure!(
            self.every_blocks > 0 && self.every_txs > 0,
            "[snapshots] every_blocks and every_txs must be positive (got {} and {}); the \
             defaults are {} and {}",
            self.every_blocks,
            self.every_txs,
            Self::default().every_blocks,
            Self::default().every_txs
        );
        Ok(deai_chain::SnapshotPolicy {
            every_blocks: self.every_blocks,
            every_txs: self.every_txs,
        })
    }
}

/// The `[http]` section: what one client, or many, may cost the HTTP server. Every field has a
/// default (`docs/chain.md`, "HTTP server limits", says why each is what it is).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Most connections served at once; one more is answered `503 too_many_connections` and
    /// closed. 0: a quarter of the process's open-file limit (raised to its hard limit at start),
    /// between 32 and 8192, so storage and p2p keep descriptors to spare.
    pub connections_max: usize,
    /// Most connections one client address (an IPv6 /64) may hold at once, so that one host
    /// cannot take every slot. 0: a quarter of `connections_max`, at least 8.
    pub connections_per_ip_max: usize,
    /// Most transactions one `POST /v1/txs/batch` may carry.
    pub batch_txs_max: usize,
    /// Milliseconds a client has to send a request's head, counted from the connection's start
    /// or the end of the previous answer (so it is also the keep-alive idle timeout).
    pub header_read_timeout_ms: u64,
    /// Milliseconds a connection may stay with no byte moving either way while no handler runs
    /// (a client that stops reading an answer).
    pub idle_timeout_ms: u64,
    /// Milliseconds a handler may take, reading its body included (blob uploads excepted: the
    /// body rate floor bounds them).
    pub request_timeout_ms: u64,
    /// Largest request head (request line and headers) in bytes; at least 8192.
    pub head_bytes_max: usize,
    /// Longest request target (path and query) in bytes.
    pub uri_bytes_max: usize,
    /// Slowest a request body may arrive, in bytes per second, averaged over each window.
    pub body_rate_min_bytes_per_s: u64,
    /// The window of that average in milliseconds; the first window is the grace a client has.
    pub body_rate_window_ms: u64,
    /// After answering, milliseconds the node keeps reading (and discarding) what a client still
    /// sends before closing, so a client that writes before it reads sees the answer.
    pub linger_ms: u64,
    /// The most bytes read that way per connection.
    pub linger_bytes_max: u64,
    /// Writes (POST, PUT, PATCH, DELETE) one client IP may make per second, on average. A batch
    /// of transactions counts one write per transaction.
    pub writes_per_ip_per_s: u32,
    /// Writes one client IP may make at once above that rate.
    pub writes_per_ip_burst: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connections_max: 0,
            connections_per_ip_max: 0,
            batch_txs_max: 256,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 30_000,
            request_timeout_ms: 30_000,
            head_bytes_max: 64 << 10,
            uri_bytes_max: 8 << 10,
            body_rate_min_bytes_per_s: 16 << 10,
            body_rate_window_ms: 5_000,
            linger_ms: 5_000,
            linger_bytes_max: 64 << 20,
            writes_per_ip_per_s: 1_000,
            writes_per_ip_burst: 2_000,
        }
    }
}

/// The `[access]` section: signed writes and bounded fetches (see docs/api.md, "Who may write").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// Most senders the signed-request replay guard remembers at once. Only keys a route
    /// authorized take a slot.
    pub replay_senders_max: usize,
    /// Keys (64 hex) that may upload blobs besides the node's own and funded ledger accounts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub upload_keys: Vec<String>,
    /// Least balance plus stake, in base units, a ledger account needs to upload blobs.
    pub upload_balance_min: u64,
    /// Most bytes one key may upload per `upload_key_period_secs`.
    pub upload_key_bytes_max: u64,
    /// The period of `upload_key_bytes_max`, seconds.
    pub upload_key_period_secs: u64,
    /// Most bytes the blob store holds in all; uploads that would pass it are refused (507).
    pub blob_store_bytes_max: u64,
    /// Least free space on the blob store's filesystem an upload must leave (507 below it).
    pub disk_free_bytes_min: u64,
    /// Most bytes read of one answer from a peer (a blob, a round message); error answers are
    /// read to at most 64 KiB and quoted to at most 300 characters.
    pub peer_answer_bytes_max: u64,
}

/// Default of `replay_senders_max`.
pub const REPLAY_SENDERS_MAX_DEFAULT: usize = crate::auth::SENDERS_MAX;

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            replay_senders_max: REPLAY_SENDERS_MAX_DEFAULT,
            upload_keys: Vec::new(),
            upload_balance_min: 1,
            upload_key_bytes_max: 4 << 30,
            upload_key_period_secs: 24 * 3600,
            blob_store_bytes_max: 64 << 30,
            disk_free_bytes_min: 1 << 30,
            peer_answer_bytes_max: BLOB_MAX_BYTES_DEFAULT,
        }
    }
}

/// A local dataset a data-owner node holds (never uploaded).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DatasetFile {
    /// The id `DatasetRegister` gave it on the ledger.
    pub id: u64,
    /// The file (the `fed::data` format), relative to the data directory or absolute.
    pub file: PathBuf,
    /// The commitment's salt (hex). Absent: read from `<file>.salt` if that exists, else the
    /// commitment is the file's plain BLAKE3 (datasets registered before salting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<deai_ledger::Digest>,
    /// The key file of the owner identity that registered it, relative to the data directory
    /// or absolute. Absent: the node's own key. Datasets naming the same key are one owner; a
    /// node serves each such owner under `/owners/<address>` with its own signatures, sessions
    /// and rewards (one process hosting many owners). Read at start only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
}

/// The `[roles]` section: one binary, roles by configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RolesConfig {
    /// Run the chain (consensus, storage, the full API). A node that is not a validator reads
    /// the ledger and submits through `upstream`.
    #[serde(default = "yes")]
    pub validator: bool,
    /// On a validator: re-check every pending round challenge it may vote on and vote
    /// ([`crate::challenge_voter`]). Off: its operator votes by hand (`deai verify challenge
    /// --vote`).
    #[serde(default = "yes")]
    pub vote_challenges: bool,
    /// A validator's HTTP API (required when `validator = false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Run the rounds of tasks whose creators assign them to this node.
    #[serde(default)]
    pub coordinator: bool,
    /// Datasets this node holds as a data owner.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<DatasetFile>,
    /// Coordinators to announce the datasets to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub announce_to: Vec<String>,
    /// Milliseconds a peer may take to answer one round message before it counts as dropped.
    #[serde(default = "peer_timeout_ms")]
    pub peer_timeout_ms: u64,
    /// On a validator that also holds roles: where the roles' API listens (their peers' signed
    /// routes and blob store, apart from the validator's). Default: a free loopback port, printed
    /// when the node starts. A node that is not a validator serves its roles on `http_listen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<std::net::SocketAddr>,
    /// Serve paid inference for the offers whose provider is this node's key
    /// (`[roles.provider]`; absent: not a provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderConfig>,
    /// A deliberately dishonest coordinator, for challenge tests and demos only: in each listed
    /// round (of every task it drives) it records and publishes one false claim
    /// (`coordinator_lies = [{ round = 2, claim = "group-sum" }]`; claims `group-sum`, `model`,
    /// `score`, see `deai_fed::lies`). Owners train on from what it published; a challenge of
    /// that claim is upheld and slashes the round's bond.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coordinator_lies: Vec<CoordinatorLie>,
}

/// One lie of a deliberately dishonest coordinator (`[roles] coordinator_lies`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorLie {
    /// The round it lies in.
    pub round: u32,
    /// What it lies about.
    pub claim: deai_fed::lies::Lie,
}

/// The `[roles.provider]` section: how a provider answers paid queries and claims its pay.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderConfig {
    /// Claim a channel's highest voucher once the chain is this many blocks from the channel's
    /// expiry, and refuse new queries on it from then on (a claim must land before expiry).
    pub claim_margin_blocks: u64,
    /// Also claim once a channel owes at least this much unclaimed (base units; 0: only near
    /// expiry).
    pub claim_min: u64,
    /// How often the claim loop reads the chain, in milliseconds.
    pub claim_every_ms: u64,
    /// Most queries one request may carry.
    pub batch_max: u32,
    /// How often the channel log is brought up to date and synced to disk, in milliseconds. A
    /// new voucher is written before its answer leaves; a killed process forgets at most this
    /// window of what channels spent (queries an honest payer does not ask again), a power loss
    /// at most this window of vouchers.
    pub sync_ms: u64,
    /// Sign a channel's pending receipts together at least every this many queries (also when
    /// the payer sends a higher voucher or asks; 1 to 65,536).
    pub receipt_interval: u32,
    /// A deliberately dishonest provider, for the demo and dispute tests only: every this-many-th
    /// answer is wrong (0: honest). A wrong answer loses the offer's bond to the first dispute.
    #[serde(skip_serializing_if = "is_zero")]
    pub wrong_answer_every: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            claim_margin_blocks: 20,
            claim_min: 0,
            claim_every_ms: 1_000,
            batch_max: 256,
            sync_ms: 200,
            receipt_interval: 1_024,
            wrong_answer_every: 0,
        }
    }
}

fn yes() -> bool {
    true
}

fn peer_timeout_ms() -> u64 {
    20_000
}

impl Default for RolesConfig {
    fn default() -> Self {
        Self {
            validator: true,
            upstream: None,
            coordinator: false,
            datasets: Vec::new(),
            announce_to: Vec::new(),
            peer_timeout_ms: peer_timeout_ms(),
            listen: None,
            provider: None,
            vote_challenges: true,
            coordinator_lies: Vec::new(),
        }
    }
}

impl RolesConfig {
    /// Whether the node plays a role besides validating.
    pub fn has_roles(&self) -> bool {
        self.coordinator || !self.datasets.is_empty() || self.provider.is_some()
    }
}

fn mempool_sender_txs_max_default() -> usize {
    deai_chain::Config::MEMPOOL_SENDER_TXS_MAX_DEFAULT
}

fn mempool_expiry_blocks_default() -> u64 {
    deai_chain::Config::MEMPOOL_EXPIRY_BLOCKS_DEFAULT
}

fn blob_max_bytes_default() -> u64 {
    BLOB_MAX_BYTES_DEFAULT
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            http_listen: SocketAddr::from(([127, 0, 0, 1], 7650)),
            p2p_listen: SocketAddr::from(([127, 0, 0, 1], 7651)),
            bootstrappers: Vec::new(),
            mempool_txs_max: 100_000,
            mempool_sender_txs_max: mempool_sender_txs_max_default(),
            mempool_expiry_blocks: mempool_expiry_blocks_default(),
            blob_max_bytes: BLOB_MAX_BYTES_DEFAULT,
            roles: RolesConfig::default(),
            http: HttpConfig::default(),
            access: AccessConfig::default(),
            snapshots: SnapshotConfig::default(),
        }
    }
}

/// Why a data directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("{path}: {source}; is this a data directory made by `deai init`?")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file could not be parsed.
    #[error("{path} is malformed: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl NodeConfig {
    /// Loads `<dir>/config.toml`.
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let path = dir.join(CONFIG_FILE);
        let text = fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path,
            reason: e.to_string(),
        })
    }

    /// Writes `<dir>/config.toml` (atomically: a temporary file renamed into place).
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join(format!(".{CONFIG_FILE}.tmp"));
        fs::write(&tmp, self.to_toml())?;
        fs::rename(tmp, dir.join(CONFIG_FILE))
    }

    /// The TOML text of this config, with a header comment.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string_pretty(self).expect("the config always serializes");
        format!("# deai node configuration (made by `deai init`)\n{body}")
    }
}

/// Loads `<dir>/genesis.json`.
pub fn load_genesis(dir: &Path) -> Result<deai_ledger::Genesis, ConfigError> {
    let path = dir.join(GENESIS_FILE);
    let text = fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| ConfigError::Parse {
        path,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_intervals_are_read_and_zero_is_refused() {
        let text = NodeConfig::default().to_toml().replace(
            "[snapshots]\nevery_blocks = 4096",
            "[snapshots]\nevery_blocks = 10",
        );
        let cfg: NodeConfig = toml::from_str(&text).expect("parse");
        let policy = cfg.snapshots.policy().expect("valid");
        assert_eq!((policy.every_blocks, policy.every_txs), (10, 20_000));
        let zero = SnapshotConfig {
            every_blocks: 0,
            every_txs: 5,
        };
        assert!(zero.policy().is_err());
    }

    #[test]
    fn config_round_trips_through_toml() {
        let cfg = NodeConfig::default();
        let back: NodeConfig = toml::from_str(&cfg.to_toml()).expect("parse");
        assert_eq!(back, cfg);
    }

    #[test]
    fn roles_round_trip_and_default_to_a_plain_validator() {
        let mut cfg = NodeConfig::default();
        assert!(cfg.roles.validator && !cfg.roles.has_roles());
        cfg.roles = RolesConfig {
            validator: false,
            upstream: Some("http://127.0.0.1:7650".into()),
            coordinator: true,
            datasets: vec![DatasetFile {
                id: 3,
                file: "data.bin".into(),
                salt: Some(deai_ledger::Digest([5; 32])),
                key: Some("owners/3.key".into()),
            }],
            announce_to: vec!["http://127.0.0.1:7700".into()],
            peer_timeout_ms: 5,
            vote_challenges: false,
            coordinator_lies: vec![CoordinatorLie {
                round: 2,
                claim: deai_fed::lies::Lie::GroupSum,
            }],
            listen: Some("127.0.0.1:7702".parse().expect("addr")),
            provider: Some(ProviderConfig {
                claim_margin_blocks: 7,
                wrong_answer_every: 3,
                ..ProviderConfig::default()
            }),
        };
        let back: NodeConfig = toml::from_str(&cfg.to_toml()).expect("parse");
        assert_eq!(back, cfg);
        let provider: NodeConfig = toml::from_str(&format!(
            "{}[roles.provider]\n",
            NodeConfig::default().to_toml()
        ))
        .expect("an empty [roles.provider] takes the defaults");
        assert_eq!(provider.roles.provider, Some(ProviderConfig::default()));
        assert!(provider.roles.has_roles());
        let old =
            "http_listen = \"127.0.0.1:1\"\np2p_listen = \"127.0.0.1:2\"\nmempool_txs_max = 5\n";
        let parsed: NodeConfig = toml::from_str(old).expect("configs without [roles] still load");
        assert_eq!(parsed.roles, RolesConfig::default());
    }

    #[test]
    fn configs_without_blob_max_bytes_still_load() {
        let old =
            "http_listen = \"127.0.0.1:1\"\np2p_listen = \"127.0.0.1:2\"\nmempool_txs_max = 5\n";
        let cfg: NodeConfig = toml::from_str(old).expect("parse");
        assert_eq!(cfg.blob_max_bytes, BLOB_MAX_BYTES_DEFAULT);
        let set: NodeConfig =
            toml::from_str(&format!("{old}blob_max_bytes = 1024\n")).expect("parse");
        assert_eq!(set.blob_max_bytes, 1024);
    }

    #[test]
    fn configs_without_mempool_limits_load_the_chain_defaults() {
        let old =
            "http_listen = \"127.0.0.1:1\"\np2p_listen = \"127.0.0.1:2\"\nmempool_txs_max = 5\n";
        let cfg: NodeConfig = toml::from_str(old).expect("parse");
        assert_eq!(cfg.mempool_sender_txs_max, 64);
        assert_eq!(cfg.mempool_expiry_blocks, 600);
        let set: NodeConfig = toml::from_str(&format!(
            "{old}mempool_sender_txs_max = 3\nmempool_expiry_blocks = 9\n"
        ))
        .expect("parse");
        assert_eq!(
            (set.mempool_sender_txs_max, set.mempool_expiry_blocks),
            (3, 9)
        );
    }

    #[test]
    fn the_http_section_is_optional_and_partial() {
        let old =
            "http_listen = \"127.0.0.1:1\"\np2p_listen = \"127.0.0.1:2\"\nmempool_txs_max = 5\n";
        let cfg: NodeConfig = toml::from_str(old).expect("parse");
        assert_eq!(cfg.http, HttpConfig::default());
        let set: NodeConfig =
            toml::from_str(&format!("{old}[http]\nconnections_max = 7\n")).expect("parse");
        assert_eq!(set.http.connections_max, 7);
        assert_eq!(set.http.linger_ms, HttpConfig::default().linger_ms);
        let typo = format!("{old}[http]\nconnection_max = 7\n");
        assert!(toml::from_str::<NodeConfig>(&typo).is_err());
    }

    #[test]
    fn access_round_trips_and_old_configs_get_safe_defaults() {
        let old =
            "http_listen = \"127.0.0.1:1\"\np2p_listen = \"127.0.0.1:2\"\nmempool_txs_max = 5\n";
        let cfg: NodeConfig = toml::from_str(old).expect("parse");
        assert_eq!(cfg.access, AccessConfig::default());
        let mut cfg = NodeConfig::default();
        cfg.access.upload_keys = vec!["ab".repeat(32)];
        cfg.access.disk_free_bytes_min = 7;
        let back: NodeConfig = toml::from_str(&cfg.to_toml()).expect("parse");
        assert_eq!(back, cfg);
        let partial: NodeConfig =
            toml::from_str(&format!("{old}[access]\nblob_store_bytes_max = 9\n")).expect("parse");
        assert_eq!(partial.access.blob_store_bytes_max, 9);
        assert_eq!(partial.access.upload_balance_min, 1);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let text = NodeConfig::default().to_toml() + "\nhttp_listne = \"127.0.0.1:1\"\n";
        assert!(toml::from_str::<NodeConfig>(&text).is_err());
    }
}
