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
//! 5. records what applying it did in the history (executed records, transaction index) and
//!    writes a state snapshot when one is due (see [`crate::history`]).
//!
//! Recovery: [`crate::history::History::open`] restores the newest snapshot and replays the
//! stored blocks after it, verifying signatures again, so a restarted replica resumes at its
//! last durable height with the same state root. A block marshal processed but the block store lost
//! cannot exist, because marshal hears of a block only after step 2.
//!
//! The executor owns the history, so it also answers reads of old blocks and transactions
//! between blocks; blocks always go first.

use crate::{
    application::height_of,
    block::{Block, StoredBlock},
    handle::TxStatus,
    history::History,
    replica::{HistoryRead, Shared},
};
use commonware_consensus::marshal::Update;
use commonware_cryptography::Digestible as _;
use commonware_runtime::{Clock, Metrics, Storage};
use commonware_utils::Acknowledgement as _;
use deai_ledger::TxId;
use futures::{StreamExt as _, channel::mpsc};
use std::{sync::Arc, time::Duration};
use tracing::error;

/// Runs until marshal's channel closes or storage fails. `delay` stalls before each block
/// (fault injection for tests; zero otherwise).
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
    loop {
        futures::select_biased! {
            update = updates.next() => {
                let Some(update) = update else { return };
                history = match execute(&clock, &shared, history, update, delay).await {
                    Some(history) => history,
                    None => return,
                };
            }
            read = reads.next() => {
                if let Some(read) = read {
                    serve(&shared, &history, read).await;
                }
            }
        }
    }
}

/// Executes one update; `None` when execution must halt.
async fn execute<E>(
    clock: &E,
    shared: &Shared,
    history: History<E>,
    update: Update<Block>,
    delay: Duration,
) -> Option<History<E>>
where
    E: Storage + Clock + Metrics,
{
    shared.telemetry.executor_queue_blocks.dec();
    let Update::Block(block, ack) = update else {
        return Some(history);
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
        return Some(history);
    }
    if height != applied + 1 {
        error!(
            height,
            applied, "marshal skipped heights; refusing to apply out of order"
        );
        return None;
    }
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
    let sig_ok = shared.signature_results(block.inner());
    let applied =
        shared
            .finalized
            .write()
            .apply(block.inner(), block.digest(), &sig_ok, finalized_at_ms);
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
    shared.forget_signatures(block.inner());
    ack.acknowledge();
    match history.record(&applied, &shared.finalized).await {
        Ok(h) => Some(h),
        Err(e) => {
            error!(height, error = %e, "cannot record the executed block; halting execution");
            None
        }
    }
}

/// Answers one read of the history (a failed read answers `None` and is logged).
async fn serve<E>(shared: &Shared, history: &History<E>, read: HistoryRead)
where
    E: Storage + Clock + Metrics,
{
    match read {
        HistoryRead::Block(height, reply) => {
            let block = history.block(height).await.unwrap_or_else(|e| {
                error!(height, error = %e, "cannot read a finalized block");
                None
            });
            let _ = reply.send(block.map(Arc::new));
        }
        HistoryRead::Tx(id, reply) => {
            let _ = reply.send(tx_status(shared, history, &id).await);
        }
    }
}

async fn tx_status<E>(shared: &Shared, history: &History<E>, id: &TxId) -> Option<TxStatus>
where
    E: Storage + Clock + Metrics,
{
    let (height, index) = match history.tx(id).await {
        Ok(found) => found?,
        Err(e) => {
            error!(tx = %id, error = %e, "cannot read the transaction index");
            return None;
        }
    };
    let recent = shared.finalized.read().recent_block(height);
    let block = match recent {
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
