//! Random sequences of offers, channel opens, top-ups, claims (good and bad vouchers), closes,
//! honest and lying disputes, withdrawals and idle blocks: tokens are conserved after every
//! block, with emissions on (balances + stake + unbonding + escrow + channel deposits + bonds +
//! emission pool + burned == genesis supply + emitted, summed here from the entries, not from
//! the ledger's own report), and a replica applying the same blocks has the same root and
//! outcomes.

use super::{M, PAYER, PROVIDER, STRANGER};
use crate::common::*;
use deai_ledger::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Offer,
    Withdraw {
        offer: usize,
    },
    TopUpBond {
        offer: usize,
        amount: u128,
    },
    Open {
        offer: usize,
        by: bool,
        deposit: u128,
        ahead: u64,
    },
    TopUp {
        channel: usize,
        amount: u128,
        extend: u64,
    },
    /// A voucher for `percent` of the channel's deposit (above 100: overdrawn).
    Claim {
        channel: usize,
        percent: u128,
        good_signer: bool,
    },
    Close {
        channel: usize,
        by_provider: bool,
    },
    Dispute {
        channel: usize,
        sequence: u64,
        lie: bool,
        seed: u64,
    },
    Idle {
        blocks: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let idx = 0usize..4;
    prop_oneof![
        1 => Just(Op::Offer),
        1 => idx.clone().prop_map(|offer| Op::Withdraw { offer }),
        1 => (idx.clone(), 0u128..5_000).prop_map(|(offer, amount)| Op::TopUpBond { offer, amount }),
        3 => (idx.clone(), any::<bool>(), 0u128..6_000, 0u64..50)
            .prop_map(|(offer, by, deposit, ahead)| Op::Open { offer, by, deposit, ahead }),
        1 => (idx.clone(), 0u128..2_000, 0u64..20)
            .prop_map(|(channel, amount, extend)| Op::TopUp { channel, amount, extend }),
        6 => (idx.clone(), 0u128..=110, prop::bool::weighted(0.9))
            .prop_map(|(channel, percent, good_signer)| Op::Claim { channel, percent, good_signer }),
        2 => (idx.clone(), any::<bool>())
            .prop_map(|(channel, by_provider)| Op::Close { channel, by_provider }),
        2 => (idx.clone(), 0u64..3, prop::bool::weighted(0.3), 0u64..4)
            .prop_map(|(channel, sequence, lie, seed)| Op::Dispute { channel, sequence, lie, seed }),
        2 => (1u64..25).prop_map(|blocks| Op::Idle { blocks }),
    ]
}

/// Ids are dense from 1: the `i`-th existing entity, or 1 when there is none.
fn pick(count: usize, i: usize) -> u64 {
    (i % count.max(1)) as u64 + 1
}

/// The transaction `op` sends (none for an idle block).
fn build(m: &M, op: &Op) -> Option<SignedTx> {
    let offers = m.s.offers().count();
    let channels = m.s.channels().count();
    let (who, fee, body) = match *op {
        Op::Offer => (PROVIDER, 1, m.offer_body(super::ROYALTY_BPS, m.model.ops())),
        Op::Withdraw { offer } => (
            PROVIDER,
            1,
            TxBody::OfferWithdraw(OfferWithdraw {
                offer: pick(offers, offer),
            }),
        ),
        Op::TopUpBond { offer, amount } => (
            PROVIDER,
            1,
            TxBody::OfferUpdate(OfferUpdate {
                offer: pick(offers, offer),
                price_per_query: None,
                endpoint: None,
                bond_top_up: amount,
            }),
        ),
        Op::Open {
            offer,
            by,
            deposit,
            ahead,
        } => (
            if by { PAYER } else { 0 },
            1,
            TxBody::ChannelOpen(ChannelOpen {
                offer: pick(offers, offer),
                deposit,
                expiry_height: m.s.height() + 1 + ahead,
            }),
        ),
        Op::TopUp {
            channel,
            amount,
            extend,
        } => {
            let id = pick(channels, channel);
            let c = m.s.channel(id)?;
            let payer = if c.payer == m.addr(PAYER) { PAYER } else { 0 };
            let body = TxBody::ChannelTopUp(ChannelTopUp {
                channel: id,
                amount,
                expiry_height: c.expiry_height + extend,
            });
            (payer, 1, body)
        }
        Op::Claim {
            channel,
            percent,
            good_signer,
        } => {
            let id = pick(channels, channel);
            let amount = m.s.channel(id).map_or(1, |c| c.deposit * percent / 100);
            let payer =
                m.s.channel(id)
                    .map_or(PAYER, |c| if c.payer == m.addr(PAYER) { PAYER } else { 0 });
            let signer = if good_signer { payer } else { STRANGER };
            (PROVIDER, 1, M::claim(id, m.voucher(signer, id, amount)))
        }
        Op::Close {
            channel,
            by_provider,
        } => {
            let id = pick(channels, channel);
            let payer =
                m.s.channel(id)
                    .map_or(PAYER, |c| if c.payer == m.addr(PAYER) { PAYER } else { 0 });
            let who = if by_provider { PROVIDER } else { payer };
            (who, 1, TxBody::ChannelClose(ChannelClose { channel: id }))
        }
        Op::Dispute {
            channel,
            sequence,
            lie,
            seed,
        } => {
            let id = pick(channels, channel);
            let offer = m.s.channel(id).map_or(1, |c| c.offer);
            let (receipt, input) = m.receipt(offer, id, sequence, seed, lie);
            let d = m.dispute(receipt, input);
            (STRANGER, m.dispute_fee(&d), TxBody::ReceiptDispute(d))
        }
        Op::Idle { .. } => return None,
    };
    Some(m.tx_fee(who, fee, body))
}

/// Every token, summed from the entries themselves.
fn tokens(s: &State) -> u128 {
    let accounts: u128 = s
        .accounts()
        .map(|a| a.balance + a.staked + a.unbonding_total())
        .sum();
    // Escrow, and the coordinator bonds and challenge deposits a task locks.
    let escrow: u128 = s.tasks().map(|t| t.escrow + t.locked()).sum();
    let deposits: u128 = s
        .channels()
        .filter(|c| c.status == ChannelStatus::Open)
        .map(|c| c.deposit - c.claimed)
        .sum();
    let bonds: u128 = s.offers().map(|o| o.bond).sum();
    accounts + escrow + deposits + bonds + s.burned() + s.emission_pool()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn tokens_are_conserved_and_replicas_agree(ops in prop::collection::vec(op(), 1..40)) {
        // Emissions on, with short epochs: slashes, burns and mints in one run.
        let mut m = M::with_params(Params {
            emission_per_block: 500,
            epoch_blocks: 8,
            ..super::market_params()
        });
        m.offer();
        let genesis = m.s.supply().genesis;
        let mut replica = m.s.clone();
        for op in &ops {
            let blocks = match op { Op::Idle { blocks } => *blocks, _ => 1 };
            for _ in 0..blocks {
                let txs: Vec<SignedTx> = build(&m, op).into_iter().collect();
                let proposer = addr(&m.k[if m.s.height().is_multiple_of(2) { 0 } else { 5 }]);
                let blk = next_block(&m.s, proposer, txs);
                let out = m.s.apply_block(&blk);
                prop_assert_eq!(&out, &replica.apply_block(&blk));
                let report = m.s.supply();
                prop_assert_eq!(tokens(&m.s), genesis + report.emitted);
                prop_assert!(report.conserved(), "{:?}", report);
                for c in m.s.channels() {
                    prop_assert!(c.claimed <= c.deposit);
                    prop_assert!(c.disputed.windows(2).all(|w| w[0] < w[1]));
                }
                for o in m.s.offers() {
                    prop_assert!(o.status == OfferStatus::Active || o.bond == 0
                        || o.status == OfferStatus::Withdrawn);
                }
            }
        }
        prop_assert_eq!(m.s.root(), replica.root());
    }
}
