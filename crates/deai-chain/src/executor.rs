//! Execution of finalized blocks, and the journal that makes them durable.
//!
//! Marshal delivers finalized blocks in height order, at least once. For each block the
//! executor:
//! 1. ignores it (but acknowledges) if that height is already applied: application is
//!    idempotent per height, and a redelivery after a restart is expected;
//! 2. appends it to the block journal (position `height - 1`) and commits the journal, which
//!    fsyncs: from here on the block, and so the state it produces, survives a crash;
//! 3. applies it to the ledger state, with signature results cached from mempool admission
//!    or proposal verification, and updates the index and the mempool;
//! 4. acknowledges it to marshal, which then records the height as processed.
//!
//! Recovery: [`open_journal`] replays every journaled block from genesis into a fresh state,
//! verifying signatures again, so a restarted replica resumes at its last durable height with
//! the same state root. A block marshal processed but the journal lost cannot exist, because
//! marshal hears of a block only after step 2.

use crate::{
    application::height_of,
    block::{Block, BlockCfg, StoredBlock},
    error::ChainError,
    replica::{Finalized, Shared},
};
use commonware_consensus::marshal::Update;
use commonware_cryptography::Digestible as _;
use commonware_runtime::{Clock, Metrics, Storage, buffer::paged::CacheRef};
use commonware_storage::journal::contiguous::{Contiguous as _, variable};
use commonware_utils::{Acknowledgement as _, NZU16, NZU64, NZUsize};
use futures::{StreamExt as _, channel::mpsc};
use std::{sync::Arc, time::Duration};
use tracing::{error, info};

/// The block journal.
pub(crate) type BlockJournal<E> = variable::Journal<E, StoredBlock>;

/// Opens the journal under `prefix` and replays its blocks into `finalized`.
pub(crate) async fn open_journal<E>(
    context: E,
    prefix: &str,
    cfg: BlockCfg,
    finalized: &mut Finalized,
) -> Result<BlockJournal<E>, ChainError>
where
    E: Storage + Clock + Metrics,
{
    let journal = BlockJournal::init(
        context,
        variable::Config {
            partition: format!("{prefix}-blocks"),
            items_per_section: NZU64!(1024),
            compression: None,
            codec_config: cfg,
            page_cache: CacheRef::new(NZU16!(4096), NZUsize!(256)),
            write_buffer: NZUsize!(1 << 20),
            replay_buffer: NZUsize!(1 << 20),
        },
    )
    .await?;
    let bounds = journal.bounds();
    for position in bounds {
        let stored = journal.read(position).await?;
        replay_one(finalized, &stored, position)?;
    }
    if finalized.height() > 0 {
        info!(height = finalized.height(), root = %finalized.state.root(), "replayed block journal");
    }
    Ok(journal)
}

fn replay_one(
    finalized: &mut Finalized,
    stored: &StoredBlock,
    position: u64,
) -> Result<(), ChainError> {
    let block = &stored.block;
    let height = position + 1;
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
    finalized.apply(block, block.digest(), &sig_ok, stored.finalized_at_ms);
    Ok(())
}

/// Runs until marshal's channel closes or storage fails. `delay` stalls before each block
/// (fault injection for tests; zero otherwise).
pub(crate) async fn run<E>(
    clock: E,
    shared: Arc<Shared>,
    mut journal: BlockJournal<E>,
    mut updates: mpsc::Receiver<Update<Block>>,
    delay: Duration,
) where
    E: Storage + Clock + Metrics,
{
    while let Some(update) = updates.next().await {
        shared.telemetry.executor_queue_blocks.dec();
        let Update::Block(block, ack) = update else {
            continue;
        };
        if !delay.is_zero() {
            clock.sleep(delay).await;
        }
        let height = height_of(&block);
        let (applied, known) = {
            let f = shared.finalized.read();
            (f.height(), f.digest_at(height))
        };
        if height <= applied {
            if known != Some(block.digest()) {
                error!(
                    height,
                    "marshal delivered a block conflicting with the applied chain"
                );
                return;
            }
            ack.acknowledge();
            continue;
        }
        if height != applied + 1 {
            error!(
                height,
                applied, "marshal skipped heights; refusing to apply out of order"
            );
            return;
        }
        let finalized_at_ms = (shared.now_ms)();
        let stored = StoredBlock {
            block: block.inner_shared(),
            finalized_at_ms,
        };
        journal = match persist(journal, &stored).await {
            Ok(j) => j,
            Err(e) => {
                error!(height, error = %e, "cannot persist finalized block; halting execution");
                return;
            }
        };
        let sig_ok = shared.signature_results(block.inner());
        let applied =
            shared
                .finalized
                .write()
                .apply(block.inner(), block.digest(), &sig_ok, finalized_at_ms);
        shared.after_apply(&applied);
        ack.acknowledge();
    }
}

async fn persist<E: Storage + Clock + Metrics>(
    journal: BlockJournal<E>,
    stored: &StoredBlock,
) -> Result<BlockJournal<E>, commonware_storage::journal::Error> {
    let (journal, _) = journal.append(stored).await?;
    journal.commit().await
}
