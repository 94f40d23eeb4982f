//! Who may upload blobs to a node, and how much ([`UploadPolicy`]).
//!
//! An upload (`PUT /v1/blobs/{hash}`) is a signed request ([`crate::auth`]) for this node; its
//! body hash is the blob's name, so the signature is checked before a byte of the body is read.
//! Rules, checked in this order, each refusal named:
//!
//! 1. signed, fresh, for this node, over `PUT` and the path: else 401 (`unsigned`,
//!    `bad_signature`, `wrong_recipient`, `stale`, ...);
//! 2. the key may upload: it is this node's own key, one of `[access] upload_keys`, or a ledger
//!    account whose balance plus stake is at least `upload_balance_min` (dataset owners, task
//!    creators and coordinators all hold one: they pay fees): else 403 `upload_not_allowed`.
//!    Only then is the request recorded in the replay guard (401 `replayed`);
//! 3. the bytes fit: the key's uploads this period stay within `upload_key_bytes_max` (413
//!    `upload_quota_exceeded`), the store stays within `blob_store_bytes_max` (507
//!    `blob_store_full`) and the filesystem keeps `disk_free_bytes_min` free (507
//!    `disk_space_low`). Bytes are reserved before they are written (the announced length at
//!    once, a chunked body as it arrives), so concurrent uploads cannot together pass a limit.
//!
//! A reservation is given back when an upload fails or stores nothing new; per-key counters
//! live in memory and restart with the node, while the total is measured on disk at start.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::http::StatusCode;
use deai_ledger::Address;
use ed25519_dalek::VerifyingKey;

use crate::{
    api::ApiError, auth::ReplayGuard, blobs::BlobStore, client::Client, config::AccessConfig,
};

/// Bytes reserved at a time for a body of unknown length.
const RESERVE_STEP_BYTES: u64 = 1 << 20;
/// Keys whose period ended are forgotten once the table holds this many.
const KEYS_PRUNE_AT: usize = 10_000;

/// Where the ledger's accounts are read.
#[derive(Clone)]
pub enum Accounts {
    /// A validator's own finalized state.
    Chain(deai_chain::Handle),
    /// A validator's API (a role node reads through its `upstream`).
    Upstream(Client),
}

impl Accounts {
    /// Balance plus stake of `address`, base units.
    async fn funds(&self, address: &Address) -> Result<u128, String> {
        match self {
            Self::Chain(chain) => Ok(chain.read_state(|s| {
                let a = s.account(address);
                a.balance.saturating_add(a.staked)
            })),
            Self::Upstream(client) => client
                .account(address)
                .await
                .map(|v| v.account.balance.saturating_add(v.account.staked))
                .map_err(|e| e.to_string()),
        }
    }
}

/// Why an upload was refused before or while it was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadRefusal {
    /// The node serves no upload policy (uploads are closed).
    #[error("this node takes no blob uploads")]
    Closed,
    /// The key may not upload here.
    #[error(
        "key {key} may not upload blobs here: it is not this node's key, not in `[access] upload_keys`, and not a ledger account holding at least {min} base units"
    )]
    NotAllowed {
        /// The key, hex.
        key: String,
        /// `upload_balance_min`.
        min: u64,
    },
    /// The ledger could not be read to decide.
    #[error("cannot read the ledger to check the uploader: {0}; retry")]
    LedgerUnavailable(String),
    /// The key's uploads this period would pass its quota.
    #[error(
        "key {key} has uploaded {used} bytes this period; {more} more would pass its quota of {max} bytes per {period_secs} s"
    )]
    KeyQuota {
        /// The key, hex.
        key: String,
        /// Bytes counted so far this period.
        used: u64,
        /// Bytes asked.
        more: u64,
        /// `upload_key_bytes_max`.
        max: u64,
        /// `upload_key_period_secs`.
        period_secs: u64,
    },
    /// The store would pass its total quota.
    #[error(
        "the blob store holds {held} bytes ({in_flight} more being uploaded); {more} more would pass its limit of {max} bytes (`blob_store_bytes_max`)"
    )]
    StoreFull {
        /// Bytes stored.
        held: u64,
        /// Bytes reserved by uploads in progress.
        in_flight: u64,
        /// Bytes asked.
        more: u64,
        /// `blob_store_bytes_max`.
        max: u64,
    },
    /// The filesystem would drop under its free-space floor.
    #[error(
        "the blob store's filesystem has {free} bytes free ({in_flight} reserved by uploads in progress); {more} more would leave less than {floor} (`disk_free_bytes_min`)"
    )]
    DiskLow {
        /// Free bytes now.
        free: u64,
        /// Bytes reserved by uploads in progress.
        in_flight: u64,
        /// Bytes asked.
        more: u64,
        /// `disk_free_bytes_min`.
        floor: u64,
    },
    /// Free space could not be measured.
    #[error("cannot measure free space of {path}: {reason}")]
    DiskUnknown {
        /// The directory.
        path: String,
        /// The cause.
        reason: String,
    },
}

impl UploadRefusal {
    /// The stable code (also the `reason` label of `deai_blob_uploads_refused_total`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Closed => "uploads_closed",
            Self::NotAllowed { .. } => "upload_not_allowed",
            Self::LedgerUnavailable(_) => "ledger_unavailable",
            Self::KeyQuota { .. } => "upload_quota_exceeded",
            Self::StoreFull { .. } => "blob_store_full",
            Self::DiskLow { .. } | Self::DiskUnknown { .. } => "disk_space_low",
        }
    }

    /// 403 for who, 413 for a key's quota, 507 for the node's room, 502 when it cannot tell.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Closed | Self::NotAllowed { .. } => StatusCode::FORBIDDEN,
            Self::LedgerUnavailable(_) => StatusCode::BAD_GATEWAY,
            Self::KeyQuota { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::StoreFull { .. } | Self::DiskLow { .. } | Self::DiskUnknown { .. } => {
                StatusCode::INSUFFICIENT_STORAGE
            }
        }
    }
}

impl From<UploadRefusal> for ApiError {
    fn from(e: UploadRefusal) -> Self {
        ApiError {
            status: e.status(),
            code: e.code(),
            message: e.to_string(),
        }
    }
}

/// What a signed request to this node must name: its key and chain (`GET /v1/identity`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Identity {
    /// The node's ed25519 public key, hex: the recipient every signed request names.
    pub key: String,
    /// The chain id every signature is bound to.
    pub chain_id: String,
}

/// Who may upload, and the quotas; attach it to a store with
/// [`BlobStore::set_upload_policy`]. Cheap to clone.
#[derive(Clone)]
pub struct UploadPolicy {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for UploadPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadPolicy")
            .field("chain_id", &self.inner.chain_id)
            .field("cfg", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

struct Inner {
    chain_id: String,
    me: VerifyingKey,
    allowed: BTreeSet<[u8; 32]>,
    accounts: Accounts,
    guard: ReplayGuard,
    cfg: AccessConfig,
    usage: Mutex<Usage>,
}

#[derive(Default)]
struct Usage {
    /// Per key: when its period began, bytes counted in it (reservations included).
    keys: BTreeMap<[u8; 32], (Instant, u64)>,
    /// Bytes reserved by uploads in progress.
    in_flight: u64,
}

impl UploadPolicy {
    /// The policy of the node whose key is `me` on `chain_id`; `guard` records admitted uploads.
    pub fn new(
        cfg: &AccessConfig,
        chain_id: String,
        me: VerifyingKey,
        accounts: Accounts,
        guard: ReplayGuard,
    ) -> anyhow::Result<Self> {
        let mut allowed = BTreeSet::new();
        allowed.insert(me.to_bytes());
        for k in &cfg.upload_keys {
            let mut raw = [0u8; 32];
            hex::decode_to_slice(k, &mut raw).map_err(|_| {
                anyhow::anyhow!("[access] upload_keys: {k:?} is not a 64-hex ed25519 public key")
            })?;
            allowed.insert(raw);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                chain_id,
                me,
                allowed,
                accounts,
                guard,
                cfg: cfg.clone(),
                usage: Mutex::default(),
            }),
        })
    }

    /// The node's identity as signers must name it.
    pub fn identity(&self) -> Identity {
        Identity {
            key: hex::encode(self.inner.me.as_bytes()),
            chain_id: self.inner.chain_id.clone(),
        }
    }

    /// The chain id signatures are bound to.
    pub fn chain_id(&self) -> &str {
        &self.inner.chain_id
    }

    /// This node's key (the recipient uploads must name).
    pub fn me(&self) -> &VerifyingKey {
        &self.inner.me
    }

    /// The replay guard admitted uploads are recorded in.
    pub fn guard(&self) -> &ReplayGuard {
        &self.inner.guard
    }

    /// Whether `key` may upload at all (rule 2 of the module docs).
    pub async fn authorize(&self, key: &VerifyingKey) -> Result<(), UploadRefusal> {
        if self.inner.allowed.contains(key.as_bytes()) {
            return Ok(());
        }
        let min = self.inner.cfg.upload_balance_min;
        let funds = self
            .inner
            .accounts
            .funds(&Address(key.to_bytes()))
            .await
            .map_err(UploadRefusal::LedgerUnavailable)?;
        if funds >= u128::from(min.max(1)) {
            return Ok(());
        }
        Err(UploadRefusal::NotAllowed {
            key: hex::encode(key.as_bytes()),
            min,
        })
    }

    /// Reserves `bytes` of `key`'s quota and of the store's room, or says which limit they pass.
    pub fn reserve(
        &self,
        store: &BlobStore,
        key: &VerifyingKey,
        bytes: u64,
    ) -> Result<Reservation, UploadRefusal> {
        let mut r = Reservation {
            policy: self.clone(),
            store: store.clone(),
            key: key.to_bytes(),
            reserved: 0,
        };
        r.add(bytes)?;
        Ok(r)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Usage> {
        // Plain counters: consistent after any panic mid-update.
        self.inner.usage.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn try_add(&self, store: &BlobStore, key: &[u8; 32], more: u64) -> Result<(), UploadRefusal> {
        let cfg = &self.inner.cfg;
        let free = free_bytes(store)?;
        let mut usage = self.lock();
        let in_flight = usage.in_flight;
        let held = store.stored_bytes();
        if held.saturating_add(in_flight).saturating_add(more) > cfg.blob_store_bytes_max {
            return Err(UploadRefusal::StoreFull {
                held,
                in_flight,
                more,
                max: cfg.blob_store_bytes_max,
            });
        }
        if free.saturating_sub(in_flight).saturating_sub(more) < cfg.disk_free_bytes_min
            || free < in_flight.saturating_add(more)
        {
            return Err(UploadRefusal::DiskLow {
                free,
                in_flight,
                more,
                floor: cfg.disk_free_bytes_min,
            });
        }
        let period = Duration::from_secs(cfg.upload_key_period_secs);
        let now = Instant::now();
        if usage.keys.len() >= KEYS_PRUNE_AT {
            usage
                .keys
                .retain(|_, (since, used)| *used > 0 && now.duration_since(*since) < period);
        }
        let entry = usage.keys.entry(*key).or_insert((now, 0));
        if now.duration_since(entry.0) >= period {
            *entry = (now, 0);
        }
        if entry.1.saturating_add(more) > cfg.upload_key_bytes_max {
            return Err(UploadRefusal::KeyQuota {
                key: hex::encode(key),
                used: entry.1,
                more,
                max: cfg.upload_key_bytes_max,
                period_secs: cfg.upload_key_period_secs,
            });
        }
        entry.1 += more;
        usage.in_flight = in_flight.saturating_add(more);
        Ok(())
    }

    fn give_back(&self, key: &[u8; 32], in_flight: u64, quota: u64) {
        let mut usage = self.lock();
        usage.in_flight = usage.in_flight.saturating_sub(in_flight);
        if let Some(entry) = usage.keys.get_mut(key) {
            entry.1 = entry.1.saturating_sub(quota);
        }
    }
}

/// Bytes free for unprivileged writers on the store's filesystem.
fn free_bytes(store: &BlobStore) -> Result<u64, UploadRefusal> {
    let st = rustix::fs::statvfs(store.dir()).map_err(|e| UploadRefusal::DiskUnknown {
        path: store.dir().display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Bytes held against a key's quota and the store's room for one upload in progress. Dropped
/// without [`Reservation::commit`] (a refused or broken upload), it gives everything back.
pub struct Reservation {
    policy: UploadPolicy,
    store: BlobStore,
    key: [u8; 32],
    reserved: u64,
}

impl Reservation {
    fn add(&mut self, more: u64) -> Result<(), UploadRefusal> {
        if more == 0 {
            return Ok(());
        }
        self.policy.try_add(&self.store, &self.key, more)?;
        self.reserved += more;
        Ok(())
    }

    /// Makes sure `size` bytes are reserved (a body of unknown length, as it arrives).
    pub fn cover(&mut self, size: u64) -> Result<(), UploadRefusal> {
        if size <= self.reserved {
            return Ok(());
        }
        self.add((size - self.reserved).max(RESERVE_STEP_BYTES))
    }

    /// The upload is done: `size` bytes newly `created` stay counted against the key (the store
    /// counts them itself from now on); the rest of the reservation is given back.
    pub fn commit(mut self, created: bool, size: u64) {
        let kept = if created { size.min(self.reserved) } else { 0 };
        self.policy
            .give_back(&self.key, self.reserved, self.reserved - kept);
        self.reserved = 0;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.reserved > 0 {
            self.policy
                .give_back(&self.key, self.reserved, self.reserved);
        }
    }
}

/// The upload policy of a validator whose data directory is `dir`: its node key is the
/// recipient, its own finalized state says who is funded.
pub fn validator_policy(
    cfg: &AccessConfig,
    dir: &std::path::Path,
    chain: &deai_chain::Handle,
) -> anyhow::Result<UploadPolicy> {
    let key = crate::keyfile::read(&dir.join(crate::config::NODE_KEY_FILE))?;
    let guard = ReplayGuard::default().with_senders_max(cfg.replay_senders_max);
    UploadPolicy::new(
        cfg,
        chain.status().chain_id,
        key.verifying_key(),
        Accounts::Chain(chain.clone()),
        guard,
    )
}

/// The upload policy of a role node: its key is the recipient, its validator says who is funded,
/// and its signed routes share one replay guard with uploads.
pub fn role_policy(
    cfg: &AccessConfig,
    ctx: &crate::roles::RoleContext,
) -> anyhow::Result<UploadPolicy> {
    UploadPolicy::new(
        cfg,
        ctx.chain_id.clone(),
        ctx.key.verifying_key(),
        Accounts::Upstream(ctx.ledger.clone()),
        ctx.guard.clone(),
    )
}
