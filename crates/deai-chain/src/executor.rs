//! Execution of finalized blocks, and the reads of history older than the replica's window.
//!
//! Marshal delivers finalized blocks in height order, at least once. For each block the
//! executor:
//! 1. ignores it (but acknowledges) if that height is already applied: application is
//!    idempotent per height, and a redelivery after a restart is expected;
//! 2. writes it to the block store (index = height) and syncs the store, which fsyncs: from
//!    here on the block, and so the state it produces, survives a crash;
//! 3. applies it to the ledger state, with signature results cached from mempool admission
//!    or proposal verification, and updates the window and the mempool;
//! 4. acknowledges it to marshal, which then records the height as processed;
//! 5. later, behind the applied tip (see [`run`]), records what applying it did in the history
//!    (executed records, transaction index) and writes a state snapshot when one is due (see
//!    [`crate::history`]; the snapshot itself is taken right after the block is applied).
//!
//! Recovery: [`crate::history::History::open`] restores the newest snapshot and replays the
//! stored blocks after it, verifying signatures again, so a restarted replica resumes at its
//! last durable height with the same state root. A block marshal processed but the block store lost
//! cannot exist, because marshal hears of a block only after step 2.
//!
//! The executor owns the history, so it also answers reads of old blocks and transactions
//! between blocks; blocks always go first, then reads, then records.

use crate::{
    application::{height_of, ms_since},
    block::{Block, StoredBlock},
    handle::FinalizedBlock,
    handle::TxStatus,
    history::{Backlog, History},
    replica::{HistoryRead, Shared},
};
use commonware_consensus::marshal::Update;
use commonware_cryptography::Digestible as _;
use commonware_runtime::{Clock, Metrics, Storage};
use commonware_utils::Acknowledgement as _;
use deai_ledger::TxId;
use futures::{StreamExt as _, channel::mpsc};
use std::{sync::Arc, time::Duration};
use tracing::{debug, error};

/// Most applied blocks whose records may wait (reads of them are answered from memory).
const RECORD_LAG_MAX: usize = 64;
/// Index entries written between looks at marshal's channel and the reads.
const RECORD_CHUNK: usize = 64;

/// What the executor does next.
enum Next {
    Update(Option<Update<Block>>),
    Read(Option<HistoryRead>),
    Record,
}

/// Runs until marshal's channel closes or storage fails. `delay` stalls before each block
/// (fault injection for tests; zero otherwise).
///
/// Recording an applied block (its executed record, one index entry per transaction, now and
/// then a snapshot) costs several times what applying it does, and nothing waits for it: readers
/// find recent blocks in the replica's window. So records are written behind the applied tip, in
/// chunks, while no block or read waits; at most [`RECORD_LAG_MAX`] blocks behind, and reads of
/// blocks not recorded yet are answered from the [`Backlog`]. A crash loses nothing: the blocks
/// are durable, and replay rewrites the missing records.
pub(crate) async fn run<E>(
    clock: E,
    shared: Arc<Shared>,
    mut history: History<E>,
    mut updates: mpsc::Receiver<Update<Block>>,
    mut reads: mpsc::Receiver<HistoryRead>,
    delay: Duration,
) where
    E: Storage + Clock + Metrics,
{
    let mut backlog = Backlog::default();
    loop {
        let next = if backlog.len() >= RECORD_LAG_MAX {
            Next::Record
        } else if backlog.is_empty() {
            futures::select_biased! {
                update = updates.next() => Next::Update(update),
                read = reads.next() => Next::Read(read),
            }
        } else {
            futures::select_biased! {
                update = updates.next() => Next::Update(update),
                read = reads.next() => Next::Read(read),
                default => Next::Record,
            }
        };
        match next {
            Next::Update(None) => {
                // Shutting down: finish what is pending, so a restart has less to replay.
                while !backlog.is_empty() {
                    history = match record(&clock, history, &mut backlog).await {
                        Some(h) => h,
                        None => return,
                    };
                }
                return;
            }
            Next::Update(Some(update)) => {
                let applied;
                (history, applied) = match execute(&clock, &shared, history, update, delay).await {
                    Some(done) => done,
                    None => return,
                };
                if let Some(block) = applied {
                    backlog.push(history.unrecorded(block, &shared.finalized));
                }
            }
            Next::Read(Some(read)) => serve(&shared, &history, &backlog, read).await,
            Next::Read(None) => {}
            Next::Record => {
                history = match record(&clock, history, &mut backlog).await {
                    Some(h) => h,
                    None => return,
                };
            }
        }
    }
}

/// Records the next chunk of the oldest unrecorded block; `None` when storage failed.
async fn record<E>(clock: &E, history: History<E>, backlog: &mut Backlog) -> Option<History<E>>
where
    E: Storage + Clock + Metrics,
{
    history
        .record_some(clock, backlog, RECORD_CHUNK)
        .await
        .inspect_err(|e| error!(error = %e, "cannot record an executed block; halting execution"))
        .ok()
}

/// Executes one update: the history, and the block if it was applied now; `None` when execution
/// must halt.
async fn execute<E>(
    clock: &E,
    shared: &Shared,
    history: History<E>,
    update: Update<Block>,
    delay: Duration,
) -> Option<(History<E>, Option<Arc<FinalizedBlock>>)>
where
    E: Storage + Clock + Metrics,
{
    shared.telemetry.executor_queue_blocks.dec();
    let Update::Block(block, ack) = update else {
        return Some((history, None));
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
        let known = match known {
            Some(d) => Some(d),
            None => history.digest_at(height).await.unwrap_or_else(|e| {
                error!(height, error = %e, "cannot read an applied block");
                None
            }),
        };
        if known != Some(block.digest()) {
            error!(
                height,
                "marshal delivered a block conflicting with the applied chain"
            );
            return None;
        }
        ack.acknowledge();
        return Some((history, None));
    }
    if height != applied + 1 {
        error!(
            height,
            applied, "marshal skipped heights; refusing to apply out of order"
        );
        return None;
    }
    let started = clock.current();
    let finalized_at_ms = (shared.now_ms)();
    let stored = StoredBlock {
        block: block.inner_shared(),
        finalized_at_ms,
    };
    let history = match history.persist(&stored, block.digest()).await {
        Ok(h) => h,
        Err(e) => {
            error!(height, error = %e, "cannot persist finalized block; halting execution");
            return None;
        }
    };
    let persist_ms = ms_since(clock, started);
    // Executed already when this replica built or checked the block's child: take that result
    // (unless a proposal still holds the state; then execute again).
    let executed = shared
        .speculated
        .lock()
        .take(&block.digest())
        .and_then(|e| {
            let state = Arc::try_unwrap(e.state).ok()?;
            Some((state, Arc::unwrap_or_clone(e.outcome)))
        });
    let sig_ok = if executed.is_some() {
        Vec::new()
    } else {
        shared.signature_results(block.inner())
    };
    let reused = executed.is_some();
    let applied = shared.finalized.write().apply(
        block.inner(),
        block.digest(),
        &sig_ok,
        finalized_at_ms,
        executed,
    );
    // A block that chose the next epoch's set makes its certificates verifiable here before
    // marshal hears of the next block.
    if shared
        .finalized
        .read()
        .state
        .params()
        .chooses_next_set(height)
    {
        let installed = {
            let f = shared.finalized.read();
            shared
                .schemes
                .install_from(&f.state, f.state.params().epoch_of(height) + 1)
        };
        if let Err(e) = installed {
            error!(height, error = %e, "the chosen validator set is unusable; halting execution");
            return None;
        }
    }
    shared.after_apply(&applied);
    shared.speculated.lock().forget_through(height);
    shared.forget_signatures(block.inner());
    ack.acknowledge();
    debug!(
        height,
        txs = block.inner().txs().len(),
        persist_ms,
        apply_ms = ms_since(clock, started),
        reused,
        "executed a finalized block"
    );
    Some((history, Some(applied)))
}

/// Answers one read of the history (a failed read answers `None` and is logged).
async fn serve<E>(shared: &Shared, history: &History<E>, backlog: &Backlog, read: HistoryRead)
where
    E: Storage + Clock + Metrics,
{
    match read {
        HistoryRead::Block(height, reply) => {
            if let Some(block) = backlog.block(height) {
                let _ = reply.send(Some(block));
                return;
            }
            let block = history.block(height).await.unwrap_or_else(|e| {
                error!(height, error = %e, "cannot read a finalized block");
                None
            });
            let _ = reply.send(block.map(Arc::new));
        }
        HistoryRead::Tx(id, reply) => {
            let _ = reply.send(tx_status(shared, history, backlog, &id).await);
        }
    }
}

async fn tx_status<E>(
    shared: &Shared,
    history: &History<E>,
    backlog: &Backlog,
    id: &TxId,
) -> Option<TxStatus>
where
    E: Storage + Clock + Metrics,
{
    let (height, index) = match backlog.tx(id) {
        Some(found) => found,
        None => match history.tx(id).await {
            Ok(found) => found?,
            Err(e) => {
                error!(tx = %id, error = %e, "cannot read the transaction index");
                return None;
            }
        },
    };
    let recent = shared.finalized.read().recent_block(height);
    let block = match recent.or_else(|| backlog.block(height)) {
        Some(b) => b,
        None => Arc::new(history.block(height).await.ok()??),
    };
    let receipt = block.receipts.get(usize::try_from(index).ok()?)?.clone();
    Some(TxStatus::Finalized {
        height,
        index,
        receipt,
    })
}
