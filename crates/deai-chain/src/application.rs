//! The application consensus drives: building blocks from the mempool, verifying proposals,
//! and receiving finalized blocks from marshal.
//!
//! Proposal and verification both work against the state *after the parent block*, which this
//! replica has only once the parent is finalized and applied. So a leader waits for its parent
//! to be applied before building (its proposal carries the parent's state root), and a
//! validator waits likewise before checking a proposal's parent state root. With one validator
//! this serializes blocks (propose → finalize → apply → propose); big blocks keep throughput up.
//!
//! The exception: a parent that consensus notarized but could not finalize in its own view
//! finalizes only through a child, so waiting for it would halt the chain. Once a view has been
//! skipped since the parent's, leader and verifiers compute the parent's state themselves, by
//! executing its unfinalized ancestors on a copy of the applied state (`App::parent_state`).
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
    Application, Heightable as _, Reporter, Viewable as _,
    marshal::{Update, ancestry::Ancestry},
    simplex::{scheme::ed25519::Scheme, types::Context},
};
use commonware_cryptography::{Digested, Digestible as _, ed25519};
use commonware_runtime::{Clock, Metrics, Spawner};
use deai_ledger::{Address, State};
use futures::{StreamExt as _, channel::mpsc};
use prometheus_client::metrics::gauge::Gauge;
use rand_core_010::CryptoRng;
use std::{
    sync::{Arc, atomic::Ordering},
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

/// The state a proposal builds on, or is verified against: the state after its parent.
enum ParentState {
    /// The parent is applied here: the replica's finalized state at the parent's height.
    Applied,
    /// The parent is not finalized yet: the applied state advanced through the parent and its
    /// other unfinalized ancestors.
    Speculative(Box<State>),
    /// The parent is not on the finalized chain (or its ancestry could not be read).
    Conflicting,
}

/// Most unfinalized ancestors a validator executes to find a parent's state (consensus keeps
/// far fewer views in flight).
const SPECULATIVE_BLOCKS_MAX: usize = 64;

impl App {
    /// Whether the mempool holds a transaction a block on `base` could run (some sender's next
    /// nonce).
    fn has_executable(&self, base: &ParentState) -> bool {
        if let ParentState::Speculative(state) = base {
            return self
                .shared
                .mempool
                .lock()
                .has_executable(|s| state.account(s).nonce);
        }
        // Lock order as everywhere: the finalized state, then the mempool.
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

    /// The state after `parent` for a proposal in the view of `ctx`; `None` when shutting down.
    ///
    /// Normally the parent finalizes in its own view and this waits for it to be applied. But a
    /// notarized block can miss its own finalization for good (with a quorum of exactly 2f + 1
    /// honest validators up, one that nullified the view before seeing the notarization never
    /// votes to finalize it) and then finalizes only through a descendant: waiting for it would
    /// stop the chain. So once consensus has skipped a view since the parent (every leader that
    /// waited timed out), the parent's state is computed instead, by executing its unfinalized
    /// ancestors on a copy of the applied state. Executing blocks is deterministic, so every
    /// honest validator computes the same root, and the executor later applies the same blocks
    /// to the same result.
    async fn parent_state(
        &self,
        ctx: &Ctx,
        parent: &Digested<Block>,
        ancestry: &mut impl Ancestry<Block>,
    ) -> Option<ParentState> {
        let parent_height = parent.inner().height;
        let skipped_a_view = ctx.view().get() > ctx.parent.0.get().saturating_add(1);
        if skipped_a_view && parent_height > self.shared.finalized.read().height() {
            return Some(self.speculate(parent, ancestry).await);
        }
        let on_finalized_chain = self.await_applied(parent_height, &parent.digest()).await?;
        Some(if on_finalized_chain {
            ParentState::Applied
        } else {
            ParentState::Conflicting
        })
    }

    /// Executes `parent` and its ancestors above the applied tip on a copy of the applied state.
    async fn speculate(
        &self,
        parent: &Digested<Block>,
        ancestry: &mut impl Ancestry<Block>,
    ) -> ParentState {
        let (mut state, tip_height, tip) = {
            let f = self.shared.finalized.read();
            let parent_height = parent.inner().height;
            if parent_height <= f.height() {
                // It was applied meanwhile.
                return if f.digest_at(parent_height) == Some(parent.digest()) {
                    ParentState::Applied
                } else {
                    ParentState::Conflicting
                };
            }
            let Some(tip) = f.digest_at(f.height()) else {
                return ParentState::Conflicting;
            };
            (f.state.clone(), f.height(), tip)
        };
        let mut chain = vec![parent.clone()];
        while let Some(oldest) = chain.last().filter(|b| b.inner().height > tip_height + 1) {
            let want = oldest.inner().parent;
            if chain.len() >= SPECULATIVE_BLOCKS_MAX {
                return ParentState::Conflicting;
            }
            match ancestry.next().await {
                Some(block) if block.digest() == want => chain.push(block),
                _ => return ParentState::Conflicting,
            }
        }
        let joins_tip = chain
            .last()
            .is_some_and(|b| b.inner().height == tip_height + 1 && b.inner().parent == tip);
        if !joins_tip {
            return ParentState::Conflicting;
        }
        for block in chain.iter().rev() {
            let sig_ok = self.shared.signature_results(block.inner());
            self.shared.remember_signatures(block.inner(), &sig_ok);
            state.apply_block_verified(&block.inner().to_ledger(&block.digest()), &sig_ok);
        }
        debug!(
            parent_height = parent.inner().height,
            blocks = chain.len(),
            "computed an unfinalized parent's state"
        );
        ParentState::Speculative(Box::new(state))
    }

    async fn build<E: Clock + CryptoRng>(
        &self,
        clock: &mut E,
        ctx: &Ctx,
        parent: &Digested<Block>,
        ancestry: &mut impl Ancestry<Block>,
    ) -> Option<Block> {
        let parent_height = parent.inner().height;
        let base = self.parent_state(ctx, parent, ancestry).await?;
        if matches!(base, ParentState::Conflicting) {
            debug!(
                parent_height,
                "parent is not on the finalized chain here; skipping proposal"
            );
            return None;
        }
        // Wait for work a block can do: a pool of gapped nonces (or of senders whose earlier
        // transaction failed) is not, and proposing at once for it made the chain spin.
        // A reader waiting for the block that certifies the state it read (a light client)
        // asks for one (`Handle::request_block`): proposed once at least a tenth of the idle
        // wait has passed, so requests make at most ten empty blocks per idle wait.
        let started = clock.current();
        let deadline = started + self.idle_wait;
        let earliest_requested = started + self.idle_wait / 10;
        while !self.has_executable(&base) && clock.current() < deadline {
            if self.shared.block_requested.load(Ordering::Relaxed) {
                clock.sleep_until(earliest_requested).await;
                break;
            }
            commonware_macros::select! {
                _ = self.shared.tx_arrived.notified() => {},
                _ = clock.sleep_until(deadline) => {},
            }
        }
        self.shared.block_requested.store(false, Ordering::Relaxed);
        let (root, txs) = if let ParentState::Speculative(state) = &base {
            let pool = self.shared.mempool.lock();
            let txs = pool.select(self.txs_max, self.block_bytes_max, |s| {
                state.account(s).nonce
            });
            (state.root(), txs)
        } else {
            let finalized = self.shared.finalized.read();
            if finalized.height() != parent_height {
                return None; // a competing block finalized meanwhile
            }
            let txs = self
                .shared
                .mempool
                .lock()
                .select(self.txs_max, self.block_bytes_max, |s| {
                    finalized.state.account(s).nonce
                });
            (finalized.state.root(), txs)
        };
        let mut entropy = [0u8; 32];
        clock.fill_bytes(&mut entropy);
        Some(Block::new(
            parent.digest(),
            parent_height + 1,
            address_of(&ctx.leader),
            root,
            now_ms(clock),
            entropy,
            txs.into_iter().map(|p| p.tx).collect(),
        ))
    }

    async fn check(
        &self,
        ctx: &Ctx,
        digested: &Digested<Block>,
        parent: &Digested<Block>,
        ancestry: &mut impl Ancestry<Block>,
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
        let root = match self.parent_state(ctx, parent, ancestry).await? {
            // Conflicts with the finalized chain: can never finalize.
            ParentState::Conflicting => return Some(false),
            ParentState::Applied => self.shared.finalized.read().root_at(parent_height)?,
            ParentState::Speculative(state) => state.root(),
        };
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
        let block = self.build(&mut clock, &ctx, &parent, &mut ancestry).await?;
        #[cfg(feature = "test-utils")]
        let block = crate::faults::tampered(&ctx, block);
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
        match self.check(&ctx, &block, &parent, &mut ancestry).await {
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
