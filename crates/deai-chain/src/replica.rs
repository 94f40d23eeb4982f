//! The local replica: the finalized ledger state, the finalized blocks with their receipts,
//! the transaction index, and the mempool, shared by consensus tasks and [`crate::Handle`].
//!
//! Invariants:
//! - `state.height() == blocks.len()`: block `h` (1-based) is `blocks[h - 1]`, and `state` is
//!   the result of applying blocks `1..=h` to the genesis state in order.
//! - Every block in `blocks` is durable in the journal before it is applied here, so whatever
//!   a reader sees survives a crash.
//! - `tx_index` maps the id of every transaction in `blocks` to its position.
//! - Every mempool transaction passed the ledger's stateless checks (its signature included),
//!   so at execution its signature result is known without verifying again.

use crate::{
    block::{Block, BlockDigest, digest_bytes},
    error::MempoolError,
    handle::{ChainMetrics, FinalizedBlock, TxStatus},
    mempool::{Dropped, Mempool, PoolTx, SenderState},
    telemetry::{Telemetry, set_count},
};
use commonware_utils::sync::{Mutex, RwLock};
use deai_ledger::{Address, SignedTx, State, TxBody, TxId};
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

/// The finalized part of the replica (behind one lock so readers see a consistent height).
pub(crate) struct Finalized {
    pub(crate) state: State,
    pub(crate) genesis_root: deai_ledger::Digest,
    pub(crate) genesis_digest: BlockDigest,
    pub(crate) blocks: Vec<Arc<FinalizedBlock>>,
    pub(crate) digests: Vec<BlockDigest>,
    pub(crate) tx_index: HashMap<TxId, (u64, u32)>,
}

impl Finalized {
    pub(crate) fn new(state: State, genesis_digest: BlockDigest) -> Self {
        let genesis_root = state.root();
        Self {
            state,
            genesis_root,
            genesis_digest,
            blocks: Vec::new(),
            digests: Vec::new(),
            tx_index: HashMap::new(),
        }
    }

    /// The last applied height.
    pub(crate) fn height(&self) -> u64 {
        self.blocks.len() as u64
    }

    /// The state root after `height`, if applied.
    pub(crate) fn root_at(&self, height: u64) -> Option<deai_ledger::Digest> {
        match height {
            0 => Some(self.genesis_root),
            h => self
                .blocks
                .get(usize::try_from(h - 1).ok()?)
                .map(|b| b.state_root),
        }
    }

    /// The digest of the finalized block at `height`, if applied.
    pub(crate) fn digest_at(&self, height: u64) -> Option<BlockDigest> {
        match height {
            0 => Some(self.genesis_digest),
            h => self.digests.get(usize::try_from(h - 1).ok()?).copied(),
        }
    }

    /// Applies the next finalized block. `sig_ok[i]` says whether transaction `i`'s signature
    /// verifies. Panics if `block` is not the next height: callers check that first.
    pub(crate) fn apply(
        &mut self,
        block: &Block,
        digest: BlockDigest,
        sig_ok: &[bool],
        finalized_at_ms: u64,
    ) -> Arc<FinalizedBlock> {
        assert_eq!(
            block.height,
            self.height() + 1,
            "blocks apply in height order"
        );
        let parent_state_root = self.state.root();
        let outcome = self
            .state
            .apply_block_verified(&block.to_ledger(&digest), sig_ok);
        for (i, tx) in block.txs().iter().enumerate() {
            let index = u32::try_from(i).expect("block tx count fits u32");
            self.tx_index.insert(tx.id(), (block.height, index));
        }
        let finalized = Arc::new(FinalizedBlock {
            height: block.height,
            digest: digest_bytes(&digest),
            parent: digest_bytes(&block.parent),
            proposer: block.proposer,
            timestamp_ms: block.timestamp_ms,
            txs: block.txs().to_vec(),
            receipts: outcome.receipts,
            events: outcome.events,
            parent_state_root,
            state_root: outcome.root,
            finalized_at_ms,
        });
        self.blocks.push(finalized.clone());
        self.digests.push(digest);
        finalized
    }
}

/// Everything shared between consensus tasks and handles.
pub(crate) struct Shared {
    pub(crate) finalized: RwLock<Finalized>,
    pub(crate) mempool: Mutex<Mempool<PooledTx>>,
    pub(crate) pool_meta: Mutex<PoolMeta>,
    pub(crate) height_tx: tokio::sync::watch::Sender<u64>,
    pub(crate) tx_arrived: tokio::sync::Notify,
    pub(crate) peers: std::sync::atomic::AtomicUsize,
    pub(crate) now_ms: Box<dyn Fn() -> u64 + Send + Sync>,
    pub(crate) telemetry: Telemetry,
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
    pub(crate) fn new() -> Self {
        Self {
            submitted_at: HashMap::new(),
            sig_verified: BoundedMap::new(1 << 20),
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
    /// Admits a transaction to the mempool after the ledger's checks.
    pub(crate) fn submit(&self, tx: SignedTx) -> Result<TxId, MempoolError> {
        let pooled = PooledTx::new(tx);
        let id = pooled.id;
        let result = self.admit(pooled);
        let mut meta = self.pool_meta.lock();
        match &result {
            Ok(evicted) => {
                meta.submitted_at.insert(id, (self.now_ms)());
                for victim in evicted {
                    self.record_dropped(&mut meta, *victim, Dropped::Evicted);
                }
            }
            Err(e) => self.count_rejected(&mut meta, e.code()),
        }
        drop(meta);
        if result.is_ok() {
            set_count(&self.telemetry.mempool_txs, self.mempool.lock().len());
        }
        result.map(|_| {
            self.tx_arrived.notify_one();
            id
        })
    }

    /// Counts a rejected transaction in the replica's book and in the exported metric.
    pub(crate) fn count_rejected(&self, meta: &mut PoolMeta, code: &str) {
        meta.count_rejected(code);
        self.telemetry.reject(code);
    }

    fn admit(&self, pooled: PooledTx) -> Result<Vec<TxId>, MempoolError> {
        let finalized = self.finalized.read();
        if let Some((height, _)) = finalized.tx_index.get(&pooled.id) {
            return Err(MempoolError::AlreadyFinalized { height: *height });
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
        if pooled.nonce() == sender.next_nonce {
            finalized.state.check_tx(&pooled.tx)?;
        } else {
            finalized.state.check_tx_stateless(&pooled.tx)?;
        }
        let height = finalized.height();
        let admitted = self.mempool.lock().insert(pooled, sender, height)?;
        Ok(admitted
            .replaced
            .into_iter()
            .chain(admitted.evicted)
            .collect())
    }

    /// The status of a transaction.
    pub(crate) fn tx_status(&self, id: &TxId) -> TxStatus {
        {
            let finalized = self.finalized.read();
            if let Some(&(height, index)) = finalized.tx_index.get(id) {
                let block = &finalized.blocks[usize::try_from(height - 1).expect("height fits")];
                let receipt = block.receipts[index as usize].clone();
                return TxStatus::Finalized {
                    height,
                    index,
                    receipt,
                };
            }
        }
        if self.mempool.lock().contains(id) {
            return TxStatus::Pending;
        }
        match self.pool_meta.lock().dropped.get(id) {
            Some((code, reason)) => TxStatus::Rejected {
                code: code.clone(),
                reason: reason.clone(),
            },
            None => TxStatus::Unknown,
        }
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
        let to_check: Vec<SignedTx> = unknown.iter().map(|&i| block.txs()[i].clone()).collect();
        let checked = deai_ledger::verify_signatures(&to_check);
        let mut out = known;
        for (&i, ok) in unknown.iter().zip(checked) {
            out[i] = ok;
        }
        out
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
        // Whether each sender had a transaction fail: the ledger then left its nonce unused.
        let mut senders: BTreeMap<Address, bool> = BTreeMap::new();
        for (tx, receipt) in block.txs.iter().zip(&block.receipts) {
            *senders.entry(tx.tx.sender).or_default() |= receipt.result.is_err();
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
        }
    }
}
