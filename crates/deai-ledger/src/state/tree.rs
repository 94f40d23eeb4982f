//! The incremental state tree: an in-memory MMR with one leaf per state entry.
//!
//! Invariant: `index[k] = loc` iff leaf `loc` holds `leaf_element(k, value(k))` for the current
//! value of `k`. A block's changes are applied as one MMR batch, so the cost per block is
//! O(changed keys · log n) hashes; nothing is rebuilt.

use crate::proof::{Proof, StateKey, leaf_element, tree_hasher};
use crate::types::Digest;
use commonware_cryptography::blake3::Digest as B3Digest;
use commonware_storage::merkle::mmr;
use std::collections::BTreeMap;

/// Peaks never become inactive in this tree.
const INACTIVE_PEAKS: usize = 0;

/// The authenticated tree over all state entries.
#[derive(Clone, Debug)]
pub(crate) struct StateTree {
    mmr: mmr::mem::Mmr<B3Digest>,
    index: BTreeMap<StateKey, u64>,
    root: Digest,
}

impl StateTree {
    pub(crate) fn new() -> Self {
        let mmr = mmr::mem::Mmr::new();
        let root = Self::compute_root(&mmr);
        Self {
            mmr,
            index: BTreeMap::new(),
            root,
        }
    }

    fn compute_root(mmr: &mmr::mem::Mmr<B3Digest>) -> Digest {
        let root = mmr
            .root(&tree_hasher(), INACTIVE_PEAKS)
            .expect("root of an in-memory MMR with no inactive peaks");
        Digest(root.0)
    }

    /// The current root.
    pub(crate) fn root(&self) -> Digest {
        self.root
    }

    /// Write new values for `changes` (in key order, so new leaves get the same locations on
    /// every replica) and recompute the root.
    pub(crate) fn update(&mut self, changes: &[(StateKey, Vec<u8>)]) {
        if changes.is_empty() {
            return;
        }
        let hasher = tree_hasher();
        let mut batch = self.mmr.new_batch();
        for (key, value) in changes {
            let element = leaf_element(key, value);
            match self.index.get(key) {
                Some(&loc) => {
                    batch = batch
                        .update_leaf(&hasher, mmr::Location::new(loc), &element)
                        .expect("indexed leaf exists and is never pruned");
                }
                None => {
                    let loc = *batch.leaves();
                    batch = batch.add(&hasher, &element);
                    self.index.insert(*key, loc);
                }
            }
        }
        let merkleized = batch.merkleize(&self.mmr, &hasher);
        self.mmr
            .apply_batch(&merkleized)
            .expect("batch built on the current tree applies");
        self.root = Self::compute_root(&self.mmr);
    }

    /// Every key, in leaf-location order.
    pub(crate) fn keys_in_order(&self) -> Vec<StateKey> {
        let mut keys: Vec<(u64, StateKey)> = self.index.iter().map(|(k, &l)| (l, *k)).collect();
        keys.sort_unstable();
        keys.into_iter().map(|(_, k)| k).collect()
    }

    /// Build an empty tree's leaves in exactly the given order (snapshot restore).
    /// Errs with the first key listed twice.
    pub(crate) fn append_in_order(
        &mut self,
        leaves: &[(StateKey, Vec<u8>)],
    ) -> Result<(), StateKey> {
        assert!(
            self.index.is_empty(),
            "append_in_order builds an empty tree"
        );
        let hasher = tree_hasher();
        let mut batch = self.mmr.new_batch();
        for (loc, (key, value)) in (0u64..).zip(leaves) {
            if self.index.insert(*key, loc).is_some() {
                self.index.clear();
                return Err(*key);
            }
            batch = batch.add(&hasher, &leaf_element(key, value));
        }
        let merkleized = batch.merkleize(&self.mmr, &hasher);
        self.mmr
            .apply_batch(&merkleized)
            .expect("batch built on the current tree applies");
        self.root = Self::compute_root(&self.mmr);
        Ok(())
    }

    /// The inclusion proof of `key`, given its current committed `value`.
    pub(crate) fn prove(&self, key: &StateKey, value: Vec<u8>) -> Option<Proof> {
        let loc = *self.index.get(key)?;
        let inner = self
            .mmr
            .proof(&tree_hasher(), mmr::Location::new(loc), INACTIVE_PEAKS)
            .expect("indexed leaf is in bounds and never pruned");
        Some(Proof {
            key: *key,
            value,
            location: loc,
            leaves: *inner.leaves,
            digests: inner.digests.iter().map(|d| Digest(d.0)).collect(),
        })
    }
}
