//! The mempool: signed transactions waiting for a block, kept per sender in nonce order.
//!
//! This module is pure (no I/O, no clocks): the chain wraps it in a lock and feeds it what it
//! needs of the latest finalized state (a sender's next nonce and balance, the height). It is
//! generic over [`PoolTx`] so its policy is tested on its own.
//!
//! Threat model: anyone may submit any number of validly signed transactions from any number of
//! fresh keys, with any nonce and fee. A pooled transaction holds a slot that honest ones must
//! then outbid, and the ledger charges nothing for a transaction that never runs. So every slot
//! is backed by funds its sender holds: a fee counts towards holding the pool only if the sender
//! could pay it, and what cannot run leaves after a bounded number of blocks.
//!
//! Policy (each rule is a test in `mempool/tests.rs`):
//! - **Nonce window.** A transaction is admitted when `next_nonce <= nonce < next_nonce +
//!   nonce_window`, where `next_nonce` is the sender's next nonce in the latest finalized state.
//!   Lower nonces are replays; higher ones would sit unexecutable for too long.
//! - **Paid for.** A sender's pooled transactions never cost more, together, than its balance:
//!   a newcomer is admitted only if `cost(newcomer) + Σ cost(the sender's other pooled
//!   transactions) <= balance`, where [`PoolTx::cost`] is the fee plus whatever amount the body
//!   moves out of the sender. This holds for a gapped nonce as for the next one, so a
//!   never-funded key gets nothing in.
//! - **Per-sender cap.** At most `sender_txs_max` pooled transactions per sender.
//! - **Duplicates.** The same transaction id is rejected. The same `(sender, nonce)` with a
//!   different id replaces the pooled one only if it pays a strictly higher fee
//!   (replace-by-fee; the replaced one's cost no longer counts); otherwise it is rejected.
//! - **Size limits.** At most `txs_max` transactions and `bytes_max` encoded bytes. When full,
//!   the lowest-fee transaction is evicted (together with the same sender's higher nonces,
//!   which could no longer execute) if and only if the newcomer pays strictly more than it;
//!   otherwise the newcomer is rejected. Among equal fees the most recent arrival goes first.
//!   With the two rules above, holding `k` slots at fee `f` or more takes `k * f` of balance.
//! - **After each block** ([`Mempool::recheck_sender`], for each sender in the block):
//!   nonces below the new next nonce leave (stale). A transaction that fails inside a block
//!   changes nothing, its nonce included, so the sender's later nonces would wait for ever on
//!   one that will not come: if one of the sender's transactions failed and the pool does not
//!   hold the new next nonce, the sender's others leave (`predecessor_failed`). Then the run is
//!   checked against the new balance, in nonce order; from the first nonce it no longer covers,
//!   the rest leave.
//! - **Expiry** ([`Mempool::expire`]): a transaction looked at again `expiry_blocks` blocks
//!   after its admission (or its last look) leaves, with its sender's higher nonces, if it
//!   cannot run (a nonce between the sender's next and its own is missing); if it can run, it
//!   is looked at again `expiry_blocks` later. So a transaction that never could run leaves
//!   after exactly `expiry_blocks` blocks, and none waits unexecutable for `2 * expiry_blocks`.
//! - **Selection.** A block takes, for each sender, the contiguous run of nonces starting at the
//!   sender's next nonce; across senders the run with the highest-fee head goes first (ties by
//!   arrival). Selection does not remove anything: transactions leave the pool when a finalized
//!   block includes them ([`Mempool::remove_included`]) or by the rules above.
//!
//! Cost: admission is `O(sender_txs_max + log n)`; after a block, the work is proportional to
//! the block's senders and the transactions due for expiry, never to the whole pool.
//!
//! Invariants: `by_id`, `by_sender`, `by_fee` and `by_age` always index exactly the same set of
//! entries, and `bytes` is the sum of their sizes. [`Mempool::check_invariants`] asserts this
//! in tests and, amortized, after every change in debug builds.

mod after_block;
#[cfg(test)]
mod honest_prop;
#[cfg(test)]
mod tests;

pub use after_block::Dropped;

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap},
    fmt::Debug,
    hash::Hash,
};

/// What the mempool needs to know about a transaction.
pub trait PoolTx: Clone {
    /// Unique id (the hash of the canonical encoding).
    type Id: Copy + Ord + Hash + Debug;
    /// The account that signs and pays.
    type Sender: Copy + Ord + Hash + Debug;
    /// The transaction's id.
    fn id(&self) -> Self::Id;
    /// The transaction's sender.
    fn sender(&self) -> Self::Sender;
    /// The sender's nonce this transaction uses.
    fn nonce(&self) -> u64;
    /// The fee it offers.
    fn fee(&self) -> u128;
    /// Its encoded size in bytes.
    fn size(&self) -> usize;
    /// What running it takes from the sender's balance: the fee plus any amount the body moves
    /// out (saturating). Must be at least [`Self::fee`].
    fn cost(&self) -> u128;
}

/// What the mempool needs to know of a sender's account in the latest finalized state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderState {
    /// The nonce its next transaction must use.
    pub next_nonce: u64,
    /// Its spendable balance.
    pub balance: u128,
}

/// Limits of a [`Mempool`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolLimits {
    /// Most transactions held at once.
    pub txs_max: usize,
    /// Most encoded bytes held at once.
    pub bytes_max: usize,
    /// How far above a sender's next nonce a transaction may be admitted.
    pub nonce_window: u64,
    /// Most transactions held at once for one sender.
    pub sender_txs_max: usize,
    /// Blocks after which a transaction that cannot run leaves (see [`Mempool::expire`]).
    pub expiry_blocks: u64,
}

/// Why the mempool refused a transaction.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The same transaction is already pooled.
    #[error("transaction already in the mempool")]
    Duplicate,
    /// The nonce was already used by a finalized transaction.
    #[error("nonce {nonce} is below the sender's next nonce {next_nonce}")]
    NonceTooLow {
        /// The transaction's nonce.
        nonce: u64,
        /// The sender's next nonce.
        next_nonce: u64,
    },
    /// The nonce is too far ahead of the sender's next nonce.
    #[error(
        "nonce {nonce} is beyond the admission window (next nonce {next_nonce}, window {window}); \
         submit the missing nonces first"
    )]
    NonceTooHigh {
        /// The transaction's nonce.
        nonce: u64,
        /// The sender's next nonce.
        next_nonce: u64,
        /// The admission window.
        window: u64,
    },
    /// Another transaction with the same sender and nonce pays at least as much.
    #[error("a transaction with the same sender and nonce pays {pooled_fee} >= {fee}")]
    ReplacementUnderpriced {
        /// The newcomer's fee.
        fee: u128,
        /// The pooled transaction's fee.
        pooled_fee: u128,
    },
    /// The sender already has as many pooled transactions as one sender may.
    #[error(
        "the sender already has {pending} pending transactions, the most one sender may have \
         ({max}); wait for some to finalize"
    )]
    SenderFull {
        /// The sender's pooled transactions.
        pending: usize,
        /// The per-sender cap.
        max: usize,
    },
    /// The sender's balance does not pay for this transaction and its pending ones together.
    #[error(
        "balance {balance} cannot pay {needed}, the fee and amount of this transaction plus \
         those of the sender's {pending} pending ones; fund the account or wait for them to \
         finalize"
    )]
    Unaffordable {
        /// What this transaction and the sender's other pooled ones cost together (saturating).
        needed: u128,
        /// The sender's balance in the latest finalized state.
        balance: u128,
        /// The sender's other pooled transactions.
        pending: usize,
    },
    /// The pool is full and the newcomer does not outbid the cheapest transaction.
    #[error("mempool full: fee {fee} does not exceed the lowest pooled fee {lowest_fee}")]
    Full {
        /// The newcomer's fee.
        fee: u128,
        /// The lowest fee in the pool.
        lowest_fee: u128,
    },
    /// The transaction alone is larger than the pool.
    #[error("transaction of {size} bytes exceeds the mempool's {bytes_max} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The pool's byte limit.
        bytes_max: usize,
    },
}

/// What an admission did besides adding the transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admitted<Id> {
    /// The pooled transaction that the newcomer replaced (same sender and nonce).
    pub replaced: Option<Id>,
    /// Transactions evicted to make room.
    pub evicted: Vec<Id>,
}

#[derive(Clone, Debug)]
struct Entry<T> {
    tx: T,
    seq: u64,
    size: usize,
    /// The height at admission or at the last expiry look ([`Mempool::expire`]).
    checked_at: u64,
}

/// Fee-ordered key: lowest fee first, and among equal fees the newest (highest seq) first.
type FeeKey<Id> = (u128, Reverse<u64>, Id);
/// Age-ordered key: (height of the last look, seq, id), oldest first.
type AgeKey<Id> = (u64, u64, Id);

/// Pending transactions, indexed by id, by sender and nonce, by fee and by age.
#[derive(Clone, Debug)]
pub struct Mempool<T: PoolTx> {
    limits: MempoolLimits,
    by_id: HashMap<T::Id, (T::Sender, u64)>,
    by_sender: HashMap<T::Sender, BTreeMap<u64, Entry<T>>>,
    by_fee: BTreeSet<FeeKey<T::Id>>,
    by_age: BTreeSet<AgeKey<T::Id>>,
    bytes: usize,
    seq: u64,
}

impl<T: PoolTx> Mempool<T> {
    /// An empty pool with the given limits.
    pub fn new(limits: MempoolLimits) -> Self {
        Self {
            limits,
            by_id: HashMap::new(),
            by_sender: HashMap::new(),
            by_fee: BTreeSet::new(),
            by_age: BTreeSet::new(),
            bytes: 0,
            seq: 0,
        }
    }

    /// Number of pooled transactions.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Total encoded bytes pooled.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether a transaction with this id is pooled.
    pub fn contains(&self, id: &T::Id) -> bool {
        self.by_id.contains_key(id)
    }

    /// The pooled transaction with this id.
    pub fn get(&self, id: &T::Id) -> Option<&T> {
        self.entry(id).map(|e| &e.tx)
    }

    /// The highest pooled nonce of `sender`, if any.
    pub fn highest_nonce(&self, sender: &T::Sender) -> Option<u64> {
        self.by_sender
            .get(sender)
            .and_then(|m| m.keys().next_back().copied())
    }

    /// How many transactions of `sender` are pooled.
    pub fn sender_len(&self, sender: &T::Sender) -> usize {
        self.by_sender.get(sender).map_or(0, BTreeMap::len)
    }

    /// Admits `tx`, whose sender is in `state` in the latest finalized state, at `height` (the
    /// latest finalized height, from which its expiry counts).
    pub fn insert(
        &mut self,
        tx: T,
        state: SenderState,
        height: u64,
    ) -> Result<Admitted<T::Id>, PoolError> {
        let admitted = self.admit(tx, state, height);
        self.debug_check();
        admitted
    }

    fn admit(
        &mut self,
        tx: T,
        state: SenderState,
        height: u64,
    ) -> Result<Admitted<T::Id>, PoolError> {
        let (id, sender, nonce, fee, size) =
            (tx.id(), tx.sender(), tx.nonce(), tx.fee(), tx.size());
        if self.by_id.contains_key(&id) {
            return Err(PoolError::Duplicate);
        }
        self.check_nonce(nonce, state.next_nonce)?;
        if size > self.limits.bytes_max {
            return Err(PoolError::TooLarge {
                size,
                bytes_max: self.limits.bytes_max,
            });
        }
        let replaced = self.replaceable(sender, nonce, fee)?;
        self.check_sender(&tx, state.balance, replaced)?;
        // Every check that can refuse runs before anything changes.
        self.check_room(fee, size, replaced)?;
        if let Some(pooled) = replaced {
            self.take(&pooled);
        }
        let evicted = self.evict_until_fits(size, sender);
        self.seq += 1;
        self.by_fee.insert((fee, Reverse(self.seq), id));
        self.by_age.insert((height, self.seq, id));
        self.by_id.insert(id, (sender, nonce));
        self.bytes += size;
        let entry = Entry {
            tx,
            seq: self.seq,
            size,
            checked_at: height,
        };
        self.by_sender
            .entry(sender)
            .or_default()
            .insert(nonce, entry);
        Ok(Admitted { replaced, evicted })
    }

    fn check_nonce(&self, nonce: u64, next_nonce: u64) -> Result<(), PoolError> {
        if nonce < next_nonce {
            return Err(PoolError::NonceTooLow { nonce, next_nonce });
        }
        if nonce - next_nonce >= self.limits.nonce_window {
            return Err(PoolError::NonceTooHigh {
                nonce,
                next_nonce,
                window: self.limits.nonce_window,
            });
        }
        Ok(())
    }

    /// The pooled transaction at `(sender, nonce)` that a newcomer paying `fee` replaces.
    fn replaceable(
        &self,
        sender: T::Sender,
        nonce: u64,
        fee: u128,
    ) -> Result<Option<T::Id>, PoolError> {
        let Some(pooled) = self.by_sender.get(&sender).and_then(|m| m.get(&nonce)) else {
            return Ok(None);
        };
        let pooled_fee = pooled.tx.fee();
        if fee <= pooled_fee {
            return Err(PoolError::ReplacementUnderpriced { fee, pooled_fee });
        }
        Ok(Some(pooled.tx.id()))
    }

    /// The per-sender cap, and whether `balance` pays for `tx` with the sender's other pooled
    /// transactions (but the one it replaces).
    fn check_sender(
        &self,
        tx: &T,
        balance: u128,
        replaced: Option<T::Id>,
    ) -> Result<(), PoolError> {
        let others: Vec<&Entry<T>> = self
            .by_sender
            .get(&tx.sender())
            .into_iter()
            .flat_map(BTreeMap::values)
            .filter(|e| Some(e.tx.id()) != replaced)
            .collect();
        if others.len() >= self.limits.sender_txs_max {
            return Err(PoolError::SenderFull {
                pending: others.len(),
                max: self.limits.sender_txs_max,
            });
        }
        let needed = others
            .iter()
            .fold(tx.cost(), |sum, e| sum.saturating_add(e.tx.cost()));
        if needed > balance {
            return Err(PoolError::Unaffordable {
                needed,
                balance,
                pending: others.len(),
            });
        }
        Ok(())
    }

    fn is_full_for(&self, size: usize) -> bool {
        self.by_id.len() >= self.limits.txs_max || self.bytes + size > self.limits.bytes_max
    }

    /// Whether `size` more bytes fit once `replaced` leaves and lowest-fee transactions that
    /// each pay strictly less than `fee` are evicted. Changes nothing.
    fn check_room(&self, fee: u128, size: usize, replaced: Option<T::Id>) -> Result<(), PoolError> {
        let freed = replaced
            .and_then(|id| self.entry(&id))
            .map_or(0, |e| e.size);
        let (mut count, mut bytes) = (
            self.by_id.len() - usize::from(replaced.is_some()),
            self.bytes - freed,
        );
        let fits = |count: usize, bytes: usize| {
            count < self.limits.txs_max && bytes + size <= self.limits.bytes_max
        };
        let full = || PoolError::Full {
            fee,
            lowest_fee: self.lowest_fee().unwrap_or(0),
        };
        for (victim_fee, _, victim) in &self.by_fee {
            if fits(count, bytes) {
                return Ok(());
            }
            if Some(*victim) == replaced {
                continue;
            }
            if *victim_fee >= fee {
                return Err(full());
            }
            count -= 1;
            bytes -= self.entry(victim).map_or(0, |e| e.size);
        }
        if fits(count, bytes) {
            Ok(())
        } else {
            Err(full())
        }
    }

    /// Evicts lowest-fee transactions until `size` more bytes fit. [`Self::check_room`] said
    /// they all pay less than the newcomer, and they go in the order it counted them (a
    /// victim's successors only free more).
    fn evict_until_fits(&mut self, size: usize, newcomer: T::Sender) -> Vec<T::Id> {
        let mut evicted = Vec::new();
        while self.is_full_for(size) {
            let Some(&(_, _, victim)) = self.by_fee.first() else {
                break;
            };
            evicted.extend(self.evict_with_successors(&victim, newcomer));
        }
        evicted
    }

    /// Removes `id` and, unless its sender is the newcomer's, the sender's higher nonces, which
    /// could no longer execute without it.
    fn evict_with_successors(&mut self, id: &T::Id, newcomer: T::Sender) -> Vec<T::Id> {
        let Some(&(sender, nonce)) = self.by_id.get(id) else {
            return Vec::new();
        };
        let ids = if sender == newcomer {
            vec![*id]
        } else {
            self.ids_from_nonce(&sender, nonce)
        };
        for id in &ids {
            self.take(id);
        }
        ids
    }

    /// The ids of `sender`'s transactions from `nonce` up.
    fn ids_from_nonce(&self, sender: &T::Sender, nonce: u64) -> Vec<T::Id> {
        self.by_sender
            .get(sender)
            .map(|m| m.range(nonce..).map(|(_, e)| e.tx.id()).collect())
            .unwrap_or_default()
    }

    fn entry(&self, id: &T::Id) -> Option<&Entry<T>> {
        let (sender, nonce) = self.by_id.get(id)?;
        self.by_sender.get(sender)?.get(nonce)
    }

    /// The lowest pooled fee.
    pub fn lowest_fee(&self) -> Option<u128> {
        self.by_fee.first().map(|k| k.0)
    }

    /// Removes one transaction; returns it if it was pooled.
    pub fn remove(&mut self, id: &T::Id) -> Option<T> {
        let tx = self.take(id);
        self.debug_check();
        tx
    }

    /// In debug builds, [`Self::check_invariants`] after a change: always while the pool is
    /// small, then once every 1024 admissions (a full check is linear in the pool).
    fn debug_check(&self) {
        if cfg!(debug_assertions) && (self.by_id.len() <= 64 || self.seq.is_multiple_of(1024)) {
            self.check_invariants();
        }
    }

    fn take(&mut self, id: &T::Id) -> Option<T> {
        let (sender, nonce) = self.by_id.remove(id)?;
        let by_nonce = self.by_sender.get_mut(&sender)?;
        let entry = by_nonce.remove(&nonce)?;
        if by_nonce.is_empty() {
            self.by_sender.remove(&sender);
        }
        self.by_fee
            .remove(&(entry.tx.fee(), Reverse(entry.seq), *id));
        self.by_age.remove(&(entry.checked_at, entry.seq, *id));
        self.bytes -= entry.size;
        Some(entry.tx)
    }

    /// Removes the transactions a finalized block included (applied or rejected alike).
    pub fn remove_included<'a>(&mut self, ids: impl IntoIterator<Item = &'a T::Id>) -> usize
    where
        T::Id: 'a,
    {
        let removed = ids.into_iter().filter(|id| self.take(id).is_some()).count();
        self.debug_check();
        removed
    }

    /// Drops `sender`'s transactions whose nonce is now below `next_nonce`; returns their ids.
    pub fn prune_sender(&mut self, sender: &T::Sender, next_nonce: u64) -> Vec<T::Id> {
        let stale: Vec<T::Id> = match self.by_sender.get(sender) {
            Some(m) => m.range(..next_nonce).map(|(_, e)| e.tx.id()).collect(),
            None => return Vec::new(),
        };
        for id in &stale {
            self.take(id);
        }
        self.debug_check();
        stale
    }

    /// Whether any sender's next nonce is waiting: whether [`Self::select`] would pick anything
    /// (byte and count limits aside). A pool of gapped nonces alone is not work for a block.
    pub fn has_executable(&self, mut next_nonce: impl FnMut(&T::Sender) -> u64) -> bool {
        self.by_sender
            .iter()
            .any(|(sender, by_nonce)| by_nonce.contains_key(&next_nonce(sender)))
    }

    /// Picks transactions for a block: per sender the contiguous nonce run from
    /// `next_nonce(sender)`, highest-fee heads first, within `txs_max` and `bytes_max`.
    pub fn select(
        &self,
        txs_max: usize,
        bytes_max: usize,
        mut next_nonce: impl FnMut(&T::Sender) -> u64,
    ) -> Vec<T> {
        // Heap of (head fee, earliest arrival first, sender, nonce).
        let mut heap = BinaryHeap::new();
        for (sender, by_nonce) in &self.by_sender {
            let next = next_nonce(sender);
            if let Some(e) = by_nonce.get(&next) {
                heap.push((e.tx.fee(), Reverse(e.seq), *sender, next));
            }
        }
        let (mut picked, mut bytes) = (Vec::new(), 0usize);
        while let Some((_, _, sender, nonce)) = heap.pop() {
            if picked.len() >= txs_max {
                break;
            }
            let by_nonce = &self.by_sender[&sender];
            let e = &by_nonce[&nonce];
            if bytes + e.size > bytes_max {
                continue; // this sender's run stops here; smaller runs may still fit
            }
            bytes += e.size;
            picked.push(e.tx.clone());
            if let Some(next) = by_nonce.get(&(nonce + 1)) {
                heap.push((next.tx.fee(), Reverse(next.seq), sender, nonce + 1));
            }
        }
        picked
    }

    /// Asserts the internal indexes agree (used by tests).
    pub fn check_invariants(&self) {
        let entries: usize = self.by_sender.values().map(BTreeMap::len).sum();
        assert_eq!(entries, self.by_id.len(), "by_sender and by_id disagree");
        assert_eq!(
            self.by_fee.len(),
            self.by_id.len(),
            "by_fee and by_id disagree"
        );
        assert_eq!(
            self.by_age.len(),
            self.by_id.len(),
            "by_age and by_id disagree"
        );
        let bytes: usize = self
            .by_sender
            .values()
            .flat_map(|m| m.values())
            .map(|e| e.size)
            .sum();
        assert_eq!(bytes, self.bytes, "byte count drifted");
        for (sender, m) in &self.by_sender {
            assert!(!m.is_empty(), "empty sender map kept");
            for (nonce, e) in m {
                let id = e.tx.id();
                assert_eq!(self.by_id.get(&id), Some(&(*sender, *nonce)));
                assert!(self.by_fee.contains(&(e.tx.fee(), Reverse(e.seq), id)));
                assert!(self.by_age.contains(&(e.checked_at, e.seq, id)));
            }
        }
    }
}
