//! The finalized history on disk, and restart from the newest snapshot.
//!
//! Three stores, all Commonware immutable archives under the validator's partition prefix
//! (settings in [`crate::stores`]), each opening in time independent of its size:
//! - the **block store** (`-history-blocks`, index = height): every finalized block, written and
//!   synced before it is applied (the write-ahead log of execution);
//! - the **executed store** (`-history-exec`, index = height): what applying each block did
//!   (receipts, events, the state root after it), written after the block is applied;
//! - the **transaction index** (`-txs`): transaction id → (height, position), at disk-resident cost
//!   (Commonware's freezer), so memory does not grow with history.
//!
//! Plus the [`Snapshots`] of the state. Memory keeps only the state and a window of recent blocks
//! ([`crate::replica::Finalized`]); anything older is read from here on demand.
//!
//! Invariants:
//! - `executed` and `txs` never run ahead of `blocks`; a snapshot at height `s` is written only
//!   after `executed` and `txs` are synced through `s`, so after any crash both cover at least the
//!   snapshot, and the blocks after it replay deterministically to the same records (a record or
//!   index entry already present is left as is).
//! - Restart = load the newest snapshot whose state root matches the root the block store
//!   committed to at its height, then replay only the later blocks. A snapshot that fails any
//!   check is ignored (with a warning) in favour of an older one or genesis: a bad snapshot costs
//!   time, never correctness. `deai ledger verify` still replays from genesis, over the API.

use crate::{
    application::ms_since,
    block::{Block, BlockCfg, BlockDigest, StoredBlock},
    error::ChainError,
    handle::{Applied, FinalizedBlock},
    replica::Finalized,
    snapshot::{Restored, Snapshots},
    stores::{Shape, archive_config},
    telemetry::{Telemetry, set_count},
};
use commonware_codec::RangeCfg;
use commonware_cryptography::{Digestible as _, blake3};
use commonware_runtime::{Clock, Metrics, Storage, buffer::paged::CacheRef};
use commonware_storage::archive::{Archive, Identifier, immutable};
use commonware_utils::{NZU16, NZUsize, sync::RwLock};
use deai_ledger::{Event, Receipt, State, TxId};
use prometheus_client::metrics::gauge::Gauge;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tracing::{debug, info, warn};

/// A recording step slower than this is logged (debug).
const SLOW_MS: u128 = 20;

type BlockStore<E> = immutable::Archive<E, BlockDigest, StoredBlock>;
type ExecStore<E> = immutable::Archive<E, BlockDigest, Vec<u8>>;
type TxIndex<E> = immutable::Archive<E, blake3::Digest, (u64, u32)>;

/// The largest executed record accepted when reading (a full block's receipts as JSON).
const EXEC_RECORD_MAX: usize = 256 << 20;
/// zstd level of executed records (JSON compresses about tenfold).
const EXEC_COMPRESSION: u8 = 3;

/// When the executor writes a snapshot: after this many blocks or transactions since the last
/// one, whichever comes first. Restart time is bounded by replaying at most that much.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// Blocks between snapshots.
    pub every_blocks: u64,
    /// Transactions between snapshots.
    pub every_txs: u64,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        Self {
            every_blocks: 4096,
            every_txs: 20_000,
        }
    }
}

/// What applying a block did, as kept in the executed store.
#[derive(Serialize, Deserialize)]
struct ExecRecord {
    receipts: Vec<Receipt>,
    events: Vec<Event>,
    state_root: deai_ledger::Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    set_proof: Option<deai_ledger::Proof>,
}

/// An applied block whose executed record and index entries are not all written yet.
pub(crate) struct Unrecorded {
    block: Arc<FinalizedBlock>,
    exec_written: bool,
    /// Transactions indexed so far.
    indexed: usize,
    /// The state after the block with its index position, when a snapshot is due there.
    snapshot: Option<(u64, deai_ledger::Snapshot)>,
}

/// Applied blocks not fully recorded yet, oldest first. The executor records them in chunks
/// while nothing else waits, and answers reads of them from here meanwhile.
#[derive(Default)]
pub(crate) struct Backlog {
    blocks: std::collections::VecDeque<Unrecorded>,
}

impl Backlog {
    pub(crate) fn len(&self) -> usize {
        self.blocks.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    pub(crate) fn push(&mut self, u: Unrecorded) {
        self.blocks.push_back(u);
    }

    /// The block at `height`, if it waits here.
    pub(crate) fn block(&self, height: u64) -> Option<Arc<FinalizedBlock>> {
        let first = self.blocks.front()?.block.height;
        let at = usize::try_from(height.checked_sub(first)?).ok()?;
        self.blocks.get(at).map(|u| u.block.clone())
    }

    /// Where transaction `id` is, if in a block waiting here.
    pub(crate) fn tx(&self, id: &TxId) -> Option<(u64, u32)> {
        self.blocks.iter().find_map(|u| {
            let position = u.block.receipts.iter().position(|r| r.tx_id == *id)?;
            Some((u.block.height, u32::try_from(position).ok()?))
        })
    }
}

/// The durable history of one validator (owned by the executor task).
pub(crate) struct History<E: Storage + Clock + Metrics> {
    blocks: BlockStore<E>,
    executed: ExecStore<E>,
    txs: TxIndex<E>,
    snapshots: Snapshots<E>,
    policy: SnapshotPolicy,
    /// Transactions in blocks `1..=height recorded`.
    tx_seq: u64,
    /// Transactions in blocks `1..=height applied` (ahead of `tx_seq` while records wait).
    applied_seq: u64,
    /// Height and index position of the newest snapshot taken (written once its block is
    /// recorded).
    planned_at: (u64, u64),
    /// Exported height of the newest snapshot.
    snapshot_gauge: Gauge,
}

fn history_error(what: &str, e: impl std::fmt::Display) -> ChainError {
    ChainError::History(format!("{what}: {e}"))
}

fn tx_key(id: &TxId) -> blake3::Digest {
    blake3::Digest(id.0)
}

/// The heights `1..=n` a store holds without a gap (writes after a gap, possible only for
/// unsynced records lost in a crash, are rewritten by replay).
fn contiguous<A: Archive>(store: &A) -> u64 {
    store.next_gap(1).0.unwrap_or(0)
}

/// Data directories from before the block store was an archive kept a variable journal here.
async fn refuse_old_layout<E: Storage>(context: &E, prefix: &str) -> Result<(), ChainError> {
    let old = format!("{prefix}-blocks");
    match context.scan(&old).await {
        Ok(blobs) if !blobs.is_empty() => Err(ChainError::History(format!(
            "this data directory holds a block journal (`{old}`) written by an older deai, which \
             this version does not read; start from a fresh data directory (`deai init`)"
        ))),
        _ => Ok(()),
    }
}

impl<E: Storage + Clock + Metrics> History<E> {
    /// Opens the stores under `prefix`, restores the newest good snapshot (or genesis) and replays
    /// the blocks after it. Returns the history and the replica's finalized view at the last
    /// durable height.
    pub(crate) async fn open(
        context: E,
        prefix: &str,
        cfg: BlockCfg,
        genesis: State,
        genesis_digest: BlockDigest,
        policy: SnapshotPolicy,
        telemetry: &Telemetry,
    ) -> Result<(Self, Finalized), ChainError> {
        let opened = context.current();
        let elapsed_ms = |context: &E| {
            context
                .current()
                .duration_since(opened)
                .map_or(0, |d| d.as_millis())
        };
        let page_cache = CacheRef::new(NZU16!(4096), NZUsize!(256));
        refuse_old_layout(&context, prefix).await?;
        let blocks = BlockStore::init(
            context.child("blocks"),
            archive_config(prefix, "history-blocks", &page_cache, cfg, Shape::PER_BLOCK),
        )
        .await
        .map_err(|e| history_error("open the block store", e))?;
        let blocks_ms = elapsed_ms(&context);
        let executed = ExecStore::init(
            context.child("executed"),
            archive_config(
                prefix,
                "history-exec",
                &page_cache,
                (RangeCfg::from(..=EXEC_RECORD_MAX), ()),
                Shape {
                    compression: Some(EXEC_COMPRESSION),
                    ..Shape::PER_BLOCK
                },
            ),
        )
        .await
        .map_err(|e| history_error("open the executed store", e))?;
        let executed_ms = elapsed_ms(&context);
        let txs = TxIndex::init(
            context.child("txs"),
            archive_config(prefix, "txs", &page_cache, ((), ()), Shape::PER_TX),
        )
        .await
        .map_err(|e| history_error("open transaction index", e))?;
        let index_ms = elapsed_ms(&context);
        let (snapshots, restored) = Snapshots::load(context.child("snapshot"), prefix).await?;
        let snapshot_ms = elapsed_ms(&context);
        let mut history = Self {
            blocks,
            executed,
            txs,
            snapshots,
            policy,
            tx_seq: 0,
            applied_seq: 0,
            planned_at: (0, 0),
            snapshot_gauge: telemetry.snapshot_height.metric().clone(),
        };
        let durable = contiguous(&history.blocks);
        let recorded = contiguous(&history.executed);
        if recorded > durable {
            return Err(ChainError::History(format!(
                "{recorded} executed records but only {durable} blocks: the data directory mixes two chains' files"
            )));
        }
        let base = match restored {
            Some(r) => history.check_snapshot(r, durable, recorded).await?,
            None => None,
        };
        let mut finalized = match base {
            Some(r) => {
                history.tx_seq = r.tx_seq;
                history.planned_at = (r.height, r.tx_seq);
                let tip = history.read_block(r.height).await?.block.digest();
                Finalized::restored(r.state, genesis.root(), genesis_digest, r.height, tip)
            }
            None => Finalized::new(genesis, genesis_digest),
        };
        let from = finalized.height();
        set_count(&history.snapshot_gauge, from);
        info!(
            snapshot_height = from,
            durable,
            blocks_ms,
            executed_ms,
            index_ms,
            snapshot_ms,
            ms = elapsed_ms(&context),
            "opened the history and restored the state"
        );
        let mut history = history.replay(&mut finalized, durable, recorded).await?;
        set_count(
            telemetry.replayed_blocks.metric(),
            finalized.height() - from,
        );
        if finalized.height() > from {
            info!(
                from,
                height = finalized.height(),
                root = %finalized.state.root(),
                ms = elapsed_ms(&context),
                "replayed the blocks after the snapshot"
            );
            history = history.sync_derived().await?;
        }
        history.applied_seq = history.tx_seq;
        Ok((history, finalized))
    }

    /// A restored snapshot is used only if its root is the one the block store committed to.
    async fn check_snapshot(
        &self,
        r: Restored,
        durable: u64,
        recorded: u64,
    ) -> Result<Option<Restored>, ChainError> {
        let root = r.state.root();
        let expected = if r.height > durable || r.height > recorded || r.height == 0 {
            None
        } else if r.height < durable {
            Some(self.read_block(r.height + 1).await?.block.parent_state_root)
        } else {
            Some(self.read_exec(r.height).await?.state_root)
        };
        if expected == Some(root) {
            Ok(Some(r))
        } else {
            warn!(
                height = r.height,
                durable,
                recorded,
                "snapshot does not match the block store; replaying from genesis"
            );
            Ok(None)
        }
    }

    async fn replay(
        mut self,
        finalized: &mut Finalized,
        durable: u64,
        recorded: u64,
    ) -> Result<Self, ChainError> {
        for height in finalized.height() + 1..=durable {
            let stored = self.read_block(height).await?;
            let applied = replay_one(finalized, &stored, height)?;
            if height > recorded {
                self = self.append_exec(&applied).await?;
            }
            self = self.index_txs(&applied, 0..applied.txs.len()).await?;
        }
        Ok(self)
    }

    /// Stores a finalized block durably (before it is applied).
    pub(crate) async fn persist(
        mut self,
        stored: &StoredBlock,
        digest: BlockDigest,
    ) -> Result<Self, ChainError> {
        self.blocks = self
            .blocks
            .put_sync(stored.block.height, digest, stored)
            .await
            .map_err(|e| history_error("store a finalized block", e))?;
        Ok(self)
    }

    /// What recording `block` (just applied) will take, with the state snapshot taken now when
    /// one is due: the recorder runs behind the executor, and the state will have moved on.
    pub(crate) fn unrecorded(
        &mut self,
        block: Arc<FinalizedBlock>,
        finalized: &RwLock<Finalized>,
    ) -> Unrecorded {
        self.applied_seq += block.txs.len() as u64;
        let (at_height, at_seq) = self.planned_at;
        let due = block.height - at_height >= self.policy.every_blocks
            || self.applied_seq - at_seq >= self.policy.every_txs;
        let snapshot = due.then(|| {
            self.planned_at = (block.height, self.applied_seq);
            (self.applied_seq, finalized.read().state.snapshot())
        });
        Unrecorded {
            block,
            exec_written: false,
            indexed: 0,
            snapshot,
        }
    }

    /// Records up to `budget` more transactions of the oldest block in `backlog` (its executed
    /// record first, and its snapshot once all are indexed), dropping it once fully recorded.
    pub(crate) async fn record_some(
        mut self,
        clock: &impl Clock,
        backlog: &mut Backlog,
        budget: usize,
    ) -> Result<Self, ChainError> {
        let Some(u) = backlog.blocks.front_mut() else {
            return Ok(self);
        };
        let started = clock.current();
        if !u.exec_written {
            self = self.append_exec(&u.block).await?;
            u.exec_written = true;
        }
        let exec_ms = ms_since(clock, started);
        let end = u.indexed.saturating_add(budget).min(u.block.txs.len());
        let from = u.indexed;
        self = self.index_txs(&u.block, u.indexed..end).await?;
        u.indexed = end;
        let index_ms = ms_since(clock, started) - exec_ms;
        if index_ms + exec_ms >= SLOW_MS {
            debug!(
                height = u.block.height,
                entries = end - from,
                exec_ms,
                index_ms,
                "slow record"
            );
        }
        if end < u.block.txs.len() {
            return Ok(self);
        }
        if let Some((seq, snapshot)) = u.snapshot.take() {
            debug_assert_eq!(
                seq, self.tx_seq,
                "snapshot planned at another index position"
            );
            let synced = clock.current();
            self = self.sync_derived().await?;
            let sync_ms = ms_since(clock, synced);
            self.snapshots.write(u.block.height, seq, &snapshot).await?;
            set_count(&self.snapshot_gauge, u.block.height);
            debug!(
                height = u.block.height,
                sync_ms,
                snapshot_ms = ms_since(clock, synced) - sync_ms,
                "recorded a snapshot"
            );
        }
        backlog.blocks.pop_front();
        Ok(self)
    }

    async fn append_exec(mut self, block: &FinalizedBlock) -> Result<Self, ChainError> {
        let record = ExecRecord {
            receipts: block.receipts.clone(),
            events: block.events.clone(),
            state_root: block.state_root,
            set_proof: block.set_proof.clone(),
        };
        let bytes =
            serde_json::to_vec(&record).map_err(|e| history_error("encode executed record", e))?;
        self.executed = self
            .executed
            .put(block.height, blake3::Digest(block.digest.0), &bytes)
            .await
            .map_err(|e| history_error("record an executed block", e))?;
        Ok(self)
    }

    /// Indexes the transactions of `block` at `positions` (an entry already present is left as
    /// is), continuing the index sequence.
    async fn index_txs(
        mut self,
        block: &FinalizedBlock,
        positions: std::ops::Range<usize>,
    ) -> Result<Self, ChainError> {
        for (position, tx) in block
            .txs
            .iter()
            .enumerate()
            .take(positions.end)
            .skip(positions.start)
        {
            let position =
                u32::try_from(position).map_err(|e| history_error("block position", e))?;
            self.txs = self
                .txs
                .put(self.tx_seq, tx_key(&tx.id()), &(block.height, position))
                .await
                .map_err(|e| history_error("index transaction", e))?;
            self.tx_seq += 1;
        }
        Ok(self)
    }

    /// Makes the executed records and the transaction index durable (before a snapshot).
    async fn sync_derived(mut self) -> Result<Self, ChainError> {
        self.executed = self
            .executed
            .sync()
            .await
            .map_err(|e| history_error("sync executed records", e))?;
        self.txs = self
            .txs
            .sync()
            .await
            .map_err(|e| history_error("sync transaction index", e))?;
        Ok(self)
    }

    async fn read_block(&self, height: u64) -> Result<StoredBlock, ChainError> {
        self.blocks
            .get(Identifier::Index(height))
            .await
            .map_err(|e| history_error("read a finalized block", e))?
            .ok_or_else(|| history_error("read a finalized block", format!("{height} missing")))
    }

    async fn read_exec(&self, height: u64) -> Result<ExecRecord, ChainError> {
        let bytes = self
            .executed
            .get(Identifier::Index(height))
            .await
            .map_err(|e| history_error("read an executed record", e))?
            .ok_or_else(|| history_error("read an executed record", format!("{height} missing")))?;
        serde_json::from_slice(&bytes).map_err(|e| history_error("decode executed record", e))
    }

    /// The finalized block at `height` with everything applying it did.
    async fn finalized_block(
        &self,
        height: u64,
    ) -> Result<(BlockDigest, FinalizedBlock), ChainError> {
        let stored = self.read_block(height).await?;
        let exec = self.read_exec(height).await?;
        let block = &stored.block;
        let digest = block.digest();
        let applied = Applied {
            receipts: exec.receipts,
            events: exec.events,
            parent_state_root: block.parent_state_root,
            state_root: exec.state_root,
            finalized_at_ms: stored.finalized_at_ms,
            set_proof: exec.set_proof,
        };
        Ok((
            digest,
            FinalizedBlock::from_applied(block, &digest, applied),
        ))
    }

    /// An old block (the replica's window answers for recent ones), if finalized here.
    pub(crate) async fn block(&self, height: u64) -> Result<Option<FinalizedBlock>, ChainError> {
        if height == 0 || height > contiguous(&self.executed) {
            return Ok(None);
        }
        Ok(Some(self.finalized_block(height).await?.1))
    }

    /// The digest of the block at `height` (1-based), if durable here.
    pub(crate) async fn digest_at(&self, height: u64) -> Result<Option<BlockDigest>, ChainError> {
        if height == 0 || height > contiguous(&self.blocks) {
            return Ok(None);
        }
        Ok(Some(self.read_block(height).await?.block.digest()))
    }

    /// Where a finalized transaction is: `(height, position)`.
    pub(crate) async fn tx(&self, id: &TxId) -> Result<Option<(u64, u32)>, ChainError> {
        self.txs
            .get(Identifier::Key(&tx_key(id)))
            .await
            .map_err(|e| history_error("read transaction index", e))
    }
}

/// Applies one stored block during restart, checking it links to what is applied.
fn replay_one(
    finalized: &mut Finalized,
    stored: &StoredBlock,
    height: u64,
) -> Result<Arc<FinalizedBlock>, ChainError> {
    let block: &Block = &stored.block;
    let fail = |reason: String| ChainError::Replay { height, reason };
    if block.height != height {
        return Err(fail(format!(
            "block store index holds height {}",
            block.height
        )));
    }
    let parent = finalized
        .digest_at(height - 1)
        .ok_or_else(|| fail("missing parent".into()))?;
    if block.parent != parent {
        return Err(fail(
            "parent digest does not match the previous block".into(),
        ));
    }
    if block.parent_state_root != finalized.state.root() {
        return Err(fail(
            "parent state root does not match the replayed state".into(),
        ));
    }
    let sig_ok = deai_ledger::verify_signatures(block.txs());
    Ok(finalized.apply(block, block.digest(), &sig_ok, stored.finalized_at_ms, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> TxId {
        deai_ledger::Digest([n; 32])
    }

    fn waiting(height: u64, ids: &[TxId]) -> Unrecorded {
        let receipts = ids
            .iter()
            .map(|&tx_id| Receipt {
                tx_id,
                result: Ok(()),
                events: Vec::new(),
                fee_paid: 0,
            })
            .collect();
        Unrecorded {
            block: Arc::new(FinalizedBlock {
                height,
                digest: deai_ledger::Digest([height as u8; 32]),
                parent: deai_ledger::Digest([0; 32]),
                proposer: deai_ledger::Address([0; 32]),
                timestamp_ms: 0,
                txs: Vec::new(),
                receipts,
                events: Vec::new(),
                parent_state_root: deai_ledger::Digest([0; 32]),
                state_root: deai_ledger::Digest([0; 32]),
                finalized_at_ms: 0,
                set_proof: None,
            }),
            exec_written: false,
            indexed: 0,
            snapshot: None,
        }
    }

    #[test]
    fn the_backlog_answers_for_exactly_the_blocks_it_holds() {
        let mut backlog = Backlog::default();
        assert!(backlog.block(1).is_none());
        backlog.push(waiting(7, &[id(1), id(2)]));
        backlog.push(waiting(8, &[]));
        backlog.push(waiting(9, &[id(3), id(4), id(5)]));
        for h in 7..=9 {
            assert_eq!(backlog.block(h).map(|b| b.height), Some(h));
        }
        assert!(
            backlog.block(6).is_none(),
            "recorded already: read from disk"
        );
        assert!(backlog.block(10).is_none(), "not applied");
        assert_eq!(backlog.tx(&id(2)), Some((7, 1)));
        assert_eq!(backlog.tx(&id(5)), Some((9, 2)));
        assert_eq!(backlog.tx(&id(6)), None);
        backlog.blocks.pop_front();
        assert!(backlog.block(7).is_none());
        assert_eq!(backlog.block(8).map(|b| b.height), Some(8));
        assert_eq!(backlog.tx(&id(1)), None);
    }
}
