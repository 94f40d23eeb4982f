//! One test per policy rule of the mempool, plus a random-operations invariant check.

use super::*;
use proptest::prelude::*;

#[derive(Clone, Debug, PartialEq)]
pub(super) struct T {
    pub(super) sender: u8,
    pub(super) nonce: u64,
    pub(super) fee: u128,
    pub(super) amount: u128,
    pub(super) salt: u8,
}

impl PoolTx for T {
    type Id = (u8, u64, u128, u128, u8);
    type Sender = u8;
    fn id(&self) -> Self::Id {
        (self.sender, self.nonce, self.fee, self.amount, self.salt)
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
    fn cost(&self) -> u128 {
        self.fee.saturating_add(self.amount)
    }
}

fn t(sender: u8, nonce: u64, fee: u128) -> T {
    T {
        sender,
        nonce,
        fee,
        amount: 0,
        salt: 0,
    }
}

const RICH: u128 = 1 << 100;

fn rich(next_nonce: u64) -> SenderState {
    SenderState {
        next_nonce,
        balance: RICH,
    }
}

fn limits(txs_max: usize) -> MempoolLimits {
    MempoolLimits {
        txs_max,
        bytes_max: 1 << 20,
        nonce_window: 8,
        sender_txs_max: 8,
        expiry_blocks: 10,
    }
}

fn pool(txs_max: usize) -> Mempool<T> {
    Mempool::new(limits(txs_max))
}

/// Admits `tx` for a rich sender whose next nonce is `next`, at height 0.
fn ins(p: &mut Mempool<T>, tx: T, next: u64) -> Result<Admitted<<T as PoolTx>::Id>, PoolError> {
    p.insert(tx, rich(next), 0)
}

#[test]
fn rejects_duplicate_id() {
    let mut p = pool(10);
    assert!(ins(&mut p, t(1, 0, 5), 0).is_ok());
    assert_eq!(ins(&mut p, t(1, 0, 5), 0), Err(PoolError::Duplicate));
    assert_eq!(p.len(), 1);
}

#[test]
fn same_nonce_replaces_only_with_higher_fee() {
    let mut p = pool(10);
    ins(&mut p, t(1, 0, 5), 0).expect("first");
    let cheaper = T {
        salt: 1,
        ..t(1, 0, 5)
    };
    assert_eq!(
        ins(&mut p, cheaper, 0),
        Err(PoolError::ReplacementUnderpriced {
            fee: 5,
            pooled_fee: 5
        })
    );
    let admitted = ins(&mut p, t(1, 0, 6), 0).expect("higher fee replaces");
    assert_eq!(admitted.replaced, Some(t(1, 0, 5).id()));
    assert_eq!(p.len(), 1);
    assert_eq!(p.get(&t(1, 0, 6).id()).map(|x| x.fee), Some(6));
    p.check_invariants();
}

#[test]
fn nonce_window_bounds() {
    let mut p = pool(10);
    assert_eq!(
        ins(&mut p, t(1, 2, 5), 3),
        Err(PoolError::NonceTooLow {
            nonce: 2,
            next_nonce: 3
        })
    );
    assert!(matches!(
        ins(&mut p, t(1, 11, 5), 3),
        Err(PoolError::NonceTooHigh { .. })
    ));
    assert!(
        ins(&mut p, t(1, 10, 5), 3).is_ok(),
        "3 + 8 - 1 is the last admitted nonce"
    );
}

/// The attack: a key that was never funded offers a fee of 2^127 on a gapped nonce.
/// It used to pass (only stateless checks) and hold a slot no honest fee could outbid.
#[test]
fn an_unfunded_sender_gets_nothing_in() {
    let mut p = pool(10);
    let broke = SenderState {
        next_nonce: 0,
        balance: 0,
    };
    for nonce in [0, 1, 7] {
        assert_eq!(
            p.insert(t(1, nonce, 1 << 127), broke, 0),
            Err(PoolError::Unaffordable {
                needed: 1 << 127,
                balance: 0,
                pending: 0
            }),
            "nonce {nonce}"
        );
    }
    assert!(p.is_empty());
}

/// Fees and amounts of every pending nonce add up against the balance, gapped or not; a
/// replacement's cost takes the place of the one it replaces.
#[test]
fn pending_costs_add_up_against_the_balance() {
    let mut p = pool(10);
    let state = SenderState {
        next_nonce: 0,
        balance: 100,
    };
    let tx = |nonce, fee, amount| T {
        sender: 1,
        nonce,
        fee,
        amount,
        salt: 0,
    };
    p.insert(tx(0, 10, 30), state, 0).expect("40 of 100");
    p.insert(tx(3, 10, 30), state, 0)
        .expect("80 of 100, gapped");
    assert_eq!(
        p.insert(tx(1, 10, 30), state, 0),
        Err(PoolError::Unaffordable {
            needed: 120,
            balance: 100,
            pending: 2
        })
    );
    p.insert(tx(1, 10, 10), state, 0).expect("exactly 100");
    // Replacing nonce 3 (cost 40) by a higher fee costing 41 would need 101.
    assert!(matches!(
        p.insert(tx(3, 11, 30), state, 0),
        Err(PoolError::Unaffordable { needed: 101, .. })
    ));
    p.insert(tx(3, 11, 29), state, 0)
        .expect("the replaced one's cost no longer counts");
    // Saturation: a fee of u128::MAX never wraps into something affordable.
    assert!(matches!(
        p.insert(tx(4, u128::MAX, 5), state, 0),
        Err(PoolError::Unaffordable {
            needed: u128::MAX,
            ..
        })
    ));
    assert_eq!(p.len(), 3);
    p.check_invariants();
}

#[test]
fn one_sender_holds_at_most_its_cap() {
    let mut p = Mempool::new(MempoolLimits {
        sender_txs_max: 3,
        ..limits(10)
    });
    for nonce in 0..3 {
        ins(&mut p, t(1, nonce, 5), 0).expect("under the cap");
    }
    assert_eq!(
        ins(&mut p, t(1, 3, 5), 0),
        Err(PoolError::SenderFull { pending: 3, max: 3 })
    );
    ins(&mut p, t(1, 2, 6), 0).expect("a replacement does not add one");
    ins(&mut p, t(2, 0, 5), 0).expect("another sender is not affected");
    assert_eq!(p.sender_len(&1), 3);
}

#[test]
fn full_pool_evicts_lowest_fee_only_for_a_higher_bid() {
    let mut p = pool(3);
    ins(&mut p, t(1, 0, 10), 0).expect("a");
    ins(&mut p, t(2, 0, 3), 0).expect("b");
    ins(&mut p, t(3, 0, 7), 0).expect("c");
    assert_eq!(
        ins(&mut p, t(4, 0, 3), 0),
        Err(PoolError::Full {
            fee: 3,
            lowest_fee: 3
        })
    );
    let admitted = ins(&mut p, t(4, 0, 4), 0).expect("outbids the lowest");
    assert_eq!(admitted.evicted, vec![t(2, 0, 3).id()]);
    assert!(!p.contains(&t(2, 0, 3).id()));
    assert_eq!(p.len(), 3);
    p.check_invariants();
}

#[test]
fn eviction_takes_the_victims_higher_nonces() {
    let mut p = pool(3);
    ins(&mut p, t(1, 0, 2), 0).expect("a");
    ins(&mut p, t(1, 1, 9), 0).expect("b");
    ins(&mut p, t(2, 0, 5), 0).expect("c");
    let admitted = ins(&mut p, t(3, 0, 6), 0).expect("d");
    assert_eq!(admitted.evicted, vec![t(1, 0, 2).id(), t(1, 1, 9).id()]);
    assert_eq!(p.len(), 2);
    p.check_invariants();
}

/// A refused newcomer changes nothing, even when it would have replaced a pooled transaction.
#[test]
fn a_refused_replacement_keeps_the_pooled_one() {
    let mut p = pool(3);
    let state = SenderState {
        next_nonce: 0,
        balance: 10,
    };
    p.insert(t(1, 0, 4), state, 0).expect("a");
    assert!(matches!(
        p.insert(t(1, 0, 11), state, 0),
        Err(PoolError::Unaffordable { .. })
    ));
    assert!(p.contains(&t(1, 0, 4).id()));
    p.check_invariants();
}

#[test]
fn select_takes_contiguous_runs_by_fee() {
    let mut p = pool(100);
    ins(&mut p, t(1, 0, 1), 0).expect("ok");
    ins(&mut p, t(1, 1, 50), 0).expect("ok");
    ins(&mut p, t(1, 3, 50), 0).expect("gap after 1");
    ins(&mut p, t(2, 5, 9), 5).expect("ok");
    ins(&mut p, t(3, 1, 100), 0).expect("sender 3 lacks nonce 0");
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
        ins(&mut p, t(1, n, 1), 0).expect("ok");
    }
    assert_eq!(p.remove_included(&[t(1, 0, 1).id(), t(9, 9, 9).id()]), 1);
    assert_eq!(p.prune_sender(&1, 3).len(), 2);
    assert_eq!(p.len(), 2);
    assert_eq!(p.highest_nonce(&1), Some(4));
    p.check_invariants();
}

/// The ledger leaves a failed transaction's nonce unused, so its sender's later nonces cannot
/// run until something fills it: they used to stay for ever (467 seen in one run).
#[test]
fn a_failed_transaction_does_not_strand_its_successors() {
    let mut p = pool(100);
    for n in 0..4 {
        ins(&mut p, t(1, n, 1), 0).expect("ok");
        ins(&mut p, t(2, n, 1), 0).expect("ok");
    }
    // A block includes nonce 0 of both; sender 1's fails (next nonce stays 0), 2's runs.
    p.remove_included(&[t(1, 0, 1).id(), t(2, 0, 1).id()]);
    let dropped = p.recheck_sender(&1, rich(0), true);
    assert_eq!(
        dropped,
        (1..4)
            .map(|n| (t(1, n, 1).id(), Dropped::PredecessorFailed))
            .collect::<Vec<_>>()
    );
    assert!(p.recheck_sender(&2, rich(1), false).is_empty());
    assert_eq!(p.sender_len(&2), 3);

    // A replacement for the failed nonce, pooled while the block was in flight, keeps the run.
    ins(&mut p, t(3, 0, 1), 0).expect("ok");
    ins(&mut p, t(3, 1, 1), 0).expect("ok");
    ins(&mut p, t(3, 0, 2), 0).expect("replaces nonce 0");
    p.remove_included(&[t(3, 0, 1).id()]);
    assert!(p.recheck_sender(&3, rich(0), true).is_empty());
    assert_eq!(p.sender_len(&3), 2);
    p.check_invariants();
}

/// After a block, stale nonces leave, and a run the balance no longer pays for is cut at its
/// first unpaid nonce.
#[test]
fn recheck_prunes_stale_and_unaffordable() {
    let mut p = pool(100);
    for n in 0..5 {
        ins(&mut p, t(1, n, 10), 0).expect("ok");
    }
    let dropped = p.recheck_sender(
        &1,
        SenderState {
            next_nonce: 1,
            balance: 25,
        },
        false,
    );
    assert_eq!(
        dropped,
        vec![
            (t(1, 0, 10).id(), Dropped::Stale),
            (t(1, 3, 10).id(), Dropped::Unaffordable),
            (t(1, 4, 10).id(), Dropped::Unaffordable),
        ]
    );
    assert_eq!(p.sender_len(&1), 2);
    p.check_invariants();
}

#[test]
fn what_cannot_run_expires_and_what_can_stays() {
    let mut p = pool(100);
    p.insert(t(1, 2, 5), rich(0), 3).expect("gapped");
    p.insert(t(1, 3, 5), rich(0), 6).expect("gapped, later");
    p.insert(t(2, 0, 5), rich(0), 3).expect("runs");
    p.insert(t(3, 1, 5), rich(0), 3)
        .expect("gapped, filled later");
    p.insert(t(3, 0, 5), rich(0), 9).expect("fills the gap");
    let next = |_: &u8| 0;
    assert!(p.expire(12, next).is_empty(), "nothing is 10 blocks old");
    // At 13 the three admitted at 3 are due: sender 1's nonce 2 cannot run, and takes its
    // higher nonce along; the others can and are looked at again at 23.
    assert_eq!(
        p.expire(13, next),
        vec![
            (t(1, 2, 5).id(), Dropped::Expired),
            (t(1, 3, 5).id(), Dropped::Expired)
        ]
    );
    assert_eq!(p.len(), 3);
    assert!(p.expire(22, next).is_empty());
    // Sender 2 now at nonce 1 (its 0 went elsewhere): its pooled 0 is stale.
    let dropped = p.expire(23, |s| u64::from(*s == 2));
    assert_eq!(dropped, vec![(t(2, 0, 5).id(), Dropped::Stale)]);
    assert_eq!(p.len(), 2);
    p.check_invariants();
}

proptest! {
    #[test]
    fn invariants_hold_under_random_ops(ops in proptest::collection::vec(
        (0u8..5, 0u8..5, 0u64..10, 1u128..20, 0u8..2), 1..200)) {
        let mut p = pool(12);
        let mut next = [0u64; 5];
        let mut height = 0;
        for (op, sender, nonce, fee, salt) in ops {
            let tx = T { sender, nonce, fee, amount: 0, salt };
            match op {
                0 | 1 => {
                    let _ = p.insert(tx, rich(next[sender as usize]), height);
                }
                2 => {
                    let picked = p.select(4, 1 << 20, |s| next[*s as usize]);
                    for tx in &picked {
                        prop_assert_eq!(tx.nonce, next[tx.sender as usize]);
                        next[tx.sender as usize] += 1;
                        p.remove(&tx.id());
                    }
                }
                3 => {
                    height += 3;
                    p.expire(height, |s| next[*s as usize]);
                }
                _ => {
                    next[sender as usize] += 1;
                    p.recheck_sender(&sender, rich(next[sender as usize]), salt == 1);
                }
            }
            p.check_invariants();
            prop_assert!(p.len() <= 12);
        }
    }
}
