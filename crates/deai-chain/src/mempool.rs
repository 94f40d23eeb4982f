//! The mempool: signed transactions waiting for a block, kept per sender in nonce order.
//!
//! This module is pure (no I/O, no clocks): the chain wraps it in a lock and feeds it the
//! ledger's next nonces. It is generic over [`PoolTx`] so its policy is tested on its own.
//!
//! Policy (each rule is a test below):
//! - **Nonce window.** A transaction is admitted when `next_nonce <= nonce < next_nonce +
//!   nonce_window`, where `next_nonce` is the sender's next nonce in the latest finalized state.
//!   Lower nonces are replays; higher ones would sit unexecutable for too long.
//! - **Duplicates.** The same transaction id is rejected. The same `(sender, nonce)` with a
//!   different id replaces the pooled one only if it pays a strictly higher fee
//!   (replace-by-fee); otherwise it is rejected.
//! - **Size limits.** At most `txs_max` transactions and `bytes_max` encoded bytes. When full,
//!   the lowest-fee transaction is evicted (together with the same sender's higher nonces,
//!   which could no longer execute) if and only if the newcomer pays strictly more than it;
//!   otherwise the newcomer is rejected. Among equal fees the most recent arrival goes first.
//! - **Selection.** A block takes, for each sender, the contiguous run of nonces starting at the
//!   sender's next nonce; across senders the run with the highest-fee head goes first (ties by
//!   arrival). Selection does not remove anything: transactions leave the pool when a finalized
//!   block includes them ([`Mempool::remove_included`]) or their nonce becomes stale
//!   ([`Mempool::prune_sender`]).
//!
//! Invariants: `by_id`, `by_sender` and `by_fee` always index exactly the same set of entries,
//! and `bytes` is the sum of their sizes. [`Mempool::check_invariants`] asserts this in tests and,
//! amortized, after every change in debug builds.

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
        "nonce {nonce} is beyond the admission window (next nonce {next_nonce}, window {window})"
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
}

/// Fee-ordered key: lowest fee first, and among equal fees the newest (highest seq) first.
type FeeKey<Id> = (u128, Reverse<u64>, Id);

/// Pending transactions, indexed by id, by sender and nonce, and by fee.
#[derive(Clone, Debug)]
pub struct Mempool<T: PoolTx> {
    limits: MempoolLimits,
    by_id: HashMap<T::Id, (T::Sender, u64)>,
    by_sender: HashMap<T::Sender, BTreeMap<u64, Entry<T>>>,
    by_fee: BTreeSet<FeeKey<T::Id>>,
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
        let (sender, nonce) = self.by_id.get(id)?;
        self.by_sender.get(sender)?.get(nonce).map(|e| &e.tx)
    }

    /// The highest pooled nonce of `sender`, if any.
    pub fn highest_nonce(&self, sender: &T::Sender) -> Option<u64> {
        self.by_sender
            .get(sender)
            .and_then(|m| m.keys().next_back().copied())
    }

    /// Admits `tx`, whose sender's next nonce in the latest finalized state is `next_nonce`.
    pub fn insert(&mut self, tx: T, next_nonce: u64) -> Result<Admitted<T::Id>, PoolError> {
        let admitted = self.admit(tx, next_nonce);
        self.debug_check();
        admitted
    }

    fn admit(&mut self, tx: T, next_nonce: u64) -> Result<Admitted<T::Id>, PoolError> {
        let (id, sender, nonce, fee, size) =
            (tx.id(), tx.sender(), tx.nonce(), tx.fee(), tx.size());
        if self.by_id.contains_key(&id) {
            return Err(PoolError::Duplicate);
        }
        self.check_nonce(nonce, next_nonce)?;
        if size > self.limits.bytes_max {
            return Err(PoolError::TooLarge {
                size,
                bytes_max: self.limits.bytes_max,
            });
        }
        let mut admitted = Admitted {
            replaced: None,
            evicted: Vec::new(),
        };
        if let Some(pooled) = self.by_sender.get(&sender).and_then(|m| m.get(&nonce)) {
            let pooled_fee = pooled.tx.fee();
            if fee <= pooled_fee {
                return Err(PoolError::ReplacementUnderpriced { fee, pooled_fee });
            }
            let pooled_id = pooled.tx.id();
            self.take(&pooled_id);
            admitted.replaced = Some(pooled_id);
        }
        admitted.evicted = self.make_room(fee, size, sender)?;
        self.seq += 1;
        self.by_fee.insert((fee, Reverse(self.seq), id));
        self.by_id.insert(id, (sender, nonce));
        self.bytes += size;
        self.by_sender.entry(sender).or_default().insert(
            nonce,
            Entry {
                tx,
                seq: self.seq,
                size,
            },
        );
        Ok(admitted)
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

    fn is_full_for(&self, size: usize) -> bool {
        self.by_id.len() >= self.limits.txs_max || self.bytes + size > self.limits.bytes_max
    }

    /// Evicts lowest-fee transactions until `size` more bytes fit, provided each victim pays
    /// strictly less than `fee`. Checks before evicting, so a refusal leaves the pool unchanged.
    fn make_room(
        &mut self,
        fee: u128,
        size: usize,
        newcomer: T::Sender,
    ) -> Result<Vec<T::Id>, PoolError> {
        if !self.is_full_for(size) {
            return Ok(Vec::new());
        }
        // Dry run: would evicting cheaper transactions (lowest first) free enough room?
        let (mut count, mut bytes) = (self.by_id.len(), self.bytes);
        for (victim_fee, _, victim) in &self.by_fee {
            if count < self.limits.txs_max && bytes + size <= self.limits.bytes_max {
                break;
            }
            if *victim_fee >= fee {
                return Err(PoolError::Full {
                    fee,
                    lowest_fee: self.lowest_fee().unwrap_or(0),
                });
            }
            count -= 1;
            bytes -= self.entry(victim).map_or(0, |e| e.size);
        }
        if count >= self.limits.txs_max || bytes + size > self.limits.bytes_max {
            return Err(PoolError::Full {
                fee,
                lowest_fee: self.lowest_fee().unwrap_or(0),
            });
        }
        let mut evicted = Vec::new();
        while self.is_full_for(size) {
            let Some(&(_, _, victim)) = self.by_fee.first() else {
                break;
            };
            evicted.extend(self.evict_with_successors(&victim, newcomer));
        }
        Ok(evicted)
    }

    /// Removes `id` and, unless its sender is the newcomer's, the sender's higher nonces, which
    /// could no longer execute without it.
    fn evict_with_successors(&mut self, id: &T::Id, newcomer: T::Sender) -> Vec<T::Id> {
        let Some(&(sender, nonce)) = self.by_id.get(id) else {
            return Vec::new();
        };
        let mut ids = vec![*id];
        if sender != newcomer
            && let Some(m) = self.by_sender.get(&sender)
        {
            ids.extend(m.range(nonce + 1..).map(|(_, e)| e.tx.id()));
        }
        for id in &ids {
            self.take(id);
        }
        ids
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
                assert_eq!(self.by_id.get(&e.tx.id()), Some(&(*sender, *nonce)));
                assert!(
                    self.by_fee
                        .contains(&(e.tx.fee(), Reverse(e.seq), e.tx.id()))
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug, PartialEq)]
    struct T {
        sender: u8,
        nonce: u64,
        fee: u128,
        salt: u8,
    }

    impl PoolTx for T {
        type Id = (u8, u64, u128, u8);
        type Sender = u8;
        fn id(&self) -> Self::Id {
            (self.sender, self.nonce, self.fee, self.salt)
        }
        fn sender(&self) -> u8 {
            self.sender
        }
        fn nonce(&self) -> u64 {
            self.nonce
        }
        fn fee(&self) -> u128 {
            self.fee
        }
        fn size(&self) -> usize {
            100
        }
    }

    fn t(sender: u8, nonce: u64, fee: u128) -> T {
        T {
            sender,
            nonce,
            fee,
            salt: 0,
        }
    }

    fn pool(txs_max: usize) -> Mempool<T> {
        Mempool::new(MempoolLimits {
            txs_max,
            bytes_max: 1 << 20,
            nonce_window: 8,
        })
    }

    #[test]
    fn rejects_duplicate_id() {
        let mut p = pool(10);
        assert!(p.insert(t(1, 0, 5), 0).is_ok());
        assert_eq!(p.insert(t(1, 0, 5), 0), Err(PoolError::Duplicate));
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn same_nonce_replaces_only_with_higher_fee() {
        let mut p = pool(10);
        p.insert(t(1, 0, 5), 0).expect("first");
        let cheaper = T {
            salt: 1,
            ..t(1, 0, 5)
        };
        assert_eq!(
            p.insert(cheaper, 0),
            Err(PoolError::ReplacementUnderpriced {
                fee: 5,
                pooled_fee: 5
            })
        );
        let admitted = p.insert(t(1, 0, 6), 0).expect("higher fee replaces");
        assert_eq!(admitted.replaced, Some(t(1, 0, 5).id()));
        assert_eq!(p.len(), 1);
        assert_eq!(p.get(&t(1, 0, 6).id()).map(|x| x.fee), Some(6));
        p.check_invariants();
    }

    #[test]
    fn nonce_window_bounds() {
        let mut p = pool(10);
        assert_eq!(
            p.insert(t(1, 2, 5), 3),
            Err(PoolError::NonceTooLow {
                nonce: 2,
                next_nonce: 3
            })
        );
        assert!(matches!(
            p.insert(t(1, 11, 5), 3),
            Err(PoolError::NonceTooHigh { .. })
        ));
        assert!(
            p.insert(t(1, 10, 5), 3).is_ok(),
            "3 + 8 - 1 is the last admitted nonce"
        );
    }

    #[test]
    fn full_pool_evicts_lowest_fee_only_for_a_higher_bid() {
        let mut p = pool(3);
        p.insert(t(1, 0, 10), 0).expect("a");
        p.insert(t(2, 0, 3), 0).expect("b");
        p.insert(t(3, 0, 7), 0).expect("c");
        assert_eq!(
            p.insert(t(4, 0, 3), 0),
            Err(PoolError::Full {
                fee: 3,
                lowest_fee: 3
            })
        );
        let admitted = p.insert(t(4, 0, 4), 0).expect("outbids the lowest");
        assert_eq!(admitted.evicted, vec![t(2, 0, 3).id()]);
        assert!(!p.contains(&t(2, 0, 3).id()));
        assert_eq!(p.len(), 3);
        p.check_invariants();
    }

    #[test]
    fn eviction_takes_the_victims_higher_nonces() {
        let mut p = pool(3);
        p.insert(t(1, 0, 2), 0).expect("a");
        p.insert(t(1, 1, 9), 0).expect("b");
        p.insert(t(2, 0, 5), 0).expect("c");
        let admitted = p.insert(t(3, 0, 6), 0).expect("d");
        assert_eq!(admitted.evicted, vec![t(1, 0, 2).id(), t(1, 1, 9).id()]);
        assert_eq!(p.len(), 2);
        p.check_invariants();
    }

    #[test]
    fn select_takes_contiguous_runs_by_fee() {
        let mut p = pool(100);
        p.insert(t(1, 0, 1), 0).expect("ok");
        p.insert(t(1, 1, 50), 0).expect("ok");
        p.insert(t(1, 3, 50), 0).expect("gap after 1");
        p.insert(t(2, 5, 9), 5).expect("ok");
        p.insert(t(3, 1, 100), 0).expect("sender 3 lacks nonce 0");
        let next = |s: &u8| if *s == 2 { 5 } else { 0 };
        let picked: Vec<_> = p
            .select(10, 1 << 20, next)
            .iter()
            .map(|x| (x.sender, x.nonce))
            .collect();
        assert_eq!(picked, vec![(2, 5), (1, 0), (1, 1)]);
        let two: Vec<_> = p
            .select(2, 1 << 20, next)
            .iter()
            .map(|x| (x.sender, x.nonce))
            .collect();
        assert_eq!(two, vec![(2, 5), (1, 0)]);
        let by_bytes = p.select(10, 250, next);
        assert_eq!(by_bytes.len(), 2, "byte limit of 2.5 transactions");
        assert!(p.has_executable(next));
        // Sender 3 holds only nonce 1 and sender 1 has a gap at 2: nothing runs from nonce 2.
        assert!(!p.has_executable(|s: &u8| if *s == 3 { 0 } else { 2 }));
    }

    #[test]
    fn prune_and_remove_included() {
        let mut p = pool(100);
        for n in 0..5 {
            p.insert(t(1, n, 1), 0).expect("ok");
        }
        assert_eq!(p.remove_included(&[t(1, 0, 1).id(), t(9, 9, 9).id()]), 1);
        assert_eq!(p.prune_sender(&1, 3).len(), 2);
        assert_eq!(p.len(), 2);
        assert_eq!(p.highest_nonce(&1), Some(4));
        p.check_invariants();
    }

    proptest! {
        #[test]
        fn invariants_hold_under_random_ops(ops in proptest::collection::vec(
            (0u8..4, 0u8..5, 0u64..10, 1u128..20, 0u8..2), 1..200)) {
            let mut p = pool(12);
            let mut next = [0u64; 5];
            for (op, sender, nonce, fee, salt) in ops {
                match op {
                    0 | 1 => {
                        let _ = p.insert(T { sender, nonce, fee, salt }, next[sender as usize]);
                    }
                    2 => {
                        let picked = p.select(4, 1 << 20, |s| next[*s as usize]);
                        for tx in &picked {
                            prop_assert_eq!(tx.nonce, next[tx.sender as usize]);
                            next[tx.sender as usize] += 1;
                            p.remove(&tx.id());
                        }
                    }
                    _ => {
                        next[sender as usize] += 1;
                        p.prune_sender(&sender, next[sender as usize]);
                    }
                }
                p.check_invariants();
                prop_assert!(p.len() <= 12);
            }
        }
    }
}
