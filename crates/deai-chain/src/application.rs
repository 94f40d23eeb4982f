//! The application consensus drives: building blocks from the mempool, verifying proposals,
//! and receiving finalized blocks from marshal.
//!
//! Proposal and verification both work against the state *after the parent block*, which this
//! replica has only once the parent is finalized and applied. So a leader waits for its parent
//! to be applied before building (its proposal carries the parent's state root), and a
//! validator waits likewise before checking a proposal's parent state root. With one validator
//! this serializes blocks (propose → finalize → apply → propose); big blocks keep throughput up.
//!
//! A leader whose mempool holds nothing executable (empty, or only gapped nonces) waits up to
//! `block_idle_wait` for a transaction it can run before proposing an empty block, so an idle chain advances at a modest pace without spinning, and a
//! transaction arriving at an idle chain is proposed at once.

use crate::{
    block::{Block, BlockDigest},
    engine::MAX_PENDING_ACKS,
    replica::Shared,
};
use commonware_actor::Feedback;
use commonware_consensus::{
    Application, Heightable as _, Reporter,
    marshal::{Update, ancestry::Ancestry},
    simplex::{scheme::ed25519::Scheme, types::Context},
};
use commonware_cryptography::{Digested, Digestible as _, ed25519};
use commonware_runtime::{Clock, Metrics, Spawner};
use deai_ledger::Address;
use futures::{StreamExt as _, channel::mpsc};
use prometheus_client::metrics::gauge::Gauge;
use rand_core_010::CryptoRng;
use std::{
    sync::Arc,
    time::{Duration, UNIX_EPOCH},
};
use tracing::{debug, warn};

/// The consensus context of a proposal.
pub(crate) type Ctx = Context<BlockDigest, ed25519::PublicKey>;

/// An ed25519 consensus key as a ledger address.
pub(crate) fn address_of(key: &ed25519::PublicKey) -> Address {
    let mut out = [0u8; 32];
    out.copy_from_slice(key.as_ref());
    Address(out)
}

/// Milliseconds since the Unix epoch on the runtime's clock.
pub(crate) fn now_ms(clock: &impl Clock) -> u64 {
    clock
        .current()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Builds and verifies blocks for consensus.
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) shared: Arc<Shared>,
    pub(crate) txs_max: usize,
    pub(crate) block_bytes_max: usize,
    pub(crate) idle_wait: Duration,
}

impl App {
    /// Whether the mempool holds a transaction the next block could run (some sender's next
    /// nonce on the finalized state).
    fn has_executable(&self) -> bool {
        let finalized = self.shared.finalized.read();
        self.shared
            .mempool
            .lock()
            .has_executable(|s| finalized.state.account(s).nonce)
    }

    /// Waits until the block at `height` is applied here; returns whether the applied block at
    /// that height is `digest` (false: the parent is not on the finalized chain).
    async fn await_applied(&self, height: u64, digest: &BlockDigest) -> Option<bool> {
        let mut rx = self.shared.height_tx.subscribe();
        rx.wait_for(|h| *h >= height).await.ok()?;
        let applied = self.shared.finalized.read().digest_at(height)?;
        Some(applied == *digest)
    }

    async fn build<E: Clock + CryptoRng>(
        &self,
        clock: &mut E,
        leader: &ed25519::PublicKey,
        parent: &Digested<Block>,
    ) -> Option<Block> {
        let parent_height = parent.inner().height;
        if !self.await_applied(parent_height, &parent.digest()).await? {
            debug!(
                parent_height,
                "parent is not finalized here; skipping proposal"
            );
            return None;
        }
        // Wait for work a block can do: a pool of gapped nonces (or of senders whose earlier
        // transaction failed) is not, and proposing at once for it made the chain spin.
        let deadline = clock.current() + self.idle_wait;
        while !self.has_executable() && clock.current() < deadline {
            commonware_macros::select! {
                _ = self.shared.tx_arrived.notified() => {},
                _ = clock.sleep_until(deadline) => {},
            }
        }
        let finalized = self.shared.finalized.read();
        if finalized.height() != parent_height {
            return None; // a competing block finalized meanwhile
        }
        let txs: Vec<_> = self
            .shared
            .mempool
            .lock()
            .select(self.txs_max, self.block_bytes_max, |s| {
                finalized.state.account(s).nonce
            })
            .into_iter()
            .map(|p| p.tx)
            .collect();
        let mut entropy = [0u8; 32];
        clock.fill_bytes(&mut entropy);
        Some(Block::new(
            parent.digest(),
            parent_height + 1,
            address_of(leader),
            finalized.state.root(),
            now_ms(clock),
            entropy,
            txs,
        ))
    }

    async fn check(
        &self,
        ctx: &Ctx,
        digested: &Digested<Block>,
        parent: &Digested<Block>,
    ) -> Option<bool> {
        let block = digested.inner();
        let parent_height = parent.inner().height;
        if block.proposer != address_of(&ctx.leader) {
            warn!(height = block.height, "proposer is not the view's leader");
            return Some(false);
        }
        if block.txs().len() > self.txs_max || block.txs_bytes() > self.block_bytes_max {
            return Some(false);
        }
        if !self.await_applied(parent_height, &parent.digest()).await? {
            return Some(false); // conflicts with the finalized chain: can never finalize
        }
        let root = self.shared.finalized.read().root_at(parent_height)?;
        if block.parent_state_root != root {
            warn!(
                height = block.height,
                "proposal carries a wrong parent state root"
            );
            return Some(false);
        }
        // Verify signatures now (in one batch) so execution does not have to.
        let results = self.shared.signature_results(block);
        self.shared.remember_signatures(block, &results);
        Some(true)
    }
}

impl<E> Application<E> for App
where
    E: Clock + Spawner + Metrics + CryptoRng,
{
    type SigningScheme = Scheme;
    type Context = Ctx;
    type Block = Block;
    type Input = ();

    async fn propose(
        &mut self,
        (mut clock, ctx): (E, Ctx),
        mut ancestry: impl Ancestry<Block>,
        _input: (),
    ) -> Option<Digested<Block>> {
        let parent = ancestry.next().await?;
        let block = self.build(&mut clock, &ctx.leader, &parent).await?;
        let digest = block.digest();
        debug!(height = block.height, txs = block.txs().len(), "proposing");
        Some(Digested::precomputed(block, digest))
    }

    async fn verify(&mut self, (_, ctx): (E, Ctx), mut ancestry: impl Ancestry<Block>) -> bool {
        let Some(block) = ancestry.next().await else {
            return false;
        };
        let Some(parent) = ancestry.next().await else {
            return false;
        };
        // `None` means we are shutting down: never resolve rather than vote wrongly.
        match self.check(&ctx, &block, &parent).await {
            Some(valid) => valid,
            None => futures::future::pending().await,
        }
    }
}

/// Receives marshal's ordered finalized blocks and hands them to the executor task.
///
/// The channel is bounded without backpressure, because marshal already bounds it:
/// - marshal dispatches an [`Update::Block`] only while fewer than `max_pending_acks`
///   ([`MAX_PENDING_ACKS`]) dispatched blocks wait for their acknowledgement
///   (`commonware_consensus::marshal::core::Actor::try_dispatch_blocks`, which loops on
///   `PendingAcks::has_capacity`), and the executor acknowledges a block only after taking it
///   off this channel, storing and applying it. So at most `MAX_PENDING_ACKS` blocks are
///   ever in the channel, its capacity.
/// - [`Update::Tip`] is not acknowledged, so marshal sends one per new finalized tip however far
///   the executor lags (a slow disk, a replica catching up). The executor has no use for tips,
///   so they are not forwarded; an unbounded channel would hold them all.
///
/// A full channel thus means marshal broke its window. Dropping the block would drop its
/// acknowledgement too, which stops marshal with the block unprocessed (it stays in marshal's
/// archive and is delivered again after a restart): the chain halts rather than skip a block.
/// That cannot happen silently, so it is a panic: a broken invariant, not an expected error.
#[derive(Clone)]
pub(crate) struct Finalizer {
    pub(crate) sender: mpsc::Sender<Update<Block>>,
    /// Blocks in the channel (exported as `deai_executor_queue_blocks`).
    pub(crate) queued: Gauge,
}

impl Reporter for Finalizer {
    type Activity = Update<Block>;

    fn report(&mut self, activity: Update<Block>) -> Feedback {
        if matches!(activity, Update::Tip(..)) {
            return Feedback::Ok;
        }
        match self.sender.try_send(activity) {
            Ok(()) => {
                self.queued.inc();
                Feedback::Ok
            }
            Err(e) if e.is_disconnected() => Feedback::Closed,
            Err(_) => panic!(
                "marshal sent more than {MAX_PENDING_ACKS} unacknowledged finalized blocks; \
                 refusing to drop one"
            ),
        }
    }
}

/// Checks heights line up with what marshal delivers (used by the executor).
pub(crate) fn height_of(block: &Digested<Block>) -> u64 {
    block.height().get()
}
