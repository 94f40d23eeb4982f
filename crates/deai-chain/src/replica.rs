//! The local replica: the finalized ledger state, a window of recent finalized blocks with their
//! receipts, and the mempool, shared by consensus tasks and [`crate::Handle`]. Older blocks and
//! the full transaction index live on disk ([`crate::history`]), read through the executor.
//!
//! Invariants:
//! - `state` is the result of applying blocks `1..=height` to the genesis state in order; the
//!   window holds a contiguous run of blocks ending at `height` (empty right after a restore from
//!   a snapshot, until the next block), at least [`WINDOW_BLOCKS_MIN`] of them once that many
//!   were applied since; `tip` is the digest at `height` in every case.
//! - Every applied block is durable in the block store before it is applied here, so whatever a
//!   reader sees survives a crash.
//! - `recent_txs` maps the id of every transaction in the window to its position.
//! - Every mempool transaction passed the ledger's stateless checks (its signature included),
//!   so at execution its signature result is known without verifying again.

use crate::{
    block::{Block, BlockDigest},
    error::MempoolError,
    handle::{Applied, ChainMetrics, FinalizedBlock, TxStatus},
    mempool::{Dropped, Mempool, PoolTx, SenderState},
    telemetry::{Telemetry, set_count},
};
use commonware_utils::sync::{Mutex, RwLock};
use deai_ledger::{Address, SignedTx, State, TxBody, TxError, TxId};
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Arc,
};

/// A mempool entry: the transaction with its id, size and cost computed once.
#[derive(Clone, Debug)]
pub(crate) struct PooledTx {
    pub(crate) tx: SignedTx,
    id: TxId,
    size: usize,
    cost: u128,
}

impl PooledTx {
    pub(crate) fn new(tx: SignedTx) -> Self {
        let size = tx.encode().len();
        let id = tx.id();
        let cost = tx.tx.fee.saturating_add(amount_out(&tx.tx.body));
        Self { tx, id, size, cost }
    }
}

/// What a body moves out of its sender's balance besides the fee, where the body says so
/// (every kind that debits the sender in the ledger); zero for the rest.
fn amount_out(body: &TxBody) -> u128 {
    match body {
        TxBody::Transfer(t) => t.amount,
        TxBody::Stake(s) => s.amount,
        TxBody::TaskCreate(t) => t.reward,
        TxBody::OfferCreate(o) => o.bond,
        TxBody::OfferUpdate(o) => o.bond_top_up,
        TxBody::ChannelOpen(c) => c.deposit,
        TxBody::ChannelTopUp(c) => c.amount,
        _ => 0,
    }
}

impl PoolTx for PooledTx {
    type Id = TxId;
    type Sender = Address;
    fn id(&self) -> TxId {
        self.id
    }
    fn sender(&self) -> Address {
        self.tx.tx.sender
    }
    fn nonce(&self) -> u64 {
        self.tx.tx.nonce
    }
    fn fee(&self) -> u128 {
        self.tx.tx.fee
    }
    fn size(&self) -> usize {
        self.size
    }
    fn cost(&self) -> u128 {
        self.cost
    }
}

/// A bounded first-in-first-out set of ids, for remembering recent facts cheaply.
#[derive(Debug)]
pub(crate) struct BoundedMap<V> {
    map: HashMap<TxId, V>,
    order: VecDeque<TxId>,
    cap: usize,
}

impl<V> BoundedMap<V> {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap,
        }
    }

    pub(crate) fn insert(&mut self, id: TxId, v: V) {
        if self.map.insert(id, v).is_none() {
            self.order.push_back(id);
            while self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }

    pub(crate) fn get(&self, id: &TxId) -> Option<&V> {
        self.map.get(id)
    }

    /// Forgets `id` (its place in the insertion order goes when it reaches the front).
    pub(crate) fn remove(&mut self, id: &TxId) {
        self.map.remove(id);
    }
}

/// Finality latency samples: totals plus a window of recent samples for quantiles.
#[derive(Debug, Default)]
pub(crate) struct Latency {
    pub(crate) count: u64,
    pub(crate) sum_ms: u64,
    pub(crate) recent: VecDeque<u64>,
    pub(crate) last_ms: Option<u64>,
}

const LATENCY_WINDOW: usize = 8192;

impl Latency {
    fn record(&mut self, ms: u64) {
        self.count += 1;
        self.sum_ms = self.sum_ms.saturating_add(ms);
        self.last_ms = Some(ms);
        self.recent.push_back(ms);
        if self.recent.len() > LATENCY_WINDOW {
            self.recent.pop_front();
        }
    }

    /// The `q`-quantile (0..=100) of the recent window.
    pub(crate) fn quantile(&self, q: u64) -> Option<u64> {
        if self.recent.is_empty() {
            return None;
        }
        let mut v: Vec<u64> = self.recent.iter().copied().collect();
        v.sort_unstable();
        let idx = ((v.len() - 1) as u64 * q / 100) as usize;
        v.get(idx).copied()
    }
}

fn gauge_value(g: &prometheus_client::metrics::gauge::Gauge) -> u64 {
    u64::try_from(g.get()).unwrap_or(0)
}

/// Fewest recent blocks the replica keeps in memory (more than marshal may redeliver).
pub(crate) const WINDOW_BLOCKS_MIN: usize = 8;
/// Beyond [`WINDOW_BLOCKS_MIN`] blocks, the window keeps at most this many transactions; older
/// blocks are read from the [`crate::history::History`] on disk.
const WINDOW_TXS_MAX: usize = 20_000;
/// And at most this many blocks (an idle chain still makes empty blocks).
const WINDOW_BLOCKS_MAX: usize = 1024;

/// The finalized part of the replica (behind one lock so readers see a consistent height): the
/// state, and a window of recent blocks. Memory does not grow with history.
pub(crate) struct Finalized {
    pub(crate) state: State,
    pub(crate) genesis_root: deai_ledger::Digest,
    pub(crate) genesis_digest: BlockDigest,
    height: u64,
    /// The digest of the block at `height` (the genesis digest at 0), known even when the
    /// window is empty right after a restore.
    tip: BlockDigest,
    recent: VecDeque<(BlockDigest, Arc<FinalizedBlock>)>,
    recent_txs: HashMap<TxId, (u64, u32)>,
}

impl Finalized {
    /// The replica at genesis.
    pub(crate) fn new(state: State, genesis_digest: BlockDigest) -> Self {
        let genesis_root = state.root();
        Self::restored(state, genesis_root, genesis_digest, 0, genesis_digest)
    }

    /// The replica with `state` at `height` (restored from a snapshot), whose block is `tip`; its
    /// window starts empty and fills with the blocks applied from here.
    pub(crate) fn restored(
        state: State,
        genesis_root: deai_ledger::Digest,
        genesis_digest: BlockDigest,
        height: u64,
        tip: BlockDigest,
    ) -> Self {
        Self {
            state,
            genesis_root,
            genesis_digest,
            height,
            tip,
            recent: VecDeque::new(),
            recent_txs: HashMap::new(),
        }
    }

    /// The last applied height.
    pub(crate) fn height(&self) -> u64 {
        self.height
    }

    fn recent_entry(&self, height: u64) -> Option<&(BlockDigest, Arc<FinalizedBlock>)> {
        let first = self.recent.front()?.1.height;
        self.recent
            .get(usize::try_from(height.checked_sub(first)?).ok()?)
    }

    /// A recent block, if still in the window.
    pub(crate) fn recent_block(&self, height: u64) -> Option<Arc<FinalizedBlock>> {
        self.recent_entry(height).map(|(_, b)| b.clone())
    }

    /// A recent transaction's block height, position and receipt, if still in the window.
    pub(crate) fn recent_tx(&self, id: &TxId) -> Option<(u64, u32, deai_ledger::Receipt)> {
        let &(height, index) = self.recent_txs.get(id)?;
        let block = self.recent_block(height)?;
        let receipt = block.receipts.get(usize::try_from(index).ok()?)?.clone();
        Some((height, index, receipt))
    }

    /// The state root after `height`, if it is genesis, the tip, or in the window.
    pub(crate) fn root_at(&self, height: u64) -> Option<deai_ledger::Digest> {
        match height {
            0 => Some(self.genesis_root),
            h if h == self.height => Some(self.state.root()),
            h => self.recent_entry(h).map(|(_, b)| b.state_root),
        }
    }

    /// The digest of the finalized block at `height`, if it is genesis or in the window.
    pub(crate) fn digest_at(&self, height: u64) -> Option<BlockDigest> {
        match height {
            0 => Some(self.genesis_digest),
            h if h == self.height => Some(self.tip),
            h => self.recent_entry(h).map(|(d, _)| *d),
        }
    }

    /// Adds a block to the window (the next height after the window's last) and trims the window.
    pub(crate) fn push_recent(&mut self, digest: BlockDigest, block: Arc<FinalizedBlock>) {
        for (i, tx) in block.txs.iter().enumerate() {
            let index = u32::try_from(i).expect("block tx count fits u32");
            // A transaction included again (a leader replaying it; the ledger rejects the copy)
            // keeps its first place, as in the index on disk: a transaction reported applied
            // must not turn into a rejected one.
            self.recent_txs
                .entry(tx.id())
                .or_insert((block.height, index));
        }
        self.recent.push_back((digest, block));
        while self.recent.len() > WINDOW_BLOCKS_MIN
            && (self.recent_txs.len() > WINDOW_TXS_MAX || self.recent.len() > WINDOW_BLOCKS_MAX)
        {
            let Some((_, old)) = self.recent.pop_front() else {
                break;
            };
            for tx in &old.txs {
                self.recent_txs.remove(&tx.id());
            }
        }
    }

    /// Applies the next finalized block. `sig_ok[i]` says whether transaction `i`'s signature
    /// verifies. `executed`: the block already executed on a copy of this state (speculatively,
    /// to build or check its child), whose result is taken as is. Panics if `block` is not the
    /// next height: callers check that first.
    pub(crate) fn apply(
        &mut self,
        block: &Block,
        digest: BlockDigest,
        sig_ok: &[bool],
        finalized_at_ms: u64,
        executed: Option<(State, deai_ledger::BlockOutcome)>,
    ) -> Arc<FinalizedBlock> {
        assert_eq!(
            block.height,
            self.height() + 1,
            "blocks apply in height order"
        );
        let parent_state_root = self.state.root();
        let outcome = match executed {
            Some((state, outcome)) if state.height() == block.height => {
                self.state = state;
                outcome
            }
            _ => self
                .state
                .apply_block_verified(&block.to_ledger(&digest), sig_ok),
        };
        let params = self.state.params();
        let set_proof = params
            .chooses_next_set(block.height)
            .then(|| {
                let next = params.epoch_of(block.height) + 1;
                self.state.prove(&deai_ledger::StateKey::Epoch(next))
            })
            .flatten();
        let finalized = Arc::new(FinalizedBlock::from_applied(
            block,
            &digest,
            Applied {
                receipts: outcome.receipts,
                events: outcome.events,
                parent_state_root,
                state_root: outcome.root,
                finalized_at_ms,
                set_proof,
            },
        ));
        self.height = block.height;
        self.tip = digest;
        self.push_recent(digest, finalized.clone());
        finalized
    }
}

/// Everything shared between consensus tasks and handles.
pub(crate) struct Shared {
    pub(crate) finalized: RwLock<Finalized>,
    pub(crate) mempool: Mutex<Mempool<PooledTx>>,
    pub(crate) pool_meta: Mutex<PoolMeta>,
    /// States after notarized blocks not applied yet ([`crate::application`]).
    pub(crate) speculated: Mutex<crate::application::Speculated>,
    pub(crate) height_tx: tokio::sync::watch::Sender<u64>,
    pub(crate) tx_arrived: tokio::sync::Notify,
    /// Someone waits for the next block (a light client certifying what it read): an idle
    /// leader proposes early ([`crate::Handle::request_block`]).
    pub(crate) block_requested: std::sync::atomic::AtomicBool,
    /// Peers the last gossip message (a heartbeat every second when idle) reached.
    pub(crate) peers: std::sync::atomic::AtomicUsize,
    /// The epoch this replica runs (or follows).
    pub(crate) epoch: std::sync::atomic::AtomicU64,
    /// Each epoch's certificate scheme ([`crate::epochs`]).
    pub(crate) schemes: crate::epochs::EpochSchemes,
    pub(crate) now_ms: Box<dyn Fn() -> u64 + Send + Sync>,
    pub(crate) telemetry: Telemetry,
    /// Requests for history older than the window, served by the executor.
    pub(crate) reads: futures::channel::mpsc::Sender<HistoryRead>,
    /// Transactions admitted through the API, for the other validators ([`crate::gossip`]).
    pub(crate) gossip: tokio::sync::mpsc::Sender<SignedTx>,
    /// Requests to the blob exchange, when this validator has a blob store
    /// ([`crate::blob_exchange`]).
    pub(crate) blobs: Option<tokio::sync::mpsc::Sender<crate::blob_exchange::Command>>,
}

/// A read of the history on disk.
pub(crate) enum HistoryRead {
    /// The block at a height.
    Block(
        u64,
        futures::channel::oneshot::Sender<Option<Arc<FinalizedBlock>>>,
    ),
    /// Where a transaction finalized, with its receipt.
    Tx(TxId, futures::channel::oneshot::Sender<Option<TxStatus>>),
}

/// Book-keeping around the mempool: admission times, signatures known good, dropped txs,
/// and counters.
#[derive(Debug)]
pub(crate) struct PoolMeta {
    pub(crate) submitted_at: HashMap<TxId, u64>,
    pub(crate) sig_verified: BoundedMap<bool>,
    pub(crate) dropped: BoundedMap<(String, String)>,
    pub(crate) rejected_by_code: BTreeMap<String, u64>,
    pub(crate) latency: Latency,
    pub(crate) finalized_txs: u64,
}

impl PoolMeta {
    /// `block_txs_max`: the chain's largest block. Verified signatures wait only between a
    /// proposal's verification and its execution, a few blocks at most; two blocks' worth (at
    /// least 16,384) bounds them whatever happens to proposals that never finalize.
    pub(crate) fn new(block_txs_max: usize) -> Self {
        Self {
            submitted_at: HashMap::new(),
            sig_verified: BoundedMap::new(block_txs_max.saturating_mul(2).max(1 << 14)),
            dropped: BoundedMap::new(1 << 16),
            rejected_by_code: BTreeMap::new(),
            latency: Latency::default(),
            finalized_txs: 0,
        }
    }

    pub(crate) fn count_rejected(&mut self, code: &str) {
        *self.rejected_by_code.entry(code.to_string()).or_default() += 1;
    }
}

impl Shared {
    /// Records how many peers the last gossip message reached ([`crate::gossip`]).
    pub(crate) fn set_peers(&self, n: usize) {
        self.peers.store(n, std::sync::atomic::Ordering::Relaxed);
        set_count(&self.telemetry.peers, n);
    }

    /// Admits a transaction to the mempool after the ledger's checks.
    pub(crate) fn submit(&self, tx: SignedTx) -> Result<TxId, MempoolError> {
        let pooled = PooledTx::new(tx);
        let id = pooled.id;
        let outcome = self.admit(pooled, false);
        let result = self.book(&mut self.pool_meta.lock(), (self.now_ms)(), id, outcome);
        self.admitted_some(result.is_ok());
        result
    }

    /// Admits many transactions in order, verifying their signatures together (ed25519 batches in
    /// parallel chunks) and booking the outcomes under one lock: the same verdicts as submitting
    /// them one by one, at a fraction of the cost per transaction.
    pub(crate) fn submit_batch(&self, txs: Vec<SignedTx>) -> Vec<Result<TxId, MempoolError>> {
        let signed_ok = self.verify_unless_known(&txs);
        let outcomes: Vec<_> = txs
            .into_iter()
            .zip(signed_ok)
            .map(|(tx, ok)| {
                let pooled = PooledTx::new(tx);
                let id = pooled.id;
                let outcome = if ok {
                    self.admit(pooled, true)
                } else {
                    Err(MempoolError::Invalid(deai_ledger::TxError::BadSignature {
                        sender: pooled.sender(),
                    }))
                };
                (id, outcome)
            })
            .collect();
        let now = (self.now_ms)();
        let results: Vec<_> = {
            let mut meta = self.pool_meta.lock();
            outcomes
                .into_iter()
                .map(|(id, outcome)| self.book(&mut meta, now, id, outcome))
                .collect()
        };
        self.admitted_some(results.iter().any(Result::is_ok));
        results
    }

    /// Records when an admitted transaction arrived and what it evicted, or why it was refused.
    fn book(
        &self,
        meta: &mut PoolMeta,
        now_ms: u64,
        id: TxId,
        outcome: Result<Vec<TxId>, MempoolError>,
    ) -> Result<TxId, MempoolError> {
        match outcome {
            Ok(evicted) => {
                meta.submitted_at.insert(id, now_ms);
                for victim in evicted {
                    self.record_dropped(meta, victim, Dropped::Evicted);
                }
                Ok(id)
            }
            Err(e) => {
                self.count_rejected(meta, e.code());
                Err(e)
            }
        }
    }

    /// After admissions: the mempool gauge and one wake-up for the proposer.
    fn admitted_some(&self, any: bool) {
        if any {
            set_count(&self.telemetry.mempool_txs, self.mempool.lock().len());
            self.tx_arrived.notify_one();
        }
    }

    /// Counts a rejected transaction in the replica's book and in the exported metric.
    pub(crate) fn count_rejected(&self, meta: &mut PoolMeta, code: &str) {
        meta.count_rejected(code);
        self.telemetry.reject(code);
    }

    /// `signature_checked`: the caller already verified the signature (in a batch).
    fn admit(&self, pooled: PooledTx, signature_checked: bool) -> Result<Vec<TxId>, MempoolError> {
        let finalized = self.finalized.read();
        // Older finalized transactions fail the nonce check below: their nonce is spent.
        if let Some((height, _, _)) = finalized.recent_tx(&pooled.id) {
            return Err(MempoolError::AlreadyFinalized { height });
        }
        if self.mempool.lock().contains(&pooled.id) {
            return Err(MempoolError::Pool(crate::mempool::PoolError::Duplicate));
        }
        let account = finalized.state.account(&pooled.sender());
        let sender = SenderState {
            next_nonce: account.nonce,
            balance: account.balance,
        };
        // One signature check either way: `check_tx` includes the stateless checks. A later
        // nonce cannot be checked against state yet; the mempool checks that the balance pays
        // for it with everything the sender has pending.
        match (pooled.nonce() == sender.next_nonce, signature_checked) {
            (true, false) => finalized.state.check_tx(&pooled.tx)?,
            (true, true) => finalized.state.check_tx_verified(&pooled.tx)?,
            (false, false) => finalized.state.check_tx_stateless(&pooled.tx)?,
            (false, true) => finalized.state.check_tx_stateless_verified(&pooled.tx)?,
        }
        let height = finalized.height();
        let admitted = self.mempool.lock().insert(pooled, sender, height)?;
        Ok(admitted
            .replaced
            .into_iter()
            .chain(admitted.evicted)
            .collect())
    }

    /// The status of a transaction as far as memory knows: `None` means it is in no recent
    /// block, not pending and not recently dropped, so only the history on disk can tell.
    pub(crate) fn recent_tx_status(&self, id: &TxId) -> Option<TxStatus> {
        if let Some((height, index, receipt)) = self.finalized.read().recent_tx(id) {
            return Some(TxStatus::Finalized {
                height,
                index,
                receipt,
            });
        }
        if self.mempool.lock().contains(id) {
            return Some(TxStatus::Pending);
        }
        self.pool_meta
            .lock()
            .dropped
            .get(id)
            .map(|(code, reason)| TxStatus::Rejected {
                code: code.clone(),
                reason: reason.clone(),
            })
    }

    /// Asks the executor, which owns the history on disk; `None` if it has stopped.
    pub(crate) async fn read_history<R>(
        &self,
        request: impl FnOnce(futures::channel::oneshot::Sender<R>) -> HistoryRead,
    ) -> Option<R> {
        let (tx, rx) = futures::channel::oneshot::channel();
        let mut reads = self.reads.clone();
        futures::SinkExt::send(&mut reads, request(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Signature results for a block's transactions: known-good ones from admission or an
    /// earlier verification, the rest verified now in one batch.
    pub(crate) fn signature_results(&self, block: &Block) -> Vec<bool> {
        let known: Vec<bool> = {
            let pool = self.mempool.lock();
            let meta = self.pool_meta.lock();
            block
                .txs()
                .iter()
                .map(|tx| {
                    let id = tx.id();
                    pool.contains(&id) || meta.sig_verified.get(&id).copied().unwrap_or(false)
                })
                .collect()
        };
        let unknown: Vec<usize> = (0..known.len()).filter(|&i| !known[i]).collect();
        if unknown.is_empty() {
            return known;
        }
        tracing::debug!(
            height = block.height,
            unknown = unknown.len(),
            "checking signatures not seen before"
        );
        let to_check: Vec<SignedTx> = unknown.iter().map(|&i| block.txs()[i].clone()).collect();
        let checked = deai_ledger::verify_signatures(&to_check);
        let mut out = known;
        for (&i, ok) in unknown.iter().zip(checked) {
            out[i] = ok;
        }
        out
    }

    /// Signature results for `txs`, verifying (in one batch) only those not already found good
    /// in a proposal this validator checked: gossip often brings a transaction after the block
    /// that holds it.
    fn verify_unless_known(&self, txs: &[SignedTx]) -> Vec<bool> {
        let known: Vec<bool> = {
            let meta = self.pool_meta.lock();
            txs.iter()
                .map(|tx| meta.sig_verified.get(&tx.id()) == Some(&true))
                .collect()
        };
        let unknown: Vec<SignedTx> = txs
            .iter()
            .zip(&known)
            .filter(|(_, k)| !**k)
            .map(|(tx, _)| tx.clone())
            .collect();
        let mut checked = deai_ledger::verify_signatures(&unknown).into_iter();
        known
            .into_iter()
            .map(|k| k || checked.next().unwrap_or(false))
            .collect()
    }

    /// Forgets the signature results of an executed block's transactions: they cannot be
    /// included again (their nonces are spent), so keeping them would only grow memory.
    pub(crate) fn forget_signatures(&self, block: &Block) {
        let mut meta = self.pool_meta.lock();
        for tx in block.txs() {
            meta.sig_verified.remove(&tx.id());
        }
    }

    /// Remembers signature results computed while verifying a proposal, so execution does
    /// not verify the same signatures again.
    pub(crate) fn remember_signatures(&self, block: &Block, results: &[bool]) {
        let mut meta = self.pool_meta.lock();
        for (tx, ok) in block.txs().iter().zip(results) {
            meta.sig_verified.insert(tx.id(), *ok);
        }
    }

    /// Marks a pooled transaction as dropped: its status, and the rejection counters.
    fn record_dropped(&self, meta: &mut PoolMeta, id: TxId, why: Dropped) {
        meta.submitted_at.remove(&id);
        meta.dropped
            .insert(id, (why.code().into(), why.reason().into()));
        self.count_rejected(meta, why.code());
    }

    /// After a block is applied: removes the included transactions from the mempool, re-checks
    /// the pooled runs of the block's senders against their new accounts, expires what cannot
    /// run, and records latency and outcomes.
    pub(crate) fn after_apply(&self, block: &FinalizedBlock) {
        let ids: Vec<TxId> = block.txs.iter().map(SignedTx::id).collect();
        let dropped = self.recheck_pool(block, &ids);
        let mut meta = self.pool_meta.lock();
        for (id, why) in dropped {
            self.record_dropped(&mut meta, id, why);
        }
        for (id, receipt) in ids.iter().zip(&block.receipts) {
            if let Some(at) = meta.submitted_at.remove(id) {
                let ms = block.finalized_at_ms.saturating_sub(at);
                meta.latency.record(ms);
                self.telemetry.finality_latency_ms.observe(ms as f64);
            }
            meta.finalized_txs += 1;
            if let Err(e) = &receipt.result {
                self.count_rejected(&mut meta, e.code());
            }
        }
        drop(meta);
        self.telemetry.finalized_txs.inc_by(ids.len() as u64);
        set_count(&self.telemetry.height, block.height);
        self.height_tx.send_replace(block.height);
    }

    /// The mempool's part of [`Self::after_apply`]: touches the block's senders and the
    /// transactions due for expiry only, never the whole pool.
    fn recheck_pool(&self, block: &FinalizedBlock, ids: &[TxId]) -> Vec<(TxId, Dropped)> {
        // Whether each sender had a transaction of its own fail at its next nonce, which the
        // ledger then left unused. A copy with a bad signature, or one whose nonce was already
        // used or not yet due, says nothing of the sender's own transactions: any leader can
        // include such a copy, and counting it would let one empty every sender's pooled run.
        let mut senders: BTreeMap<Address, bool> = BTreeMap::new();
        for (tx, receipt) in block.txs.iter().zip(&block.receipts) {
            let failed_own = matches!(
                &receipt.result,
                Err(e) if !matches!(
                    e,
                    TxError::BadSignature { .. }
                        | TxError::NonceReplayed { .. }
                        | TxError::NonceFuture { .. }
                )
            );
            *senders.entry(tx.tx.sender).or_default() |= failed_own;
        }
        // Lock order as everywhere: the finalized state, then the mempool.
        let finalized = self.finalized.read();
        let mut pool = self.mempool.lock();
        pool.remove_included(ids.iter());
        let mut dropped = Vec::new();
        for (sender, failed) in senders {
            let account = finalized.state.account(&sender);
            let state = SenderState {
                next_nonce: account.nonce,
                balance: account.balance,
            };
            dropped.extend(pool.recheck_sender(&sender, state, failed));
        }
        dropped.extend(pool.expire(finalized.height(), |s| finalized.state.account(s).nonce));
        set_count(&self.telemetry.mempool_txs, pool.len());
        dropped
    }

    /// Counters for Prometheus.
    pub(crate) fn metrics(&self) -> ChainMetrics {
        let (height, state_root) = {
            let f = self.finalized.read();
            (f.height(), f.state.root())
        };
        let mempool_size = self.mempool.lock().len();
        let meta = self.pool_meta.lock();
        ChainMetrics {
            height,
            state_root,
            mempool_size,
            finalized_txs_total: meta.finalized_txs,
            finality_latency_count: meta.latency.count,
            finality_latency_sum_ms: meta.latency.sum_ms,
            finality_latency_p50_ms: meta.latency.quantile(50),
            finality_latency_p99_ms: meta.latency.quantile(99),
            last_finality_latency_ms: meta.latency.last_ms,
            rejected_txs_by_code: meta.rejected_by_code.clone(),
            peers: self.peers.load(std::sync::atomic::Ordering::Relaxed),
            snapshot_height: gauge_value(self.telemetry.snapshot_height.metric()),
            replayed_blocks_at_start: gauge_value(self.telemetry.replayed_blocks.metric()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;
    use crate::block::digest_bytes;
    use deai_ledger::{Genesis, Transfer, Tx, TxBody};
    use ed25519_dalek::SigningKey;

    /// Removed entries are gone at once, and the insertion order they leave behind never lets
    /// the map hold more than its cap.
    #[test]
    fn a_bounded_map_forgets_removed_entries_and_stays_bounded() {
        let id = |i: u8| deai_ledger::Digest([i; 32]);
        let mut m = BoundedMap::new(3);
        for i in 0..3 {
            m.insert(id(i), i);
        }
        m.remove(&id(1));
        assert_eq!(m.get(&id(1)), None);
        assert_eq!(m.get(&id(0)), Some(&0));
        for i in 3..10 {
            m.insert(id(i), i);
            assert!(m.map.len() <= 3 && m.order.len() <= 3);
        }
        assert_eq!(m.get(&id(9)), Some(&9));
        assert_eq!(m.get(&id(0)), None, "oldest evicted");
    }

    /// The mempool counts what a transaction locks from its sender's balance (a channel's deposit)
    /// beside its fee, so a sender cannot queue more than it can pay.
    #[test]
    fn a_pooled_channel_open_costs_its_fee_and_deposit() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let tx = SignedTx::sign(
            Tx {
                chain_id: "cost-test".into(),
                sender: deai_ledger::Address(key.verifying_key().to_bytes()),
                nonce: 0,
                fee: 7,
                body: TxBody::ChannelOpen(deai_ledger::ChannelOpen {
                    offer: 1,
                    deposit: 1_000,
                    expiry_height: 50,
                }),
            },
            &key,
        );
        assert_eq!(PooledTx::new(tx).cost, 1_007);
    }

    fn block(height: u64, txs: Vec<SignedTx>) -> (BlockDigest, Arc<FinalizedBlock>) {
        let digest = commonware_cryptography::blake3::Digest([height as u8; 32]);
        let receipts = txs
            .iter()
            .map(|tx| deai_ledger::Receipt {
                tx_id: tx.id(),
                result: Ok(()),
                events: Vec::new(),
                fee_paid: 0,
            })
            .collect();
        let b = FinalizedBlock {
            height,
            digest: digest_bytes(&digest),
            parent: deai_ledger::Digest([0; 32]),
            proposer: Address([0; 32]),
            timestamp_ms: 0,
            txs,
            receipts,
            events: Vec::new(),
            parent_state_root: deai_ledger::Digest([0; 32]),
            state_root: deai_ledger::Digest([height as u8; 32]),
            finalized_at_ms: 0,
            set_proof: None,
        };
        (digest, Arc::new(b))
    }

    fn finalized() -> Finalized {
        let key = SigningKey::from_bytes(&[1; 32]);
        let genesis = Genesis::dev(Address(key.verifying_key().to_bytes()), Vec::new());
        let state = State::from_genesis(&genesis).unwrap();
        Finalized::new(state, commonware_cryptography::blake3::Digest([0; 32]))
    }

    #[test]
    fn the_window_does_not_grow_with_history() {
        let mut f = finalized();
        let total = WINDOW_BLOCKS_MAX as u64 * 3;
        for h in 1..=total {
            let (d, b) = block(h, Vec::new());
            f.push_recent(d, b);
        }
        assert_eq!(f.recent.len(), WINDOW_BLOCKS_MAX, "empty blocks pile up");
        let oldest = total - WINDOW_BLOCKS_MAX as u64 + 1;
        assert!(f.recent_block(oldest).is_some());
        assert!(
            f.recent_block(oldest - 1).is_none(),
            "an evicted block is still held"
        );
        assert_eq!(f.recent_block(total).unwrap().height, total);
        assert!(f.digest_at(oldest - 1).is_none());
        assert!(f.digest_at(0).is_some(), "genesis is always known");
    }

    /// A replayed transaction (the ledger rejects the copy) is still found where it applied.
    #[test]
    fn a_transaction_included_again_keeps_its_first_place() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let tx = Tx {
            chain_id: "t".into(),
            sender: Address(key.verifying_key().to_bytes()),
            nonce: 0,
            fee: 1,
            body: TxBody::Transfer(Transfer {
                to: Address([9; 32]),
                amount: 1,
            }),
        };
        let tx = SignedTx::sign(tx, &key);
        let mut f = finalized();
        for h in 1..=3 {
            let (d, b) = block(h, vec![tx.clone()]);
            f.push_recent(d, b);
        }
        assert_eq!(f.recent_tx(&tx.id()).map(|(h, i, _)| (h, i)), Some((1, 0)));
    }

    #[test]
    fn a_window_of_full_blocks_keeps_at_most_its_transaction_budget() {
        let key = SigningKey::from_bytes(&[2; 32]);
        let per_block = WINDOW_TXS_MAX / 4 + 1;
        let mut nonce = 0;
        let mut f = finalized();
        let mut first_ids = Vec::new();
        for h in 1..=(WINDOW_BLOCKS_MIN as u64 + 2) {
            let txs: Vec<SignedTx> = (0..per_block)
                .map(|_| {
                    nonce += 1;
                    let tx = Tx {
                        chain_id: "t".into(),
                        sender: Address(key.verifying_key().to_bytes()),
                        nonce,
                        fee: 1,
                        body: TxBody::Transfer(Transfer {
                            to: Address([9; 32]),
                            amount: 1,
                        }),
                    };
                    // The window indexes by id only; a signature would cost time and test nothing.
                    SignedTx {
                        tx,
                        signature: [0; 64],
                    }
                })
                .collect();
            if h == 1 {
                first_ids = txs.iter().map(SignedTx::id).collect();
            }
            let (d, b) = block(h, txs);
            f.push_recent(d, b);
        }
        // Eight full blocks exceed the budget, yet the window keeps its minimum of blocks.
        assert_eq!(f.recent.len(), WINDOW_BLOCKS_MIN);
        assert!(
            f.recent_tx(&first_ids[0]).is_none(),
            "an evicted tx is still indexed"
        );
        assert_eq!(f.recent_txs.len(), WINDOW_BLOCKS_MIN * per_block);
    }
}
