//! The safety checks, as a pure function of what the honest validators reported during and
//! after a run, so each check can be shown to fire on made-up reports of a broken chain.

use super::{byzantine::DeedRecord, plan::Deed};
use deai_chain::TxStatus;
use deai_ledger::{Address, Digest, TxId};
use std::collections::{BTreeMap, BTreeSet};

/// A finalized block as one honest validator reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct BlockSeen {
    pub(super) digest: Digest,
    pub(super) parent: Digest,
    pub(super) state_root: Digest,
    /// Each transaction with its rejection code (`None`: applied).
    pub(super) txs: Vec<(TxId, Option<String>)>,
}

impl BlockSeen {
    pub(super) fn of(b: &deai_chain::FinalizedBlock) -> Self {
        Self {
            digest: b.digest,
            parent: b.parent,
            state_root: b.state_root,
            txs: b
                .txs
                .iter()
                .zip(&b.receipts)
                .map(|(tx, r)| {
                    (
                        tx.id(),
                        r.result.as_ref().err().map(|e| e.code().to_string()),
                    )
                })
                .collect(),
        }
    }
}

/// Where a transaction finalized, as a validator reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct TxAt {
    pub(super) height: u64,
    pub(super) index: u32,
    pub(super) applied: bool,
}

impl TxAt {
    pub(super) fn of(status: &TxStatus) -> Option<Self> {
        match status {
            TxStatus::Finalized {
                height,
                index,
                receipt,
            } => Some(Self {
                height: *height,
                index: *index,
                applied: receipt.result.is_ok(),
            }),
            _ => None,
        }
    }
}

/// Everything the checks look at. Validators are named by index; only honest ones appear.
#[derive(Debug, Default)]
pub(super) struct Reports {
    /// Each honest validator's finalized chain by height, as first reported.
    pub(super) chains: BTreeMap<usize, BTreeMap<u64, BlockSeen>>,
    /// A block a validator reported at a height where it had reported another before.
    pub(super) rewritten: Vec<(usize, u64)>,
    /// The first place each validator reported each transaction finalized.
    pub(super) first: BTreeMap<TxId, BTreeMap<usize, TxAt>>,
    /// Where each validator reports each transaction at the end.
    pub(super) last: BTreeMap<TxId, BTreeMap<usize, Option<TxAt>>>,
    /// Balances at the end, per validator: (account, balance).
    pub(super) balances: BTreeMap<usize, Vec<(Address, u128)>>,
    /// (blocker, blocked) pairs of validators.
    pub(super) blocked: Vec<(usize, usize)>,
}

/// What the checks hold the reports against.
pub(super) struct Expected<'a> {
    pub(super) byzantine: usize,
    pub(super) deeds: &'a [DeedRecord],
    /// Accounts and the balance each must end with.
    pub(super) balances: &'a [(Address, u128)],
    /// Honest transactions that must have applied, once.
    pub(super) honest_txs: &'a [TxId],
}

/// Every safety property the reports break, described.
pub(super) fn violations(r: &Reports, e: &Expected<'_>) -> Vec<String> {
    let mut out = Vec::new();
    agreement(r, &mut out);
    for (v, h) in &r.rewritten {
        out.push(format!(
            "validator {v} reported a second block at height {h}"
        ));
    }
    no_invalid_blocks(r, e, &mut out);
    transactions(r, e, &mut out);
    for (v, balances) in &r.balances {
        for (account, want) in e.balances {
            let got = balances.iter().find(|(a, _)| a == account).map(|b| b.1);
            if got != Some(*want) {
                out.push(format!(
                    "validator {v}: {account} holds {got:?}, expected {want}"
                ));
            }
        }
    }
    for (by, whom) in &r.blocked {
        if *whom != e.byzantine && *by != e.byzantine {
            out.push(format!(
                "honest validator {by} blocked honest validator {whom} as faulty"
            ));
        }
    }
    out
}

/// Same block, same state root and a linked chain at every height two validators share.
fn agreement(r: &Reports, out: &mut Vec<String>) {
    let mut by_height: BTreeMap<u64, Vec<(usize, &BlockSeen)>> = BTreeMap::new();
    for (v, chain) in &r.chains {
        for (h, b) in chain {
            by_height.entry(*h).or_default().push((*v, b));
            if let Some(parent) = h.checked_sub(1).and_then(|p| chain.get(&p))
                && parent.digest != b.parent
            {
                out.push(format!(
                    "validator {v}: block {h} does not extend block {}",
                    h - 1
                ));
            }
        }
    }
    for (h, seen) in by_height {
        let (v0, b0) = seen[0];
        for (v, b) in &seen[1..] {
            if b.digest != b0.digest {
                out.push(format!(
                    "fork at height {h}: validator {v0} finalized {}, validator {v} {}",
                    b0.digest, b.digest
                ));
            } else if b.state_root != b0.state_root {
                out.push(format!(
                    "state roots differ at height {h}: validators {v0} and {v}"
                ));
            }
        }
    }
}

/// No honest validator finalized a block the Byzantine validator made invalid; tx-level deeds
/// that did finalize were rejected by the ledger.
fn no_invalid_blocks(r: &Reports, e: &Expected<'_>, out: &mut Vec<String>) {
    for (v, chain) in &r.chains {
        for (h, b) in chain {
            let Some(deed) = e
                .deeds
                .iter()
                .find(|d| deai_chain::block::digest_bytes(&d.digest) == b.digest)
            else {
                continue;
            };
            if deed.deed.invalidates_block() {
                out.push(format!(
                    "validator {v} finalized an invalid block ({:?}, proposed in view {}) at \
                     height {h}",
                    deed.deed, deed.view
                ));
                continue;
            }
            let want = deed.deed.rejection();
            let got = deed
                .tx
                .and_then(|id| b.txs.iter().rev().find(|(t, _)| *t == id))
                .map(|(_, code)| code.as_deref());
            if got != Some(want) {
                out.push(format!(
                    "validator {v}: the {:?} transaction at height {h} ended {got:?}, \
                     expected rejection {want:?}",
                    deed.deed
                ));
            }
        }
    }
    // The made-up transactions may finalize (in valid blocks) but never apply.
    let made_up: BTreeSet<TxId> = e
        .deeds
        .iter()
        .filter(|d| matches!(d.deed, Deed::BadSignature | Deed::FutureNonce))
        .filter_map(|d| d.tx)
        .collect();
    for (v, chain) in &r.chains {
        for (h, b) in chain {
            for (id, code) in &b.txs {
                if code.is_none() && made_up.contains(id) {
                    out.push(format!(
                        "validator {v} applied an invalid transaction {id} at height {h}"
                    ));
                }
            }
        }
    }
}

/// Each honest transaction applied exactly once, where every validator says it did, and a
/// transaction reported finalized stays where it was reported.
fn transactions(r: &Reports, e: &Expected<'_>, out: &mut Vec<String>) {
    for (v, chain) in &r.chains {
        let mut applied: BTreeMap<TxId, Vec<u64>> = BTreeMap::new();
        for (h, b) in chain {
            for (id, code) in &b.txs {
                if code.is_none() {
                    applied.entry(*id).or_default().push(*h);
                }
            }
        }
        for (id, heights) in &applied {
            if heights.len() > 1 {
                out.push(format!(
                    "validator {v} applied {id} more than once (heights {heights:?})"
                ));
            }
        }
        for id in e.honest_txs {
            if !applied.contains_key(id) {
                out.push(format!(
                    "validator {v} never applied honest transaction {id}"
                ));
            }
        }
    }
    for (id, firsts) in &r.first {
        for (v, at) in firsts {
            for (w, last) in r.last.get(id).into_iter().flatten() {
                if last.as_ref() != Some(at) {
                    out.push(format!(
                        "{id}: validator {v} reported it finalized at {at:?}, \
                         validator {w} reports {last:?}"
                    ));
                }
            }
            let in_block = r
                .chains
                .get(v)
                .and_then(|c| c.get(&at.height))
                .and_then(|b| b.txs.get(at.index as usize));
            if let Some((tx, code)) = in_block
                && (tx != id || code.is_none() != at.applied)
            {
                out.push(format!(
                    "validator {v} reported {id} at {at:?}, but its block there holds \
                     {tx} ({code:?})"
                ));
            }
        }
    }
}

/// Each check fires on reports of a chain broken the way it guards against.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::plan::Deed;

    fn d(b: u8) -> Digest {
        Digest([b; 32])
    }

    fn tx(b: u8) -> TxId {
        Digest([0x70 + b; 32])
    }

    /// Two validators that agree on blocks 1..=3; block `h` has digest `h`, root `10 + h`,
    /// and applies transaction `h`.
    fn agreeing() -> Reports {
        let chain: BTreeMap<u64, BlockSeen> = (1..=3u8)
            .map(|h| {
                let b = BlockSeen {
                    digest: d(h),
                    parent: d(h - 1),
                    state_root: d(10 + h),
                    txs: vec![(tx(h), None)],
                };
                (u64::from(h), b)
            })
            .collect();
        let mut r = Reports::default();
        for v in [0, 1] {
            r.chains.insert(v, chain.clone());
            for h in 1..=3u8 {
                let at = TxAt {
                    height: u64::from(h),
                    index: 0,
                    applied: true,
                };
                r.first.entry(tx(h)).or_default().insert(v, at.clone());
                r.last.entry(tx(h)).or_default().insert(v, Some(at));
            }
        }
        r
    }

    fn expected<'a>(deeds: &'a [DeedRecord], honest: &'a [TxId]) -> Expected<'a> {
        Expected {
            byzantine: 3,
            deeds,
            balances: &[],
            honest_txs: honest,
        }
    }

    fn honest() -> Vec<TxId> {
        (1..=3).map(tx).collect()
    }

    #[test]
    fn agreeing_reports_break_nothing() {
        let h = honest();
        assert_eq!(
            violations(&agreeing(), &expected(&[], &h)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_fork_a_root_mismatch_and_a_broken_link_are_caught() {
        let h = honest();
        let mut r = agreeing();
        r.chains.get_mut(&1).unwrap().get_mut(&2).unwrap().digest = d(99);
        let v = violations(&r, &expected(&[], &h));
        assert!(v.iter().any(|m| m.starts_with("fork at height 2")), "{v:?}");
        assert!(
            v.iter().any(|m| m.contains("block 3 does not extend")),
            "{v:?}"
        );

        let mut r = agreeing();
        r.chains
            .get_mut(&1)
            .unwrap()
            .get_mut(&3)
            .unwrap()
            .state_root = d(0);
        let v = violations(&r, &expected(&[], &h));
        assert!(
            v.iter()
                .any(|m| m.starts_with("state roots differ at height 3")),
            "{v:?}"
        );
    }

    #[test]
    fn a_finalized_invalid_block_or_applied_invalid_transaction_is_caught() {
        let h = honest();
        let r = agreeing();
        let deed = |deed, digest: u8, tx| DeedRecord {
            view: 1,
            deed,
            digest: commonware_cryptography::blake3::Digest([digest; 32]),
            tx,
        };
        let v = violations(&r, &expected(&[deed(Deed::WrongStateRoot, 2, None)], &h));
        assert!(
            v.iter().any(|m| m.contains("finalized an invalid block")),
            "{v:?}"
        );
        // Block 3 is a tampered valid block whose bad-signature transaction (tx 3) applied.
        let v = violations(
            &r,
            &expected(&[deed(Deed::BadSignature, 3, Some(tx(3)))], &h),
        );
        assert!(v.iter().any(|m| m.contains("expected rejection")), "{v:?}");
        assert!(
            v.iter()
                .any(|m| m.contains("applied an invalid transaction")),
            "{v:?}"
        );
    }

    #[test]
    fn a_double_apply_a_moved_transaction_and_a_missing_one_are_caught() {
        let h = honest();
        let mut r = agreeing();
        for chain in r.chains.values_mut() {
            chain.get_mut(&3).unwrap().txs.push((tx(1), None));
        }
        let v = violations(&r, &expected(&[], &h));
        assert!(v.iter().any(|m| m.contains("more than once")), "{v:?}");

        let mut r = agreeing();
        let moved = TxAt {
            height: 3,
            index: 0,
            applied: false,
        };
        r.last.get_mut(&tx(1)).unwrap().insert(1, Some(moved));
        let v = violations(&r, &expected(&[], &h));
        assert!(
            v.iter().any(|m| m.contains("validator 1 reports Some")),
            "{v:?}"
        );

        let mut with_missing = honest();
        with_missing.push(tx(9));
        let v = violations(&agreeing(), &expected(&[], &with_missing));
        assert!(v.iter().any(|m| m.contains("never applied")), "{v:?}");
    }

    #[test]
    fn wrong_balances_a_rewritten_block_and_an_honest_validator_blocked_are_caught() {
        let h = honest();
        let mut r = agreeing();
        let thief = Address([0xee; 32]);
        r.balances.insert(0, vec![(thief, 1)]);
        r.rewritten.push((1, 2));
        r.blocked = vec![(0, 3), (0, 1)];
        let balances = [(thief, 0)];
        let e = Expected {
            balances: &balances,
            ..expected(&[], &h)
        };
        let v = violations(&r, &e);
        assert!(
            v.iter().any(|m| m.contains("holds Some(1), expected 0")),
            "{v:?}"
        );
        assert!(
            v.iter().any(|m| m.contains("second block at height 2")),
            "{v:?}"
        );
        assert!(
            v.iter().any(|m| m.contains("blocked honest validator 1")),
            "{v:?}"
        );
        assert_eq!(
            v.len(),
            3,
            "blocking the Byzantine validator is no fault: {v:?}"
        );
    }
}
