//! [`Handle`]: the node's view of a running chain, callable from any thread or async runtime.
//!
//! Every read sees the latest finalized and durable state: a block becomes visible here only
//! after it is in the fsynced block store. Reads of recent blocks and transactions are answered from
//! memory; older ones are read from disk by the executor, so they are `async`.

use crate::{
    error::MempoolError,
    replica::{HistoryRead, Shared},
};
use deai_ledger::{Address, Event, Receipt, SignedTx, State, TxId};
use std::{collections::BTreeMap, sync::Arc};

/// A block as finalized and applied here.
#[derive(Clone, Debug)]
pub struct FinalizedBlock {
    /// Height (1 is the first block after genesis).
    pub height: u64,
    /// The block's digest (BLAKE3 of its encoding).
    pub digest: deai_ledger::Digest,
    /// The parent block's digest.
    pub parent: deai_ledger::Digest,
    /// The validator that proposed it (and collected its fees).
    pub proposer: Address,
    /// The proposer's clock when it built the block.
    pub timestamp_ms: u64,
    /// The ordered transactions.
    pub txs: Vec<SignedTx>,
    /// One receipt per transaction, in order.
    pub receipts: Vec<Receipt>,
    /// Events the block emitted.
    pub events: Vec<Event>,
    /// The state root after the parent block (committed to by the block itself).
    pub parent_state_root: deai_ledger::Digest,
    /// The state root after this block.
    pub state_root: deai_ledger::Digest,
    /// When this validator durably finalized it (its runtime clock, ms since the Unix epoch).
    pub finalized_at_ms: u64,
    /// At the block that chose the next epoch's validator set: the set's inclusion proof
    /// against `state_root`, kept so light clients can follow the change later.
    pub set_proof: Option<deai_ledger::Proof>,
}

impl FinalizedBlock {
    /// A block as applied here: its header and transactions with what applying it produced.
    pub(crate) fn from_applied(
        block: &crate::Block,
        digest: &crate::BlockDigest,
        outcome: Applied,
    ) -> Self {
        Self {
            height: block.height,
            digest: crate::block::digest_bytes(digest),
            parent: crate::block::digest_bytes(&block.parent),
            proposer: block.proposer,
            timestamp_ms: block.timestamp_ms,
            txs: block.txs().to_vec(),
            receipts: outcome.receipts,
            events: outcome.events,
            parent_state_root: outcome.parent_state_root,
            state_root: outcome.state_root,
            finalized_at_ms: outcome.finalized_at_ms,
            set_proof: outcome.set_proof,
        }
    }
}

/// What applying a block produced, for [`FinalizedBlock::from_applied`].
pub(crate) struct Applied {
    pub(crate) receipts: Vec<Receipt>,
    pub(crate) events: Vec<Event>,
    pub(crate) parent_state_root: deai_ledger::Digest,
    pub(crate) state_root: deai_ledger::Digest,
    pub(crate) finalized_at_ms: u64,
    pub(crate) set_proof: Option<deai_ledger::Proof>,
}

/// Where a transaction stands.
#[derive(Clone, Debug)]
pub enum TxStatus {
    /// In the mempool, waiting for a block.
    Pending,
    /// In a finalized block (its receipt says whether it applied or was rejected there).
    Finalized {
        /// Block height.
        height: u64,
        /// Position in the block.
        index: u32,
        /// Its receipt.
        receipt: Receipt,
    },
    /// Dropped from the mempool without being included.
    Rejected {
        /// Stable reason code (`evicted`, `nonce_stale`).
        code: String,
        /// Human-readable reason.
        reason: String,
    },
    /// Never seen (or forgotten).
    Unknown,
}

/// A summary of the chain for `GET /v1/status`.
#[derive(Clone, Debug)]
pub struct Status {
    /// The chain id.
    pub chain_id: String,
    /// Last finalized height.
    pub height: u64,
    /// State root after that height.
    pub state_root: deai_ledger::Digest,
    /// Connected validator peers.
    pub peers: usize,
    /// Transactions in the mempool.
    pub mempool_size: usize,
    /// Finality latency of the most recently finalized transaction submitted here.
    pub last_finality_latency_ms: Option<u64>,
    /// The epoch this replica runs (or follows).
    pub epoch: u64,
    /// Validators in that epoch's set.
    pub validators: usize,
    /// Whether this replica signs in it (a validator), rather than following.
    pub member: bool,
}

/// Counters for the node's Prometheus endpoint.
#[derive(Clone, Debug)]
pub struct ChainMetrics {
    /// Last finalized height.
    pub height: u64,
    /// State root after that height.
    pub state_root: deai_ledger::Digest,
    /// Transactions in the mempool.
    pub mempool_size: usize,
    /// Transactions finalized (applied or rejected in a block) since start, replay included.
    pub finalized_txs_total: u64,
    /// Finality latency samples (submission here to durable finalization here).
    pub finality_latency_count: u64,
    /// Sum of those samples in ms.
    pub finality_latency_sum_ms: u64,
    /// Median of the recent samples.
    pub finality_latency_p50_ms: Option<u64>,
    /// 99th percentile of the recent samples.
    pub finality_latency_p99_ms: Option<u64>,
    /// The latest sample.
    pub last_finality_latency_ms: Option<u64>,
    /// Rejected transactions (at submission or in blocks) by reason code.
    pub rejected_txs_by_code: BTreeMap<String, u64>,
    /// Connected validator peers.
    pub peers: usize,
    /// Height of the newest durable state snapshot.
    pub snapshot_height: u64,
    /// Blocks replayed from the block store at start, after the snapshot was restored.
    pub replayed_blocks_at_start: u64,
}

/// A cheap, cloneable handle to a running chain (`Send + Sync`).
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
    pub(crate) marshal: crate::engine::MarshalMailbox,
}

/// What certifies a finalized height to a light client ([`crate::light::Verifier`]).
#[derive(Clone, Debug)]
pub struct Finality {
    /// The height asked for.
    pub height: u64,
    /// The encoded blocks from `height` up to the one the certificate finalizes (usually just
    /// the block at `height`).
    pub blocks: Vec<Vec<u8>>,
    /// The encoded finalization certificate of the last of `blocks`.
    pub finalization: Vec<u8>,
}

/// A validator-set change as a light client checks it ([`crate::light::Verifier::follow`]).
#[derive(Clone, Debug)]
pub struct SetChange {
    /// The epoch the set validates.
    pub epoch: u64,
    /// The set.
    pub set: deai_ledger::ValidatorSet,
    /// Its inclusion proof against the state root after the block that chose it.
    pub proof: deai_ledger::Proof,
    /// The finality of the block above that one (the previous epoch's last block).
    pub finality: Finality,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("height", &self.height())
            .finish()
    }
}

impl Handle {
    /// Checks a transaction (signature, chain id, size, fee, nonce, and the rest of the
    /// ledger's checks when its nonce is next) and admits it to the mempool.
    pub async fn submit(&self, tx: SignedTx) -> Result<TxId, MempoolError> {
        self.submit_blocking(tx)
    }

    /// Submits many transactions in order, with the verdicts [`Handle::submit`] would give each
    /// (a later one sees the earlier ones in the mempool), their signatures checked in batches.
    pub fn submit_batch(&self, txs: Vec<SignedTx>) -> Vec<Result<TxId, MempoolError>> {
        let copies = txs.clone();
        let results = self.shared.submit_batch(txs);
        for (tx, result) in copies.into_iter().zip(&results) {
            if result.is_ok() {
                self.gossip(tx);
            }
        }
        results
    }

    /// Like [`Handle::submit`], without the async wrapper.
    pub fn submit_blocking(&self, tx: SignedTx) -> Result<TxId, MempoolError> {
        let id = self.shared.submit(tx.clone())?;
        self.gossip(tx);
        Ok(id)
    }

    /// Hands an admitted transaction to the gossip (a full outbox leaves it to this validator's
    /// own proposals).
    fn gossip(&self, tx: SignedTx) {
        let _ = self.shared.gossip.try_send(tx);
    }

    /// Fetches the blob `hash` from the other validators into this node's blob store (at once if
    /// it is already there), verified against its hash; see [`crate::blob_exchange`].
    pub async fn fetch_blob(
        &self,
        hash: deai_ledger::Digest,
    ) -> Result<(), crate::blob_exchange::FetchError> {
        use crate::blob_exchange::{Command, FetchError};
        let requests = self.shared.blobs.as_ref().ok_or(FetchError::Unavailable)?;
        let (reply, answer) = futures::channel::oneshot::channel();
        requests
            .try_send(Command::Fetch(hash, reply))
            .map_err(|e| match e {
                tokio::sync::mpsc::error::TrySendError::Full(_) => FetchError::Busy,
                tokio::sync::mpsc::error::TrySendError::Closed(_) => FetchError::Unavailable,
            })?;
        answer.await.unwrap_or(Err(FetchError::Unavailable))
    }

    /// Tells the other validators that this node stored the blob `hash` of `size` bytes from a
    /// client, so they fetch a copy. Best effort: dropped when the exchange is busy.
    pub fn announce_blob(&self, hash: deai_ledger::Digest, size: u64) {
        if let Some(requests) = &self.shared.blobs {
            let _ = requests.try_send(crate::blob_exchange::Command::Announce(hash, size));
        }
    }

    /// Last finalized height.
    pub fn height(&self) -> u64 {
        self.shared.finalized.read().height()
    }

    /// Chain summary.
    pub fn status(&self) -> Status {
        let (chain_id, height, state_root) = {
            let f = self.shared.finalized.read();
            (f.state.chain_id().to_string(), f.height(), f.state.root())
        };
        let mempool_size = self.shared.mempool.lock().len();
        let epoch = self.shared.epoch.load(std::sync::atomic::Ordering::Relaxed);
        let validators = self
            .shared
            .finalized
            .read()
            .state
            .validator_set(epoch)
            .map_or(0, |s| s.members.len());
        Status {
            chain_id,
            height,
            state_root,
            peers: self.shared.peers.load(std::sync::atomic::Ordering::Relaxed),
            mempool_size,
            last_finality_latency_ms: self.shared.pool_meta.lock().latency.last_ms,
            epoch,
            validators,
            member: self.shared.schemes.signs(epoch),
        }
    }

    /// The finalized block at `height` (1-based), if any. Recent blocks come from memory, older
    /// ones from disk.
    pub async fn block(&self, height: u64) -> Option<Arc<FinalizedBlock>> {
        let tip = {
            let f = self.shared.finalized.read();
            if let Some(block) = f.recent_block(height) {
                return Some(block);
            }
            f.height()
        };
        if height == 0 || height > tip {
            return None;
        }
        self.shared
            .read_history(|reply| HistoryRead::Block(height, reply))
            .await
            .flatten()
    }

    /// The finalized block at `height` and the certificate that finalizes it: its own, or, for a
    /// block that consensus finalized only through a descendant, the nearest descendant's within
    /// [`crate::light::CHAIN_BLOCKS_MAX`] blocks together with the blocks between. `None` when
    /// `height` is not finalized here yet, or its certificate is no longer kept.
    pub async fn finality(&self, height: u64) -> Option<Finality> {
        use commonware_codec::Encode as _;
        use commonware_consensus::types::Height;
        let tip = self.height();
        if height == 0 || height > tip {
            return None;
        }
        let last = tip.min(height.saturating_add(crate::light::CHAIN_BLOCKS_MAX as u64 - 1));
        let mut blocks = Vec::new();
        for h in height..=last {
            let block = self.marshal.get_block(Height::new(h)).await?;
            blocks.push(block.encode().to_vec());
            if let Some(f) = self.marshal.get_finalization(Height::new(h)).await {
                return Some(Finality {
                    height,
                    blocks,
                    finalization: crate::light::encode_finalization(&f),
                });
            }
        }
        None
    }

    /// What a light client needs to accept the validator set of `epoch` (1 or later) from the
    /// set before it: the set, its inclusion proof against the state root after the block that
    /// chose it, and the finality of the block above (the previous epoch's last, certified by
    /// the previous set). `None` until that block is finalized here.
    pub async fn set_change(&self, epoch: u64) -> Option<SetChange> {
        let (chooser, set) = {
            let f = self.shared.finalized.read();
            let params = f.state.params();
            let chooser = params.epoch_last(epoch.checked_sub(1)?)?.checked_sub(1)?;
            (chooser, f.state.validator_set(epoch)?.clone())
        };
        let proof = self.block(chooser).await?.set_proof.clone()?;
        let finality = self.finality(chooser + 1).await?;
        Some(SetChange {
            epoch,
            set,
            proof,
            finality,
        })
    }

    /// Asks for the next block soon even if there is nothing to put in it: someone waits for it
    /// (a light client needs the block above the height it read to certify that height's
    /// root). Only this validator's own proposals hurry; at most ten requested empty blocks
    /// come per `block_idle_wait`.
    pub fn request_block(&self) {
        self.shared
            .block_requested
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.shared.tx_arrived.notify_one();
    }

    /// Where a transaction stands.
    pub async fn tx_status(&self, id: &TxId) -> TxStatus {
        if let Some(status) = self.shared.recent_tx_status(id) {
            return status;
        }
        self.shared
            .read_history(|reply| HistoryRead::Tx(*id, reply))
            .await
            .flatten()
            .unwrap_or(TxStatus::Unknown)
    }

    /// Runs `f` on the latest finalized, durable state (holding a read lock: keep `f` short).
    pub fn read_state<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.shared.finalized.read().state)
    }

    /// A receiver of the finalized height, updated after each durable block.
    pub fn subscribe_finalized(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.height_tx.subscribe()
    }

    /// Counters for Prometheus.
    pub fn metrics(&self) -> ChainMetrics {
        self.shared.metrics()
    }

    /// Counts a transaction refused before it reached the chain (for example one the API could
    /// not decode) under `code`, with the chain's own rejections: operators see every refused
    /// transaction in one place, whichever layer refused it.
    pub fn count_rejected(&self, code: &str) {
        let mut meta = self.shared.pool_meta.lock();
        self.shared.count_rejected(&mut meta, code);
    }
}
