//! Configuration of one validator of the chain.
//!
//! Storage location: Commonware storage is rooted by the runtime (for the tokio runtime, its
//! `storage_directory`), so this config names only a partition prefix; the node puts the
//! runtime's storage directory inside its data directory.

use crate::history::SnapshotPolicy;
use commonware_cryptography::{Signer as _, ed25519};
use deai_ledger::Genesis;
use std::{net::SocketAddr, time::Duration};

/// Everything [`crate::start`] needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Prefix of every storage partition this validator writes (letters, digits, `_`, `-`).
    pub partition_prefix: String,
    /// The chain's genesis (chain id, balances, validators, parameters).
    pub genesis: Genesis,
    /// This validator's identity and consensus key.
    pub signer: ed25519::PrivateKey,
    /// The validator set, in a fixed order shared by every validator. Must include `signer`.
    pub participants: Vec<ed25519::PublicKey>,
    /// Address the p2p network listens on (unused by [`crate::start_with_network`]).
    pub p2p_listen: SocketAddr,
    /// Known addresses of the other validators (every participant but this one needs one).
    pub bootstrappers: Vec<(ed25519::PublicKey, SocketAddr)>,
    /// Most transactions in the mempool.
    pub mempool_txs_max: usize,
    /// Most encoded bytes in the mempool.
    pub mempool_bytes_max: usize,
    /// How far above an account's next nonce the mempool admits transactions.
    pub mempool_nonce_window: u64,
    /// Most transactions the mempool holds for one sender.
    pub mempool_sender_txs_max: usize,
    /// Blocks after which a pooled transaction that cannot run (a lower nonce of its sender is
    /// missing) leaves the mempool.
    pub mempool_expiry_blocks: u64,
    /// How long a leader with an empty mempool waits for a transaction before proposing an
    /// empty block. Must stay below `leader_timeout`.
    pub block_idle_wait: Duration,
    /// How long validators wait for the leader's proposal.
    pub leader_timeout: Duration,
    /// How long validators wait for a notarized view to certify before nullifying it.
    pub certification_timeout: Duration,
    /// How often a validator stuck in a view rebroadcasts its nullify vote.
    pub timeout_retry: Duration,
    /// How long to wait for a peer to answer a fetch.
    pub fetch_timeout: Duration,
    /// Whether the p2p network may dial private (e.g. loopback) addresses.
    pub allow_private_ips: bool,
    /// How often the executor snapshots the state (restart replays only what follows).
    pub snapshots: SnapshotPolicy,
    /// The node's blob store, exchanged with the other validators by hash
    /// ([`crate::blob_exchange`]); `None` exchanges no blobs.
    pub blob_store: Option<crate::blob_exchange::SharedBlobStore>,
    /// Fault injection: how long the executor stalls before each finalized block, as a slow
    /// disk would. Zero by default.
    #[cfg(feature = "test-utils")]
    pub executor_delay: Duration,
}

impl Config {
    /// Default of [`Self::mempool_sender_txs_max`]: enough for a client pipelining a few
    /// blocks' worth, few enough that one funded key holds a small share of the pool.
    pub const MEMPOOL_SENDER_TXS_MAX_DEFAULT: usize = 64;
    /// Default of [`Self::mempool_expiry_blocks`]: about five minutes at the idle pace of two
    /// blocks a second, less under load.
    pub const MEMPOOL_EXPIRY_BLOCKS_DEFAULT: u64 = 600;

    /// A single-validator config with sensible defaults: `signer` is the only participant.
    pub fn single(genesis: Genesis, signer: ed25519::PrivateKey) -> Self {
        let participants = vec![signer.public_key()];
        Self {
            partition_prefix: "deai-chain".to_string(),
            genesis,
            signer,
            participants,
            p2p_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            bootstrappers: Vec::new(),
            mempool_txs_max: 100_000,
            mempool_bytes_max: 256 << 20,
            // A window wider than the per-sender cap only lets a sender park its few slots
            // far ahead, where they cannot run.
            mempool_nonce_window: 64,
            mempool_sender_txs_max: Self::MEMPOOL_SENDER_TXS_MAX_DEFAULT,
            mempool_expiry_blocks: Self::MEMPOOL_EXPIRY_BLOCKS_DEFAULT,
            block_idle_wait: Duration::from_millis(500),
            leader_timeout: Duration::from_secs(2),
            certification_timeout: Duration::from_secs(3),
            timeout_retry: Duration::from_secs(5),
            fetch_timeout: Duration::from_secs(2),
            allow_private_ips: true,
            snapshots: SnapshotPolicy::default(),
            blob_store: None,
            #[cfg(feature = "test-utils")]
            executor_delay: Duration::ZERO,
        }
    }

    /// The consensus namespace: votes signed for one chain id never count on another.
    pub(crate) fn namespace(&self) -> Vec<u8> {
        namespace(&self.genesis.chain_id)
    }
}

/// The consensus namespace of chain `chain_id` (light clients verify certificates under it).
pub(crate) fn namespace(chain_id: &str) -> Vec<u8> {
    format!("deai-chain/{chain_id}").into_bytes()
}
