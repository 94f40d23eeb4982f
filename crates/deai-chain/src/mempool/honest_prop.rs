//! The property the admission rules exist for: whatever others submit within the caps, an
//! honest funded transfer with a competitive fee is admitted and selected for the next block.
//!
//! "Competitive" is made exact by the paid-for rule: every pooled transaction with fee `f` or
//! more is backed by at least `f` of its sender's balance, so others holding a balance `B` in
//! total can hold fewer than `B / f + 1` such transactions. An honest fee `f` with
//! `B / f < min(pool size, block size)` therefore always finds a cheaper one to evict and a
//! place in the block, however the others play: unfunded keys, gapped nonces, fees they cannot
//! pay, replace-by-fee, many keys, blocks where their transactions fail.

use super::tests::T;
use super::*;
use proptest::prelude::*;

const SENDERS: u8 = 12;
const HONEST: u8 = SENDERS;
const TXS_MAX: usize = 16;
const BLOCK_TXS_MAX: usize = 6;
const WINDOW: u64 = 6;

#[derive(Clone, Debug)]
enum Op {
    /// Sender, nonce above its next, fee, amount, salt.
    Submit(u8, u64, u128, u128, u8),
    /// A block of the selection; transactions whose bit in the mask is set fail in it.
    Block(u16),
}

fn op() -> impl Strategy<Value = Op> {
    let fee = prop_oneof![
        1u128..50,
        50u128..2_000,
        Just(1u128 << 127),
        (u128::MAX - 3)..=u128::MAX,
    ];
    prop_oneof![
        6 => (0..SENDERS, 0..WINDOW + 2, fee, 0u128..300, 0u8..3)
            .prop_map(|(s, n, f, a, salt)| Op::Submit(s, n, f, a, salt)),
        1 => any::<u16>().prop_map(Op::Block),
    ]
}

/// Balances of the others: about half never funded, the rest a little.
fn balances() -> impl Strategy<Value = Vec<u128>> {
    proptest::collection::vec(prop_oneof![Just(0u128), 1u128..3_000], SENDERS as usize)
}

struct Chain {
    pool: Mempool<T>,
    next: Vec<u64>,
    balance: Vec<u128>,
    height: u64,
}

impl Chain {
    fn state(&self, s: u8) -> SenderState {
        SenderState {
            next_nonce: self.next[s as usize],
            balance: self.balance[s as usize],
        }
    }

    /// Selects, "executes" (a failed transaction changes nothing, as in the ledger), then does
    /// what the replica does after a block.
    fn block(&mut self, fail_mask: u16) -> Vec<T> {
        let picked = self
            .pool
            .select(BLOCK_TXS_MAX, 1 << 20, |s| self.next[*s as usize]);
        let mut failed = [false; SENDERS as usize + 1];
        for (i, tx) in picked.iter().enumerate() {
            let s = tx.sender as usize;
            let runs = tx.nonce == self.next[s] && tx.cost() <= self.balance[s];
            if runs && fail_mask & (1 << i) == 0 {
                self.balance[s] -= tx.cost();
                self.next[s] += 1;
            } else {
                failed[s] = true;
            }
        }
        self.height += 1;
        let ids: Vec<_> = picked.iter().map(PoolTx::id).collect();
        self.pool.remove_included(&ids);
        for tx in &picked {
            let state = self.state(tx.sender);
            self.pool
                .recheck_sender(&tx.sender, state, failed[tx.sender as usize]);
        }
        let next = self.next.clone();
        self.pool.expire(self.height, |s| next[*s as usize]);
        picked
    }

    /// No sender's pooled transactions cost more than its balance.
    fn assert_paid_for(&self) {
        for s in 0..=SENDERS {
            let pending: u128 = self
                .pool
                .by_sender
                .get(&s)
                .into_iter()
                .flat_map(|m| m.values())
                .fold(0, |sum, e| sum.saturating_add(e.tx.cost()));
            assert!(
                pending <= self.balance[s as usize],
                "sender {s} holds {pending} with balance {}",
                self.balance[s as usize]
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn an_honest_competitive_transfer_is_admitted_and_selected(
        balances in balances(),
        ops in proptest::collection::vec(op(), 1..300),
        amount in 1u128..1_000,
    ) {
        let mut balance = balances;
        balance.push(1 << 100); // the honest sender
        let mut chain = Chain {
            pool: Mempool::new(MempoolLimits {
                txs_max: TXS_MAX,
                bytes_max: 1 << 20,
                nonce_window: WINDOW,
                sender_txs_max: 4,
                expiry_blocks: 5,
            }),
            next: vec![0; SENDERS as usize + 1],
            balance,
            height: 0,
        };
        for op in ops {
            match op {
                Op::Submit(s, ahead, fee, amount, salt) => {
                    let tx = T { sender: s, nonce: chain.next[s as usize] + ahead, fee, amount, salt };
                    let _ = chain.pool.insert(tx, chain.state(s), chain.height);
                }
                Op::Block(mask) => {
                    chain.block(mask);
                }
            }
            chain.assert_paid_for();
            chain.pool.check_invariants();
        }
        let others: u128 = chain.balance[..SENDERS as usize].iter().sum();
        let fee = others / TXS_MAX.min(BLOCK_TXS_MAX) as u128 + 1;
        let honest = T { sender: HONEST, nonce: 0, fee, amount, salt: 0 };
        let admitted = chain.pool.insert(honest.clone(), chain.state(HONEST), chain.height);
        prop_assert!(admitted.is_ok(), "fee {} refused: {:?}", fee, admitted);
        let picked = chain.block(0);
        prop_assert!(picked.contains(&honest), "fee {} not selected", fee);
        prop_assert_eq!(chain.next[HONEST as usize], 1, "it ran");
    }
}
