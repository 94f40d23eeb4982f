//! What a finalized block changes for the transactions still pooled: per sender of the block, a
//! re-check of its run against its new account; across the pool, expiry of what cannot run.
//! Neither walks the whole pool.

use super::{Mempool, PoolTx, SenderState};

/// Why the pool dropped a transaction it had admitted (besides a block including it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dropped {
    /// Its nonce was used by another finalized transaction.
    Stale,
    /// One of its sender's transactions failed in a block, leaving a nonce below it unused, and
    /// no transaction for that nonce is pooled.
    PredecessorFailed,
    /// Its sender's balance no longer pays for it and its lower nonces.
    Unaffordable,
    /// It could not run for `expiry_blocks` blocks.
    Expired,
    /// A higher-fee transaction took its place in a full pool.
    Evicted,
}

impl Dropped {
    /// A stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Stale => "nonce_stale",
            Self::PredecessorFailed => "predecessor_failed",
            Self::Unaffordable => "pending_unaffordable",
            Self::Expired => "expired",
            Self::Evicted => "evicted",
        }
    }

    /// What happened and what to do, for a person.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Stale => "nonce already used",
            Self::PredecessorFailed => {
                "an earlier transaction of the sender failed in a block and its nonce is still \
                 unused; resubmit from the sender's next nonce"
            }
            Self::Unaffordable => {
                "the sender's balance no longer pays for this transaction and its lower nonces; \
                 fund the account and resubmit"
            }
            Self::Expired => {
                "it could not run (a lower nonce of the sender was missing) for the mempool's \
                 expiry; submit the missing nonce, then resubmit"
            }
            Self::Evicted => "outbid by a higher-fee transaction",
        }
    }
}

impl<T: PoolTx> Mempool<T> {
    /// Re-checks `sender`'s pooled run against its account after a finalized block: drops
    /// stale nonces; if `failed_in_block` (one of its transactions failed in the block, so the
    /// ledger left that nonce unused) and the new next nonce is not pooled, drops the rest;
    /// then drops, from the first nonce the balance no longer pays for, everything above.
    pub fn recheck_sender(
        &mut self,
        sender: &T::Sender,
        state: SenderState,
        failed_in_block: bool,
    ) -> Vec<(T::Id, Dropped)> {
        let Some(by_nonce) = self.by_sender.get(sender) else {
            return Vec::new();
        };
        let stranded = failed_in_block && !by_nonce.contains_key(&state.next_nonce);
        let (mut spent, mut covered) = (0u128, true);
        let mut dropped = Vec::new();
        for (&nonce, e) in by_nonce {
            let why = if nonce < state.next_nonce {
                Some(Dropped::Stale)
            } else if stranded {
                Some(Dropped::PredecessorFailed)
            } else {
                spent = spent.saturating_add(e.tx.cost());
                covered &= spent <= state.balance;
                (!covered).then_some(Dropped::Unaffordable)
            };
            if let Some(why) = why {
                dropped.push((e.tx.id(), why));
            }
        }
        for (id, _) in &dropped {
            self.take(id);
        }
        self.debug_check();
        dropped
    }

    /// Looks at every transaction admitted (or last looked at) `expiry_blocks` or more blocks
    /// before `height`: one that cannot run on the state where its sender's next nonce is
    /// `next_nonce(sender)` leaves with its sender's higher nonces; one that can is looked at
    /// again `expiry_blocks` later.
    pub fn expire(
        &mut self,
        height: u64,
        mut next_nonce: impl FnMut(&T::Sender) -> u64,
    ) -> Vec<(T::Id, Dropped)> {
        let Some(cutoff) = height.checked_sub(self.limits.expiry_blocks) else {
            return Vec::new();
        };
        let due: Vec<T::Id> = self
            .by_age
            .iter()
            .take_while(|(checked_at, _, _)| *checked_at <= cutoff)
            .map(|&(_, _, id)| id)
            .collect();
        let mut dropped = Vec::new();
        for id in due {
            let Some(&(sender, nonce)) = self.by_id.get(&id) else {
                continue; // left with a lower nonce of its sender
            };
            let next = next_nonce(&sender);
            if self.runs_from(&sender, next, nonce) {
                self.recheck_later(&id, height);
                continue;
            }
            if nonce < next {
                self.take(&id);
                dropped.push((id, Dropped::Stale));
                continue;
            }
            // Its higher nonces cannot run either while it is missing.
            for id in self.ids_from_nonce(&sender, nonce) {
                self.take(&id);
                dropped.push((id, Dropped::Expired));
            }
        }
        self.debug_check();
        dropped
    }

    /// Whether `sender` has every nonce from `next` to `nonce` pooled.
    fn runs_from(&self, sender: &T::Sender, next: u64, nonce: u64) -> bool {
        let Some(by_nonce) = self.by_sender.get(sender) else {
            return false;
        };
        nonce >= next && by_nonce.range(next..=nonce).count() as u64 == nonce - next + 1
    }

    fn recheck_later(&mut self, id: &T::Id, height: u64) {
        let Some(&(sender, nonce)) = self.by_id.get(id) else {
            return;
        };
        let Some(e) = self
            .by_sender
            .get_mut(&sender)
            .and_then(|m| m.get_mut(&nonce))
        else {
            return;
        };
        self.by_age.remove(&(e.checked_at, e.seq, *id));
        e.checked_at = height;
        self.by_age.insert((height, e.seq, *id));
    }
}
