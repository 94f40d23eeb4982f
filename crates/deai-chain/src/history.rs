//! The finalized history on disk, and restart from the newest snapshot.
//!
//! Three stores, all Commonware storage under the validator's partition prefix:
//! - the **block journal** (`-blocks`, position `height - 1`): every finalized block, appended
//!   and fsynced before it is applied (the write-ahead log of execution);
//! - the **executed journal** (`-executed`, same positions): what applying each block did
//!   (receipts, events, the state root after it), appended after the block is applied;
//! - the **transaction index** (`-txs`, an immutable archive): transaction id → (height, position),
//!   at disk-resident cost (Commonware's freezer), so memory does not grow with history.
//!
//! Plus the [`Snapshots`] of the state. Memory keeps only the state and a window of recent blocks
//! ([`crate::replica::Finalized`]); anything older is read from here on demand.
//!
//! Invariants:
//! - `executed` and `txs` never run ahead of `blocks`; a snapshot at height `s` is written only
//!   after `executed` is committed and `txs` synced through `s`, so after any crash both cover at
//!   least the snapshot, and the blocks after it replay deterministically to the same records
//!   (a record already present is left as is; an index entry already present is a no-op).
//! - Restart = load the newest snapshot whose state root matches the root the block journal
//!   committed to at its height, then replay only the later blocks. A snapshot that fails any
//!   check is ignored (with a warning) in favour of an older one or genesis: a bad snapshot costs
//!   time, never correctness. `deai ledger verify` still replays from genesis, over the API.

use crate::{
    block::{Block, BlockCfg, BlockDigest, StoredBlock},
    error::ChainError,
    handle::{Applied, FinalizedBlock},
    replica::Finalized,
    snapshot::{Restored, Snapshots},
    telemetry::{Telemetry, set_count},
};
use commonware_codec::RangeCfg;
use commonware_cryptography::{Digestible as _, blake3};
use commonware_runtime::{Clock, Metrics, Storage, buffer::paged::CacheRef};
use commonware_storage::{
    archive::{Archive as _, Identifier, immutable},
    journal::contiguous::{Contiguous as _, variable},
};
use commonware_utils::{NZU16, NZU64, NZUsize, sync::RwLock};
use deai_ledger::{Event, Receipt, State, TxId};
use prometheus_client::metrics::gauge::Gauge;
use serde::{Deserialize, Serialize};
use std::{num::NonZeroUsize, sync::Arc};
use tracing::{info, warn};

/// The block journal.
pub(crate) type BlockJournal<E> = variable::Journal<E, StoredBlock>;
type ExecJournal<E> = variable::Journal<E, Vec<u8>>;
type TxArchive<E> = immutable::Archive<E, blake3::Digest, (u64, u32)>;

/// The largest executed record accepted when reading (a full block's receipts as JSON).
const EXEC_RECORD_MAX: usize = 256 << 20;
const WRITE_BUFFER: NonZeroUsize = NZUsize!(1 << 20);
const REPLAY_BUFFER: NonZeroUsize = NZUsize!(1 << 20);
/// Blocks read per batch while replaying.
const REPLAY_BATCH: u64 = 64;

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

/// What applying a block did, as kept in the executed journal.
#[derive(Serialize, Deserialize)]
struct ExecRecord {
    receipts: Vec<Receipt>,
    events: Vec<Event>,
    state_root: deai_ledger::Digest,
}

/// The durable history of one validator (owned by the executor task).
pub(crate) struct History<E: Storage + Clock + Metrics> {
    blocks: BlockJournal<E>,
    executed: ExecJournal<E>,
    txs: TxArchive<E>,
    snapshots: Snapshots<E>,
    policy: SnapshotPolicy,
    /// Transactions in blocks `1..=height recorded`.
    tx_seq: u64,
    /// Height and `tx_seq` of the newest snapshot.
    snapshot_at: (u64, u64),
    /// Exported height of the newest snapshot.
    snapshot_gauge: Gauge,
}

fn history_error(what: &str, e: impl std::fmt::Display) -> ChainError {
    ChainError::History(format!("{what}: {e}"))
}

fn tx_key(id: &TxId) -> blake3::Digest {
    blake3::Digest(id.0)
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
        let blocks = BlockJournal::init(
            context.child("journal"),
            variable::Config {
                partition: format!("{prefix}-blocks"),
                items_per_section: NZU64!(1024),
                compression: None,
                codec_config: cfg.clone(),
                page_cache: page_cache.clone(),
                write_buffer: WRITE_BUFFER,
                replay_buffer: REPLAY_BUFFER,
            },
        )
        .await?;
        let executed = ExecJournal::init(
            context.child("executed"),
            variable::Config {
                partition: format!("{prefix}-executed"),
                items_per_section: NZU64!(1024),
                compression: Some(3),
                codec_config: (RangeCfg::from(..=EXEC_RECORD_MAX), ()),
                page_cache: page_cache.clone(),
                write_buffer: WRITE_BUFFER,
                replay_buffer: REPLAY_BUFFER,
            },
        )
        .await?;
        let txs = TxArchive::init(context.child("txs"), tx_archive_config(prefix, &page_cache))
            .await
            .map_err(|e| history_error("open transaction index", e))?;
        let (snapshots, restored) = Snapshots::load(context.child("snapshot"), prefix).await?;
        let mut history = Self {
            blocks,
            executed,
            txs,
            snapshots,
            policy,
            tx_seq: 0,
            snapshot_at: (0, 0),
            snapshot_gauge: telemetry.snapshot_height.metric().clone(),
        };
        let durable = history.blocks.bounds().end;
        let recorded = history.executed.bounds().end;
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
                history.snapshot_at = (r.height, r.tx_seq);
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
        Ok((history, finalized))
    }

    /// A restored snapshot is used only if its root is the one the journal committed to.
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
                "snapshot does not match the block journal; replaying from genesis"
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
        let mut next = finalized.height() + 1;
        while next <= durable {
            let end = (next + REPLAY_BATCH).min(durable + 1);
            let positions: Vec<u64> = (next - 1..end - 1).collect();
            let stored = self.blocks.read_many(&positions).await?;
            for (stored, height) in stored.iter().zip(next..end) {
                let applied = replay_one(finalized, stored, height)?;
                if height > recorded {
                    self = self.append_exec(&applied).await?;
                }
                self = self.index_txs(&applied).await?;
            }
            next = end;
        }
        Ok(self)
    }

    /// Appends a finalized block durably (before it is applied).
    pub(crate) async fn persist(mut self, stored: &StoredBlock) -> Result<Self, ChainError> {
        let (blocks, _) = self.blocks.append(stored).await?;
        self.blocks = blocks.commit().await?;
        Ok(self)
    }

    /// Records what applying a block did, and snapshots the state when one is due.
    pub(crate) async fn record(
        self,
        block: &FinalizedBlock,
        finalized: &RwLock<Finalized>,
    ) -> Result<Self, ChainError> {
        let me = self.append_exec(block).await?.index_txs(block).await?;
        let (at_height, at_seq) = me.snapshot_at;
        let due = block.height - at_height >= me.policy.every_blocks
            || me.tx_seq - at_seq >= me.policy.every_txs;
        if !due {
            return Ok(me);
        }
        let mut me = me.sync_derived().await?;
        let snapshot = finalized.read().state.snapshot();
        me.snapshots
            .write(block.height, me.tx_seq, &snapshot)
            .await?;
        me.snapshot_at = (block.height, me.tx_seq);
        set_count(&me.snapshot_gauge, block.height);
        Ok(me)
    }

    async fn append_exec(mut self, block: &FinalizedBlock) -> Result<Self, ChainError> {
        let record = ExecRecord {
            receipts: block.receipts.clone(),
            events: block.events.clone(),
            state_root: block.state_root,
        };
        let bytes =
            serde_json::to_vec(&record).map_err(|e| history_error("encode executed record", e))?;
        let (executed, _) = self.executed.append(&bytes).await?;
        self.executed = executed;
        Ok(self)
    }

    /// Indexes a block's transactions (an entry already present is left as is).
    async fn index_txs(mut self, block: &FinalizedBlock) -> Result<Self, ChainError> {
        for (position, tx) in block.txs.iter().enumerate() {
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

    /// Makes the executed journal and the transaction index durable (before a snapshot).
    async fn sync_derived(mut self) -> Result<Self, ChainError> {
        self.executed = self.executed.commit().await?;
        self.txs = self
            .txs
            .sync()
            .await
            .map_err(|e| history_error("sync transaction index", e))?;
        Ok(self)
    }

    async fn read_block(&self, height: u64) -> Result<StoredBlock, ChainError> {
        Ok(self.blocks.read(height - 1).await?)
    }

    async fn read_exec(&self, height: u64) -> Result<ExecRecord, ChainError> {
        let bytes = self.executed.read(height - 1).await?;
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
        };
        Ok((
            digest,
            FinalizedBlock::from_applied(block, &digest, applied),
        ))
    }

    /// An old block (the replica's window answers for recent ones), if finalized here.
    pub(crate) async fn block(&self, height: u64) -> Result<Option<FinalizedBlock>, ChainError> {
        if height == 0 || height > self.executed.bounds().end {
            return Ok(None);
        }
        Ok(Some(self.finalized_block(height).await?.1))
    }

    /// The digest of the block at `height` (1-based), if durable here.
    pub(crate) async fn digest_at(&self, height: u64) -> Result<Option<BlockDigest>, ChainError> {
        if height == 0 || height > self.blocks.bounds().end {
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

/// Applies one journaled block during restart, checking it links to what is applied.
fn replay_one(
    finalized: &mut Finalized,
    stored: &StoredBlock,
    height: u64,
) -> Result<Arc<FinalizedBlock>, ChainError> {
    let block: &Block = &stored.block;
    let fail = |reason: String| ChainError::Replay { height, reason };
    if block.height != height {
        return Err(fail(format!(
            "journal position holds height {}",
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
    Ok(finalized.apply(block, block.digest(), &sig_ok, stored.finalized_at_ms))
}

fn tx_archive_config(prefix: &str, page_cache: &CacheRef) -> immutable::Config<((), ())> {
    immutable::Config {
        metadata_partition: format!("{prefix}-txs-metadata"),
        freezer_table_partition: format!("{prefix}-txs-freezer-table"),
        freezer_table_initial_size: 65_536,
        freezer_table_resize_frequency: 4,
        freezer_table_resize_chunk_size: 16_384,
        freezer_key_partition: format!("{prefix}-txs-freezer-key"),
        freezer_key_page_cache: page_cache.clone(),
        freezer_value_partition: format!("{prefix}-txs-freezer-value"),
        freezer_value_target_size: 64 << 20,
        freezer_value_compression: None,
        ordinal_partition: format!("{prefix}-txs-ordinal"),
        items_per_section: NZU64!(65_536),
        codec_config: ((), ()),
        replay_buffer: REPLAY_BUFFER,
        freezer_key_write_buffer: WRITE_BUFFER,
        freezer_value_write_buffer: WRITE_BUFFER,
        ordinal_write_buffer: WRITE_BUFFER,
    }
}
