//! The inference market of issue 14: offers, payment channels and vouchers, receipt disputes
//! settled by re-executing with `deai-infer`, royalties by contribution score. Every rejection is
//! checked by `check_tx` and in a block, with root, supply and sender unchanged.

use super::{commit, open, result};
use crate::common::*;
use deai_infer::{Arch, Input, QuantModel};
use deai_ledger::*;
use ed25519_dalek::SigningKey;

mod props;

const CREATOR: usize = 1;
const PAYER: usize = 2;
const OWNER_A: usize = 3;
const OWNER_B: usize = 4;
const STRANGER: usize = 6;
const PROVIDER: usize = 7;
const BOND: u128 = 20_000;
const DISPUTE_BOND: u128 = 500;
const EXPIRY_MAX: u64 = 40;
const WINDOW: u64 = 10;
const PRICE: u128 = 10;
/// Dataset 1's consent asks this royalty at least.
const FLOOR_BPS: u32 = 200;
const ROYALTY_BPS: u32 = 250;

pub(crate) fn market_params() -> Params {
    Params {
        offer_bond_min: 1_000,
        channel_expiry_max: EXPIRY_MAX,
        dispute_window_blocks: WINDOW,
        offer_unbond_blocks: EXPIRY_MAX + WINDOW + 1,
        dispute_bond: DISPUTE_BOND,
        dispute_fee_per_byte: 1,
        dispute_reward_bps: 5_000,
        ..test_params()
    }
}

fn mlp() -> QuantModel {
    QuantModel::seeded(
        Arch::Mlp {
            inputs: 64,
            hidden: 32,
            classes: 10,
        },
        7,
    )
}

/// Keys 3, 4, 5 own datasets 1, 2, 3 (dataset 1 asks a 2 % royalty); key 1 ran task 1 over them
/// for one round scoring datasets 1 and 2 at 3:1 (dataset 3 scored 0) and registered model 1;
/// key 7 is a provider, key 2 a payer.
pub(crate) struct M {
    pub(crate) k: Vec<SigningKey>,
    pub(crate) s: State,
    pub(crate) model: QuantModel,
}

impl M {
    pub(crate) fn new() -> Self {
        Self::with_params(market_params())
    }

    pub(crate) fn with_params(params: Params) -> Self {
        let k = keys(8);
        let s = State::from_genesis(&genesis(&k, params)).unwrap();
        let mut m = M { k, s, model: mlp() };
        let mut floor = policy(&["health"], 1_000);
        floor.royalty_bps_min = FLOOR_BPS;
        m.ok(OWNER_A, dataset_register(0, floor));
        m.ok(OWNER_B, dataset_register(1, policy(&["health"], 1_000)));
        m.ok(5, dataset_register(2, policy(&["health"], 1_000)));
        m.ok(
            CREATOR,
            task_create(vec![1, 2, 3], "health", 10_000, 5 * EPSILON_SCALE),
        );
        m.ok(CREATOR, commit(1));
        let open = open(&m.s, 1, 3);
        m.ok(CREATOR, open);
        m.ok(
            CREATOR,
            result(1, 1, vec![1, 2, 3], &[(1, 300_000), (2, 100_000), (3, 0)]),
        );
        m.ok(CREATOR, model_register(1, None));
        m
    }

    pub(crate) fn addr(&self, who: usize) -> Address {
        addr(&self.k[who])
    }

    pub(crate) fn tx_fee(&self, who: usize, fee: u128, body: TxBody) -> SignedTx {
        let nonce = self.s.account(&self.addr(who)).nonce;
        sign(&self.k[who], nonce, fee, body)
    }

    pub(crate) fn ok(&mut self, who: usize, body: TxBody) -> BlockOutcome {
        let tx = self.tx_fee(who, 1, body);
        ok(&mut self.s, tx)
    }

    pub(crate) fn ok_fee(&mut self, who: usize, fee: u128, body: TxBody) -> BlockOutcome {
        let tx = self.tx_fee(who, fee, body);
        ok(&mut self.s, tx)
    }

    /// Rejected by check_tx and in a block with `code`; root, supply and sender unchanged.
    pub(crate) fn rejected_fee(
        &mut self,
        who: usize,
        fee: u128,
        body: TxBody,
        code: &str,
    ) -> TxError {
        let tx = self.tx_fee(who, fee, body);
        let err = self.s.check_tx(&tx).unwrap_err();
        assert_eq!(err.code(), code, "check_tx: {err}");
        let (root, supply, sender) = (
            self.s.root(),
            self.s.supply(),
            self.s.account(&tx.tx.sender),
        );
        let out = block(&mut self.s, Address([0xAB; 32]), vec![tx]);
        assert_eq!(out.receipts[0].result.as_ref().unwrap_err(), &err);
        assert_eq!(out.root, root, "root changed by a rejected tx");
        assert_eq!(self.s.supply(), supply);
        assert_eq!(self.s.account(&sender.address), sender);
        err
    }

    pub(crate) fn rejected(&mut self, who: usize, body: TxBody, code: &str) -> TxError {
        self.rejected_fee(who, 1, body, code)
    }

    pub(crate) fn balance(&self, who: usize) -> u128 {
        self.s.account(&self.addr(who)).balance
    }

    /// Empty blocks until the state is at `height`.
    pub(crate) fn run_to(&mut self, height: u64) {
        while self.s.height() < height {
            block(&mut self.s, Address([0xAB; 32]), vec![]);
        }
    }

    fn offer_body(&self, royalty_bps: u32, ops: u64) -> TxBody {
        TxBody::OfferCreate(OfferCreate {
            model: 1,
            quant_hash: Digest(self.model.hash()),
            ops,
            price_per_query: PRICE,
            bond: BOND,
            endpoint: "http://127.0.0.1:7000".into(),
            royalty_bps,
        })
    }

    /// The provider offers model 1 (honest ops); returns the offer id.
    pub(crate) fn offer(&mut self) -> u64 {
        let body = self.offer_body(ROYALTY_BPS, self.model.ops());
        self.ok(PROVIDER, body);
        self.s.offers().last().unwrap().id
    }

    /// The payer opens a channel on `offer` expiring `ahead` blocks after its block.
    pub(crate) fn channel(&mut self, offer: u64, deposit: u128, ahead: u64) -> u64 {
        let expiry_height = self.s.height() + 1 + ahead;
        self.ok(
            PAYER,
            TxBody::ChannelOpen(ChannelOpen {
                offer,
                deposit,
                expiry_height,
            }),
        );
        self.s.channels().last().unwrap().id
    }

    pub(crate) fn voucher(&self, signer: usize, channel: u64, amount: u128) -> SignedVoucher {
        Voucher {
            chain_id: CHAIN.into(),
            channel_id: channel,
            cumulative_amount: amount,
        }
        .sign(&self.k[signer])
    }

    pub(crate) fn claim(channel: u64, voucher: SignedVoucher) -> TxBody {
        TxBody::ChannelClaim(ChannelClaim { channel, voucher })
    }

    /// The provider's receipt of query `sequence` on `channel` with input `seed`: honest, or
    /// with the first logit changed when `lie`.
    pub(crate) fn receipt(
        &self,
        offer: u64,
        channel: u64,
        sequence: u64,
        seed: u64,
        lie: bool,
    ) -> (SignedQueryReceipt, Vec<u8>) {
        let input = Input::seeded(&self.model, seed);
        let mut out = deai_infer::infer(&self.model, &input);
        if lie {
            out.logits[0] = out.logits[0].wrapping_add(1);
        }
        let receipt = QueryReceipt {
            chain_id: CHAIN.into(),
            offer_id: offer,
            channel_id: channel,
            sequence,
            input_hash: Digest(input.hash()),
            output: out.to_bytes(),
            model_hash: Digest(self.model.hash()),
            voucher_amount: PRICE * u128::from(sequence + 1),
        }
        .sign(&self.k[PROVIDER]);
        (receipt, input.as_bytes().to_vec())
    }

    pub(crate) fn dispute(&self, receipt: SignedQueryReceipt, input: Vec<u8>) -> ReceiptDispute {
        ReceiptDispute {
            receipt,
            input,
            model: self.model.encode(),
        }
    }

    /// The fee a dispute must pay at least.
    pub(crate) fn dispute_fee(&self, d: &ReceiptDispute) -> u128 {
        d.fee_min(self.s.params())
    }

    fn supply_ok(&self) {
        let s = self.s.supply();
        assert_eq!(s.total, s.genesis, "{s:?}");
    }
}

#[test]
fn an_offer_locks_its_bond_and_respects_ops_bond_and_royalty_floor() {
    let mut m = M::new();
    let ops = m.model.ops();
    let mut body = m.offer_body(ROYALTY_BPS, ops);
    if let TxBody::OfferCreate(o) = &mut body {
        o.model = 9;
    }
    m.rejected(PROVIDER, body, "unknown_id");
    let max = m.s.params().dispute_ops_max;
    m.rejected(
        PROVIDER,
        m.offer_body(ROYALTY_BPS, max + 1),
        "dispute_too_costly",
    );
    let mut cheap = m.offer_body(ROYALTY_BPS, ops);
    if let TxBody::OfferCreate(o) = &mut cheap {
        o.bond = 999;
    }
    m.rejected(PROVIDER, cheap, "invalid_field");
    let err = m.rejected(
        PROVIDER,
        m.offer_body(FLOOR_BPS - 1, ops),
        "royalty_below_floor",
    );
    assert!(
        matches!(
            err,
            TxError::RoyaltyBelowFloor {
                dataset: 1,
                floor: FLOOR_BPS,
                ..
            }
        ),
        "{err}"
    );
    m.rejected(PROVIDER, m.offer_body(10_001, ops), "invalid_field");
    let before = m.balance(PROVIDER);
    let id = m.offer();
    assert_eq!(m.balance(PROVIDER), before - BOND - 1);
    let o = m.s.offer(id).unwrap();
    assert_eq!((o.status, o.bond, o.ops), (OfferStatus::Active, BOND, ops));
    assert_eq!(
        o.contributors,
        vec![
            Contributor {
                dataset: 1,
                weight: 300_000
            },
            Contributor {
                dataset: 2,
                weight: 100_000
            }
        ]
    );
    // The offer's bond, and the coordinator bond of the task that trained the model (still open).
    let task_locked: u128 = m.s.tasks().map(|t| t.locked()).sum();
    assert_eq!(task_locked, COORDINATOR_BOND);
    assert_eq!(m.s.supply().bonds, BOND + task_locked);
    m.supply_ok();
    // The offer is in its model's history, and the queries find it.
    let model = m.s.model(1).unwrap();
    assert!(matches!(
        model.history.last().unwrap().event,
        Event::OfferCreated { id: 1, .. }
    ));
    assert_eq!(m.s.offers_by_model(1).count(), 1);
    assert_eq!(m.s.offers_by_provider(&m.addr(PROVIDER)).count(), 1);
    assert_eq!(m.s.offers_by_provider(&m.addr(PAYER)).count(), 0);
}

#[test]
fn claims_pay_the_provider_and_royalties_by_score() {
    let mut m = M::new();
    let offer = m.offer();
    let ch = m.channel(offer, 10_000, 20);
    assert_eq!(m.s.supply().channels, 10_000);
    let (p0, a0, b0, c0) = (
        m.balance(PROVIDER),
        m.balance(OWNER_A),
        m.balance(OWNER_B),
        m.balance(5),
    );
    // 4 000 claimed: royalty 2.5 % = 100, split 3:1 → 75 and 25; dataset 3 scored 0.
    let out = m.ok(PROVIDER, M::claim(ch, m.voucher(PAYER, ch, 4_000)));
    assert_eq!(m.balance(OWNER_A), a0 + 75);
    assert_eq!(m.balance(OWNER_B), b0 + 25);
    assert_eq!(m.balance(5), c0);
    assert_eq!(m.balance(PROVIDER), p0 + 3_900 - 1);
    let events = &out.receipts[0].events;
    assert_eq!(
        events[0],
        Event::ChannelClaimed {
            id: ch,
            offer,
            provider: m.addr(PROVIDER),
            amount: 4_000,
            provider_amount: 3_900,
            royalty: 100,
        }
    );
    assert!(matches!(
        events[1],
        Event::RoyaltyPaid {
            dataset: 1,
            amount: 75,
            ..
        }
    ));
    assert!(matches!(
        events[2],
        Event::RoyaltyPaid {
            dataset: 2,
            amount: 25,
            ..
        }
    ));
    // The owners see it in their datasets' histories.
    assert!(matches!(
        m.s.dataset(1).unwrap().history.last().unwrap().event,
        Event::RoyaltyPaid { amount: 75, .. }
    ));
    // A later, higher voucher pays the difference: 39 royalty → 29 + 9, dust 1 to the provider.
    m.ok(PROVIDER, M::claim(ch, m.voucher(PAYER, ch, 5_560)));
    assert_eq!(m.balance(OWNER_A), a0 + 75 + 29);
    assert_eq!(m.balance(OWNER_B), b0 + 25 + 9);
    assert_eq!(m.balance(PROVIDER), p0 + 3_900 + 1_521 + 1 - 2);
    let c = m.s.channel(ch).unwrap();
    assert_eq!((c.claimed, c.locked()), (5_560, 4_440));
    assert_eq!(m.s.channels_by_offer(offer).count(), 1);
    assert_eq!(m.s.channels_by_payer(&m.addr(PAYER)).count(), 1);
    assert_eq!(m.s.channels_by_payer(&m.addr(PROVIDER)).count(), 0);
    assert_eq!(m.s.supply().channels, 4_440);
    m.supply_ok();
}

#[test]
fn bad_vouchers_are_refused() {
    let mut m = M::new();
    let offer = m.offer();
    let ch = m.channel(offer, 1_000, 20);
    let other = m.channel(offer, 1_000, 20);
    let good = m.voucher(PAYER, ch, 300);
    m.ok(PROVIDER, M::claim(ch, good.clone()));
    // Replay, lower, equal.
    m.rejected(PROVIDER, M::claim(ch, good), "voucher_not_newer");
    m.rejected(
        PROVIDER,
        M::claim(ch, m.voucher(PAYER, ch, 200)),
        "voucher_not_newer",
    );
    // Another key than the payer's.
    m.rejected(
        PROVIDER,
        M::claim(ch, m.voucher(STRANGER, ch, 400)),
        "voucher_bad_signature",
    );
    // A tampered amount breaks the signature.
    let mut forged = m.voucher(PAYER, ch, 400);
    forged.voucher.cumulative_amount = 900;
    m.rejected(PROVIDER, M::claim(ch, forged), "voucher_bad_signature");
    // More than the deposit.
    m.rejected(
        PROVIDER,
        M::claim(ch, m.voucher(PAYER, ch, 1_001)),
        "voucher_overdrawn",
    );
    // Another channel's voucher, another chain's.
    m.rejected(
        PROVIDER,
        M::claim(ch, m.voucher(PAYER, other, 400)),
        "invalid_field",
    );
    let mut elsewhere = Voucher {
        chain_id: "another-chain".into(),
        channel_id: ch,
        cumulative_amount: 400,
    };
    m.rejected(
        PROVIDER,
        M::claim(ch, elsewhere.clone().sign(&m.k[PAYER])),
        "wrong_chain_id",
    );
    elsewhere.chain_id = CHAIN.into();
    // Only the provider claims, and only on a channel that exists.
    m.rejected(
        PAYER,
        M::claim(ch, elsewhere.clone().sign(&m.k[PAYER])),
        "not_owner",
    );
    m.rejected(
        PROVIDER,
        M::claim(99, m.voucher(PAYER, 99, 1)),
        "unknown_id",
    );
    // After the expiry nothing is claimed.
    let expiry = m.s.channel(ch).unwrap().expiry_height;
    m.run_to(expiry);
    m.rejected(
        PROVIDER,
        M::claim(ch, m.voucher(PAYER, ch, 400)),
        "channel_expired",
    );
    m.supply_ok();
}

#[test]
fn closing_returns_the_remainder_to_the_payer() {
    let mut m = M::new();
    let offer = m.offer();
    let ch = m.channel(offer, 1_000, 5);
    m.ok(PROVIDER, M::claim(ch, m.voucher(PAYER, ch, 250)));
    let close = TxBody::ChannelClose(ChannelClose { channel: ch });
    m.rejected(PAYER, close.clone(), "channel_not_expired");
    m.rejected(STRANGER, close.clone(), "not_owner");
    let expiry = m.s.channel(ch).unwrap().expiry_height;
    m.run_to(expiry - 1);
    // The claim window ends with the expiry block: closing starts after it.
    m.ok(PROVIDER, M::claim(ch, m.voucher(PAYER, ch, 300)));
    let before = m.balance(PAYER);
    let out = m.ok(PAYER, close.clone());
    assert_eq!(m.balance(PAYER), before + 700 - 1);
    assert_eq!(
        out.receipts[0].events,
        vec![Event::ChannelClosed {
            id: ch,
            payer: m.addr(PAYER),
            refund: 700
        }]
    );
    m.rejected(PAYER, close, "channel_not_open");
    // A provider may close early (giving up its claims); the payer is refunded at once.
    let ch2 = m.channel(offer, 500, 30);
    m.ok(PROVIDER, M::claim(ch2, m.voucher(PAYER, ch2, 100)));
    let before = m.balance(PAYER);
    m.ok(
        PROVIDER,
        TxBody::ChannelClose(ChannelClose { channel: ch2 }),
    );
    assert_eq!(m.balance(PAYER), before + 400);
    m.rejected(
        PROVIDER,
        M::claim(ch2, m.voucher(PAYER, ch2, 200)),
        "channel_not_open",
    );
    assert_eq!(m.s.supply().channels, 0);
    m.supply_ok();
}

#[test]
fn top_ups_add_deposit_and_extend_within_bounds() {
    let mut m = M::new();
    let offer = m.offer();
    let ch = m.channel(offer, 100, 5);
    let expiry = m.s.channel(ch).unwrap().expiry_height;
    let top = |amount, expiry_height| {
        TxBody::ChannelTopUp(ChannelTopUp {
            channel: ch,
            amount,
            expiry_height,
        })
    };
    m.rejected(PAYER, top(0, expiry), "zero_amount");
    m.rejected(PAYER, top(10, expiry - 1), "invalid_field");
    let too_far = m.s.height() + 1 + EXPIRY_MAX + 1;
    m.rejected(PAYER, top(10, too_far), "invalid_field");
    m.rejected(STRANGER, top(10, expiry), "not_owner");
    m.ok(PAYER, top(50, expiry + 10));
    let c = m.s.channel(ch).unwrap();
    assert_eq!((c.deposit, c.expiry_height), (150, expiry + 10));
    m.ok(PROVIDER, M::claim(ch, m.voucher(PAYER, ch, 150)));
    // Channels of a withdrawn offer cannot be extended or opened.
    m.ok(PROVIDER, TxBody::OfferWithdraw(OfferWithdraw { offer }));
    m.rejected(PAYER, top(10, expiry + 10), "offer_not_active");
    let open = TxBody::ChannelOpen(ChannelOpen {
        offer,
        deposit: 10,
        expiry_height: m.s.height() + 5,
    });
    m.rejected(PAYER, open, "offer_not_active");
    m.supply_ok();
}

#[test]
fn offers_update_only_by_their_provider_while_active() {
    let mut m = M::new();
    let offer = m.offer();
    let update = |price, bond_top_up| {
        TxBody::OfferUpdate(OfferUpdate {
            offer,
            price_per_query: price,
            endpoint: Some("http://new".into()),
            bond_top_up,
        })
    };
    m.rejected(STRANGER, update(Some(5), 0), "not_owner");
    m.rejected(PROVIDER, update(Some(0), 0), "zero_amount");
    m.ok(PROVIDER, update(Some(5), 1_000));
    let o = m.s.offer(offer).unwrap();
    assert_eq!(
        (o.price_per_query, o.bond, o.endpoint.as_str()),
        (5, BOND + 1_000, "http://new")
    );
    m.ok(PROVIDER, update(None, 0));
    assert_eq!(m.s.offer(offer).unwrap().price_per_query, 5);
    m.ok(PROVIDER, TxBody::OfferWithdraw(OfferWithdraw { offer }));
    m.rejected(PROVIDER, update(Some(6), 0), "offer_not_active");
    m.rejected(
        PROVIDER,
        TxBody::OfferWithdraw(OfferWithdraw { offer }),
        "offer_not_active",
    );
    m.supply_ok();
}

#[test]
fn a_dispute_of_an_honest_receipt_fails_and_of_a_wrong_one_slashes() {
    let mut m = M::new();
    let offer = m.offer();
    let ch = m.channel(offer, 1_000, 20);
    m.ok(PROVIDER, M::claim(ch, m.voucher(PAYER, ch, 100)));
    // Honest: the disputer pays its fee and the dispute bond to the provider.
    let (receipt, input) = m.receipt(offer, ch, 0, 1, false);
    let d = m.dispute(receipt.clone(), input.clone());
    let fee = m.dispute_fee(&d);
    assert_eq!(fee, 1 + (m.model.encode().len() + 64) as u128);
    let (s0, p0) = (m.balance(STRANGER), m.balance(PROVIDER));
    let out = m.ok_fee(STRANGER, fee, TxBody::ReceiptDispute(d.clone()));
    assert_eq!(m.balance(STRANGER), s0 - fee - DISPUTE_BOND);
    assert_eq!(m.balance(PROVIDER), p0 + DISPUTE_BOND);
    assert!(matches!(
        out.receipts[0].events[0],
        Event::DisputeRejected {
            sequence: 0,
            forfeit: DISPUTE_BOND,
            ..
        }
    ));
    assert_eq!(m.s.offer(offer).unwrap().status, OfferStatus::Active);
    // A receipt is disputed once.
    m.rejected_fee(STRANGER, fee, TxBody::ReceiptDispute(d), "already_disputed");
    // Wrong: a flipped logit. Half the bond to the disputer, half burned, offer suspended.
    let (receipt, input) = m.receipt(offer, ch, 1, 2, true);
    let s0 = m.balance(STRANGER);
    let out = m.ok_fee(
        STRANGER,
        fee,
        TxBody::ReceiptDispute(m.dispute(receipt, input)),
    );
    assert_eq!(
        out.receipts[0].events[0],
        Event::DisputeUpheld {
            offer,
            channel: ch,
            sequence: 1,
            disputer: m.addr(STRANGER),
            cause: DisputeCause::WrongOutput,
            reward: BOND / 2,
            burned: BOND / 2,
        }
    );
    assert_eq!(m.balance(STRANGER), s0 - fee + BOND / 2);
    let o = m.s.offer(offer).unwrap();
    assert_eq!((o.status, o.bond), (OfferStatus::Suspended, 0));
    assert_eq!(m.s.supply().burned, BOND / 2);
    assert_eq!(m.s.channel(ch).unwrap().disputed, vec![0, 1]);
    // Nothing more is paid or opened; the payer takes its deposit back at once.
    m.rejected(
        PROVIDER,
        M::claim(ch, m.voucher(PAYER, ch, 200)),
        "offer_not_active",
    );
    let before = m.balance(PAYER);
    m.ok(PAYER, TxBody::ChannelClose(ChannelClose { channel: ch }));
    assert_eq!(m.balance(PAYER), before + 900 - 1);
    // A second wrong receipt finds no bond left.
    let (receipt, input) = m.receipt(offer, ch, 2, 3, true);
    let d = m.dispute(receipt, input);
    m.rejected_fee(STRANGER, fee, TxBody::ReceiptDispute(d), "dispute_unbacked");
    m.supply_ok();
}

#[test]
fn malformed_disputes_are_refused_and_cost_nothing() {
    let mut m = M::new();
    let offer = m.offer();
    let ch = m.channel(offer, 1_000, 5);
    let (receipt, input) = m.receipt(offer, ch, 0, 1, true);
    let good = m.dispute(receipt.clone(), input.clone());
    let fee = m.dispute_fee(&good);
    let mut rejects: Vec<(ReceiptDispute, u128, &str)> = Vec::new();
    rejects.push((good.clone(), fee - 1, "fee_too_low"));
    // Signed by someone else than the provider.
    let forged = m.dispute(receipt.receipt.clone().sign(&m.k[STRANGER]), input.clone());
    rejects.push((forged, fee, "receipt_bad_signature"));
    // A receipt naming another model, another offer's channel, an unknown offer.
    let mut other_model = receipt.receipt.clone();
    other_model.model_hash = Digest([1; 32]);
    let d = m.dispute(other_model.sign(&m.k[PROVIDER]), input.clone());
    rejects.push((d, fee, "invalid_field"));
    let mut unknown = receipt.receipt.clone();
    unknown.offer_id = 9;
    rejects.push((
        m.dispute(unknown.sign(&m.k[PROVIDER]), input.clone()),
        fee,
        "unknown_id",
    ));
    // A blob that is not the offer's, an input that is not the receipt's.
    let mut blob = good.clone();
    blob.model = QuantModel::seeded(
        Arch::Mlp {
            inputs: 64,
            hidden: 32,
            classes: 10,
        },
        8,
    )
    .encode();
    rejects.push((blob, fee, "invalid_field"));
    let mut other_input = good.clone();
    other_input.input[0] ^= 1;
    rejects.push((other_input, fee, "invalid_field"));
    // An input the model does not take (its hash matches a lying receipt).
    let mut short = receipt.receipt.clone();
    short.input_hash = Digest::hash(&[1; 3]);
    let d = m.dispute(short.sign(&m.k[PROVIDER]), vec![1; 3]);
    rejects.push((d, fee, "invalid_field"));
    // Another chain.
    let mut chain = receipt.receipt.clone();
    chain.chain_id = "another".into();
    rejects.push((
        m.dispute(chain.sign(&m.k[PROVIDER]), input.clone()),
        fee,
        "wrong_chain_id",
    ));
    for (d, fee, code) in rejects {
        m.rejected_fee(STRANGER, fee, TxBody::ReceiptDispute(d), code);
    }
    // A channel of another offer: a second offer of the same blob.
    let offer2 = m.offer();
    let ch2 = m.channel(offer2, 100, 5);
    let (r2, i2) = m.receipt(offer, ch2, 0, 1, true);
    m.rejected_fee(
        STRANGER,
        fee,
        TxBody::ReceiptDispute(m.dispute(r2, i2)),
        "invalid_field",
    );
    // After the window.
    let deadline = m.s.channel(ch).unwrap().expiry_height + WINDOW;
    m.run_to(deadline);
    m.rejected_fee(
        STRANGER,
        fee,
        TxBody::ReceiptDispute(good),
        "dispute_window_closed",
    );
    assert_eq!(m.s.offer(offer).unwrap().status, OfferStatus::Active);
    m.supply_ok();
}

#[test]
fn a_dispute_is_bounded_by_the_declared_ops() {
    let mut m = M::new();
    let ops = m.model.ops();
    // An offer understating its blob's operations is shown wrong by the blob alone, even for an
    // honest answer.
    m.ok(PROVIDER, m.offer_body(ROYALTY_BPS, ops - 1));
    let ch = m.channel(1, 100, 5);
    let (receipt, input) = m.receipt(1, ch, 0, 1, false);
    let d = m.dispute(receipt, input);
    let fee = m.dispute_fee(&d);
    let out = m.ok_fee(STRANGER, fee, TxBody::ReceiptDispute(d));
    assert!(matches!(
        out.receipts[0].events[0],
        Event::DisputeUpheld {
            cause: DisputeCause::OpsUnderstated,
            ..
        }
    ));
    // A chain whose disputes carry at most 1 KiB of model cannot take this 2.8 KB blob.
    let mut small = M::with_params(Params {
        dispute_model_bytes_max: 1_024,
        ..market_params()
    });
    let offer = small.offer();
    let ch = small.channel(offer, 100, 5);
    let (receipt, input) = small.receipt(offer, ch, 0, 1, true);
    let d = small.dispute(receipt, input);
    let fee = small.dispute_fee(&d);
    small.rejected_fee(STRANGER, fee, TxBody::ReceiptDispute(d), "limit_exceeded");
}

#[test]
fn a_withdrawn_offer_keeps_its_bond_for_disputes_then_releases_it() {
    let mut m = M::new();
    let offer = m.offer();
    let ch = m.channel(offer, 1_000, EXPIRY_MAX - 1);
    let out = m.ok(PROVIDER, TxBody::OfferWithdraw(OfferWithdraw { offer }));
    let release = m.s.height() + EXPIRY_MAX + WINDOW + 1;
    assert_eq!(
        out.receipts[0].events,
        vec![Event::OfferWithdrawn {
            id: offer,
            release_height: release
        }]
    );
    // Existing channels keep paying until their expiry.
    m.ok(PROVIDER, M::claim(ch, m.voucher(PAYER, ch, 100)));
    // Disputes still reach the bond up to the end of the window, which ends before the release.
    let (receipt, input) = m.receipt(offer, ch, 0, 1, false);
    let d = m.dispute(receipt, input);
    let fee = m.dispute_fee(&d);
    let deadline = m.s.channel(ch).unwrap().expiry_height + WINDOW;
    assert!(deadline < release);
    m.run_to(deadline - 1);
    m.ok_fee(STRANGER, fee, TxBody::ReceiptDispute(d));
    m.run_to(release - 1);
    assert_eq!(m.s.offer(offer).unwrap().bond, BOND);
    let before = m.balance(PROVIDER);
    let out = block(&mut m.s, Address([0xAB; 32]), vec![]);
    assert!(out.events.contains(&Event::OfferBondReleased {
        offer,
        provider: m.addr(PROVIDER),
        amount: BOND
    }));
    assert_eq!(m.balance(PROVIDER), before + BOND);
    let o = m.s.offer(offer).unwrap();
    assert_eq!((o.status, o.bond), (OfferStatus::Withdrawn, 0));
    m.supply_ok();
}

#[test]
fn a_model_without_scored_contributors_pays_its_royalty_to_the_provider() {
    let mut m = M::new();
    // Model 2 comes from a fresh task with no round yet.
    m.ok(
        CREATOR,
        task_create(vec![2], "health", 1_000, EPSILON_SCALE),
    );
    m.ok(CREATOR, model_register(2, None));
    let body = TxBody::OfferCreate(OfferCreate {
        model: 2,
        quant_hash: Digest(m.model.hash()),
        ops: m.model.ops(),
        price_per_query: PRICE,
        bond: BOND,
        endpoint: String::new(),
        royalty_bps: 5_000,
    });
    m.ok(PROVIDER, body);
    let offer = m.s.offers().last().unwrap().id;
    assert!(m.s.offer(offer).unwrap().contributors.is_empty());
    let ch = m.channel(offer, 1_000, 5);
    let before = m.balance(PROVIDER);
    let out = m.ok(PROVIDER, M::claim(ch, m.voucher(PAYER, ch, 1_000)));
    assert_eq!(m.balance(PROVIDER), before + 1_000 - 1);
    assert_eq!(out.receipts[0].events.len(), 1);
    m.supply_ok();
}

/// Applies `txs` as the next block to `m` and to `replica`; both must agree on everything.
fn both(m: &mut M, replica: &mut State, txs: Vec<SignedTx>) {
    let blk = next_block(&m.s, Address([0xAB; 32]), txs);
    let a = m.s.apply_block(&blk);
    let b = replica.apply_block(&blk);
    assert!(a.receipts.iter().all(Receipt::is_ok), "{:?}", a.receipts);
    assert_eq!(a, b);
    assert_eq!(m.s.root(), replica.root());
}

#[test]
fn replicas_agree_and_offers_and_channels_are_proven_and_snapshotted() {
    let mut m = M::new();
    let mut replica = m.s.clone();
    let offer_tx = m.tx_fee(PROVIDER, 1, m.offer_body(ROYALTY_BPS, m.model.ops()));
    both(&mut m, &mut replica, vec![offer_tx]);
    let (offer, ch) = (1, 1);
    let open = TxBody::ChannelOpen(ChannelOpen {
        offer,
        deposit: 1_000,
        expiry_height: m.s.height() + 6,
    });
    let open = m.tx_fee(PAYER, 1, open);
    both(&mut m, &mut replica, vec![open]);
    let claim = m.tx_fee(PROVIDER, 1, M::claim(ch, m.voucher(PAYER, ch, 400)));
    let (receipt, input) = m.receipt(offer, ch, 0, 4, true);
    let d = m.dispute(receipt, input);
    let dispute = m.tx_fee(STRANGER, m.dispute_fee(&d), TxBody::ReceiptDispute(d));
    both(&mut m, &mut replica, vec![claim, dispute]);
    let close = m.tx_fee(PAYER, 1, TxBody::ChannelClose(ChannelClose { channel: ch }));
    both(&mut m, &mut replica, vec![close]);
    assert!(m.s.supply().burned > 0);
    let root = m.s.root();
    for key in [
        StateKey::Offer(offer),
        StateKey::Channel(ch),
        StateKey::Meta,
    ] {
        let proof = m.s.prove(&key).unwrap();
        verify_proof(&root, &proof).unwrap();
    }
    let proof = m.s.prove(&StateKey::Offer(offer)).unwrap();
    verify_entry(&root, &proof, m.s.offer(offer).unwrap()).unwrap();
    let mut changed = m.s.offer(offer).unwrap().clone();
    changed.bond = 1;
    assert!(verify_entry(&root, &proof, &changed).is_err());
    let proof = m.s.prove(&StateKey::Channel(ch)).unwrap();
    verify_entry(&root, &proof, m.s.channel(ch).unwrap()).unwrap();
    assert!(m.s.prove(&StateKey::Channel(ch + 1)).is_none());
    // A snapshot restores the offers, channels and burned tokens under the same root.
    let json = serde_json::to_string(&m.s.snapshot()).unwrap();
    let restored = State::from_snapshot(serde_json::from_str(&json).unwrap()).unwrap();
    assert_eq!(restored.root(), root);
    assert_eq!(restored.supply(), m.s.supply());
    assert_eq!(restored.offer(offer), m.s.offer(offer));
    assert_eq!(restored.channel(ch), m.s.channel(ch));
}
