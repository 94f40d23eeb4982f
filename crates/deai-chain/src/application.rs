//! The application consensus drives: building blocks from the mempool, verifying proposals,
//! and receiving finalized blocks from marshal.
//!
//! Proposal and verification both work against the state *after the parent block* (a proposal
//! carries its parent's state root). Simplex asks the next leader to propose as soon as the
//! parent is notarized, before it finalizes, so leader and verifiers compute the parent's state
//! themselves by executing its unfinalized ancestors on a copy of the applied state
//! (`App::parent_state`): the next block is built and checked while the parent finalizes, is
//! stored and applied, instead of after. The computed state is kept by block digest, so each
//! block is executed speculatively once per replica, and again when the executor applies it.
//!
//! A leader whose mempool holds nothing executable (empty, or only gapped nonces) waits up to
//! `block_idle_wait` for a transaction it can run before proposing an empty block, so an idle
//! chain advances at a modest pace without spinning, and a transaction arriving at an idle
//! chain is proposed at once.

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
use commonware_cryptography::{Digested, Digestible, ed25519};
use commonware_runtime::{Clock, Metrics, Spawner};
use deai_ledger::{Address, BlockOutcome, State};
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

/// Milliseconds from `since` to now on the runtime's clock (for logs).
pub(crate) fn ms_since(clock: &impl Clock, since: std::time::SystemTime) -> u128 {
    clock
        .current()
        .duration_since(since)
        .map_or(0, |d| d.as_millis())
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
    Speculative(Arc<State>),
    /// The parent is not on the finalized chain (or its ancestry could not be read).
    Conflicting,
}

/// Most unfinalized ancestors a validator executes to find a parent's state (consensus keeps
/// far fewer views in flight).
const SPECULATIVE_BLOCKS_MAX: usize = 64;

/// Most speculative states kept. Each is a copy of the ledger state, and the executor drops them
/// as their blocks are applied, so normally one or two are held; proposals that never finalize
/// leave at most this many behind.
const SPECULATED_MAX: usize = 8;

/// A block's execution on a copy of the state: the state after it and what it produced.
pub(crate) struct Execution {
    pub(crate) state: Arc<State>,
    pub(crate) outcome: Arc<BlockOutcome>,
}

/// Executions of recent blocks not applied yet, by block digest: computed once for the first
/// proposal (or vote) that builds on the block, reused by the next, and taken by the executor
/// when the block finalizes, so a block is executed once per replica on the normal path.
#[derive(Default)]
pub(crate) struct Speculated {
    states: std::collections::VecDeque<(BlockDigest, Execution)>,
}

impl Speculated {
    fn get(&self, digest: &BlockDigest) -> Option<Arc<State>> {
        self.states
            .iter()
            .find(|(d, _)| d == digest)
            .map(|(_, e)| e.state.clone())
    }

    fn insert(&mut self, digest: BlockDigest, execution: Execution) {
        if self.get(&digest).is_some() {
            return;
        }
        if self.states.len() >= SPECULATED_MAX {
            self.states.pop_front();
        }
        self.states.push_back((digest, execution));
    }

    /// Takes the execution of `digest`, if computed.
    pub(crate) fn take(&mut self, digest: &BlockDigest) -> Option<Execution> {
        let at = self.states.iter().position(|(d, _)| d == digest)?;
        self.states.remove(at).map(|(_, e)| e)
    }

    /// Forgets the executions of heights up to `height`: applied, the replica holds the real
    /// thing.
    pub(crate) fn forget_through(&mut self, height: u64) {
        self.states.retain(|(_, e)| e.state.height() > height);
    }
}

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

    /// The state after `parent`, for a proposal building on it or a vote on such a proposal.
    ///
    /// A parent already applied here needs nothing computed. A parent not finalized yet is
    /// executed, with its unfinalized ancestors, on a copy of the applied state: simplex asks
    /// the next leader to propose as soon as the parent is notarized, so waiting for its
    /// finalization, storage and execution would leave every validator idle for that long in
    /// each block. It is also required for liveness: a notarized block can miss its own
    /// finalization for good (with a quorum of exactly 2f + 1 honest validators up, one that
    /// nullified the view before seeing the notarization never votes to finalize it) and then
    /// finalizes only through a descendant. Executing blocks is deterministic, so every honest
    /// validator computes the same root, and the executor later applies the same blocks to the
    /// same result. Computed states are kept by block digest ([`Speculated`]), so a block is
    /// executed speculatively once however many proposals build on it.
    async fn parent_state(
        &self,
        clock: &impl Clock,
        parent: &Digested<Block>,
        ancestry: &mut impl Ancestry<Block>,
    ) -> ParentState {
        let (tip_height, tip) = {
            let f = self.shared.finalized.read();
            let parent_height = parent.inner().height;
            if parent_height <= f.height() {
                return if f.digest_at(parent_height) == Some(parent.digest()) {
                    ParentState::Applied
                } else {
                    ParentState::Conflicting
                };
            }
            let Some(tip) = f.digest_at(f.height()) else {
                return ParentState::Conflicting;
            };
            (f.height(), tip)
        };
        if let Some(state) = self.shared.speculated.lock().get(&parent.digest()) {
            return ParentState::Speculative(state);
        }
        // Newest first: the blocks to execute, down to the tip's child or a computed state.
        let mut chain = vec![parent.clone()];
        let mut computed = None;
        while let Some(oldest) = chain.last().filter(|b| b.inner().height > tip_height + 1) {
            let want = oldest.inner().parent;
            if let Some(state) = self.shared.speculated.lock().get(&want) {
                computed = Some(state);
                break;
            }
            if chain.len() >= SPECULATIVE_BLOCKS_MAX {
                return ParentState::Conflicting;
            }
            match ancestry.next().await {
                Some(block) if block.digest() == want => chain.push(block),
                _ => return ParentState::Conflicting,
            }
        }
        let mut state = match computed {
            Some(state) => State::clone(&state),
            None => {
                let joins_tip = chain
                    .last()
                    .is_some_and(|b| b.inner().height == tip_height + 1 && b.inner().parent == tip);
                if !joins_tip {
                    return ParentState::Conflicting;
                }
                let f = self.shared.finalized.read();
                let (applied, parent_height) = (f.height(), parent.inner().height);
                if applied >= parent_height {
                    return if f.digest_at(parent_height) == Some(parent.digest()) {
                        ParentState::Applied
                    } else {
                        ParentState::Conflicting
                    };
                }
                if applied > tip_height {
                    // Applied meanwhile: the state already holds the chain up to `applied`
                    // (newest first, the block at `applied` is at this index).
                    let at = usize::try_from(parent_height - applied).unwrap_or(usize::MAX);
                    if chain.get(at).map(Digestible::digest) != f.digest_at(applied) {
                        return ParentState::Conflicting;
                    }
                    chain.truncate(at);
                }
                f.state.clone()
            }
        };
        let started = clock.current();
        let mut outcome = None;
        for block in chain.iter().rev() {
            let sig_ok = self.shared.signature_results(block.inner());
            self.shared.remember_signatures(block.inner(), &sig_ok);
            outcome = Some(
                state.apply_block_verified(&block.inner().to_ledger(&block.digest()), &sig_ok),
            );
        }
        debug!(
            parent_height = parent.inner().height,
            blocks = chain.len(),
            ms = ms_since(clock, started),
            "computed an unfinalized parent's state"
        );
        let state = Arc::new(state);
        if let Some(outcome) = outcome {
            self.shared.speculated.lock().insert(
                parent.digest(),
                Execution {
                    state: state.clone(),
                    outcome: Arc::new(outcome),
                },
            );
        }
        ParentState::Speculative(state)
    }

    async fn build<E: Clock + CryptoRng>(
        &self,
        clock: &mut E,
        ctx: &Ctx,
        parent: &Digested<Block>,
        ancestry: &mut impl Ancestry<Block>,
    ) -> Option<Block> {
        let parent_height = parent.inner().height;
        let asked = clock.current();
        let base = self.parent_state(clock, parent, ancestry).await;
        let parent_wait_ms = ms_since(clock, asked);
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
        debug!(
            height = parent_height + 1,
            parent_wait_ms,
            build_ms = ms_since(clock, asked),
            speculative = matches!(base, ParentState::Speculative(_)),
            "built a proposal"
        );
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
        clock: &impl Clock,
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
        let asked = clock.current();
        let root = match self.parent_state(clock, parent, ancestry).await {
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
        let parent_wait_ms = ms_since(clock, asked);
        // Verify signatures now (in one batch) so execution does not have to.
        let results = self.shared.signature_results(block);
        self.shared.remember_signatures(block, &results);
        debug!(
            height = block.height,
            txs = block.txs().len(),
            parent_wait_ms,
            verify_ms = ms_since(clock, asked),
            "verified a proposal"
        );
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

    async fn verify(&mut self, (clock, ctx): (E, Ctx), mut ancestry: impl Ancestry<Block>) -> bool {
        let Some(block) = ancestry.next().await else {
            return false;
        };
        let Some(parent) = ancestry.next().await else {
            return false;
        };
        // `None` means we are shutting down: never resolve rather than vote wrongly.
        match self
            .check(&clock, &ctx, &block, &parent, &mut ancestry)
            .await
        {
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
