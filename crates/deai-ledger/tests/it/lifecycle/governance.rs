//! Governance and economics of issue 17: proposals weighed by the stake bonded when they start,
//! deposits returned or burned by outcome, timelocked execution, ethics blocks that bite where
//! they must, delegation, emissions and treasury spends. Built on the market harness (datasets,
//! a task, model 1), so a block can name real entities.

use super::market::{M, market_params};
use crate::common::*;
use deai_ledger::*;

const DEPOSIT: u128 = 1_000;
const VOTING: u64 = 8;
const TIMELOCK: u64 = 3;
const WINDOW: u64 = 10;
const VALIDATOR: usize = 0;
const CREATOR: usize = 1;
const PAYER: usize = 2;
const OWNER_A: usize = 3;
const STRANGER: usize = 6;
const PROVIDER: usize = 7;

fn gov_params() -> Params {
    Params {
        gov_deposit_min: DEPOSIT,
        gov_voting_blocks: VOTING,
        gov_timelock_blocks: TIMELOCK,
        gov_execute_window_blocks: WINDOW,
        ..market_params()
    }
}

fn m() -> M {
    M::with_params(gov_params())
}

fn propose(kind: ProposalKind) -> TxBody {
    TxBody::Propose(Propose {
        kind,
        deposit: DEPOSIT,
        description: Digest::hash(b"the published reasons"),
    })
}

fn param(name: &str, value: &str) -> ProposalKind {
    ProposalKind::ParamChange {
        changes: vec![ParamSet {
            name: name.into(),
            value: value.into(),
        }],
    }
}

fn block_kind(target: BlockTarget, blocked: bool) -> ProposalKind {
    ProposalKind::Block {
        target,
        blocked,
        reason: Digest::hash(b"an ethics review"),
    }
}

fn vote(proposal: u64, choice: Choice) -> TxBody {
    TxBody::Vote(GovVote { proposal, choice })
}

fn execute(proposal: u64) -> TxBody {
    TxBody::Execute(Execute { proposal })
}

fn stake(amount: u128) -> TxBody {
    TxBody::Stake(Stake { amount })
}

impl M {
    /// `who` proposes `kind`; returns the new proposal's id.
    fn propose(&mut self, who: usize, kind: ProposalKind) -> u64 {
        self.ok(who, propose(kind));
        self.s.proposals().last().unwrap().id
    }

    /// Runs to the block that tallies proposal `id`.
    fn finish_vote(&mut self, id: u64) -> Proposal {
        let end = self.s.proposal(id).unwrap().end_height;
        self.run_to(end + 1);
        self.s.proposal(id).unwrap().clone()
    }

    /// Proposes `kind`, the validator votes yes, and it is executed at the first height the
    /// timelock allows.
    fn pass(&mut self, kind: ProposalKind) -> u64 {
        let id = self.propose(VALIDATOR, kind);
        self.ok(VALIDATOR, vote(id, Choice::Yes));
        let p = self.finish_vote(id);
        assert_eq!(p.status, ProposalStatus::Passed, "{p:?}");
        self.run_to(p.executable_from.unwrap() - 1);
        self.ok(STRANGER, execute(id));
        id
    }
}

#[test]
fn a_parameter_change_passes_waits_out_its_timelock_and_then_governs() {
    let mut m = m();
    let (balance, bonds) = (m.balance(VALIDATOR), m.s.supply().bonds);
    let id = m.propose(VALIDATOR, param("fee_min", "5"));
    let start = m.s.height();
    let p = m.s.proposal(id).unwrap().clone();
    assert_eq!(p.status, ProposalStatus::Voting);
    assert_eq!((p.start_height, p.end_height), (start, start + VOTING - 1));
    assert_eq!(m.balance(VALIDATOR), balance - DEPOSIT - 1);
    assert_eq!(m.s.supply().bonds, bonds + DEPOSIT, "the deposit is locked");
    assert!(m.s.supply().conserved());

    m.ok(VALIDATOR, vote(id, Choice::No));
    m.ok(VALIDATOR, vote(id, Choice::Yes));
    let p = m.finish_vote(id);
    assert_eq!(p.status, ProposalStatus::Passed);
    let tally = p.tally.unwrap();
    assert_eq!((tally.yes, tally.no, tally.power), (STAKE, 0, STAKE));
    assert_eq!(
        m.balance(VALIDATOR),
        balance - 3,
        "deposit back, three fees paid"
    );
    assert_eq!(m.s.supply().bonds, bonds);
    let from = p.executable_from.unwrap();
    assert_eq!(from, p.end_height + 1 + TIMELOCK);
    assert_eq!(p.executable_until, Some(from + WINDOW));

    m.run_to(from - 2);
    m.rejected(STRANGER, execute(id), "not_executable");
    assert_eq!(
        m.s.params().fee_min,
        1,
        "nothing changes before the timelock ends"
    );
    m.ok(STRANGER, execute(id));
    assert_eq!(m.s.params().fee_min, 5);
    assert_eq!(m.s.proposal(id).unwrap().status, ProposalStatus::Executed);

    let to = m.addr(OWNER_A);
    m.rejected_fee(STRANGER, 1, transfer(to, 1), "fee_too_low");
    m.ok_fee(STRANGER, 5, transfer(to, 1));
    m.rejected_fee(STRANGER, 5, execute(id), "not_executable");
}

#[test]
fn a_change_no_genesis_could_hold_is_refused_before_the_vote() {
    let mut m = m();
    for (kind, field) in [
        (param("epoch_blocks", "8"), "changes.epoch_blocks"),
        (
            param("gov_threshold_bps", "10000"),
            "changes.gov_threshold_bps",
        ),
        (param("no_such_parameter", "1"), "changes.no_such_parameter"),
        (ProposalKind::ParamChange { changes: vec![] }, "changes"),
    ] {
        let err = m.rejected(VALIDATOR, propose(kind), "invalid_field");
        assert!(
            matches!(&err, TxError::InvalidField { field: f, .. } if f == field),
            "{err}"
        );
    }
    let small = TxBody::Propose(Propose {
        kind: param("fee_min", "2"),
        deposit: DEPOSIT - 1,
        description: Digest::default(),
    });
    m.rejected(VALIDATOR, small, "invalid_field");
    m.rejected(
        VALIDATOR,
        propose(block_kind(BlockTarget::Dataset(99), true)),
        "unknown_id",
    );
}

#[test]
fn a_change_made_invalid_by_an_earlier_one_fails_at_execution() {
    let mut m = m();
    m.pass(param("offer_unbond_blocks", "100"));
    // Each is valid alone (80 + 10 < 100, 40 + 50 < 100), not together (80 + 50).
    let longer_channels = m.propose(VALIDATOR, param("channel_expiry_max", "80"));
    let longer_window = m.propose(VALIDATOR, param("dispute_window_blocks", "50"));
    m.ok(VALIDATOR, vote(longer_channels, Choice::Yes));
    m.ok(VALIDATOR, vote(longer_window, Choice::Yes));
    let p = m.finish_vote(longer_window);
    assert_eq!(p.status, ProposalStatus::Passed);
    m.run_to(p.executable_from.unwrap() - 1);
    m.ok(STRANGER, execute(longer_channels));
    let err = m.rejected(STRANGER, execute(longer_window), "invalid_field");
    assert!(err.to_string().contains("must exceed"), "{err}");
    assert_eq!(
        (
            m.s.params().channel_expiry_max,
            m.s.params().dispute_window_blocks
        ),
        (80, market_params().dispute_window_blocks)
    );
}

#[test]
fn stake_bonded_after_a_proposal_starts_weighs_nothing_on_it() {
    let mut m = m();
    m.ok(OWNER_A, stake(1_000));
    let id = m.propose(VALIDATOR, param("dispute_bond", "700"));
    m.ok(OWNER_A, stake(100_000));
    m.ok(STRANGER, stake(50_000));
    let err = m.rejected(STRANGER, vote(id, Choice::Yes), "no_voting_power");
    assert!(matches!(err, TxError::NoVotingPower { proposal, .. } if proposal == id));
    m.ok(OWNER_A, vote(id, Choice::Yes));
    m.ok(VALIDATOR, vote(id, Choice::No));
    let p = m.finish_vote(id);
    let t = p.tally.unwrap();
    assert_eq!((t.yes, t.no, t.power), (1_000, STAKE, STAKE + 1_000));
    assert_eq!(p.status, ProposalStatus::Rejected);
    m.rejected(OWNER_A, vote(id, Choice::Yes), "proposal_not_voting");
    m.rejected(STRANGER, execute(id), "not_executable");
}

#[test]
fn deposits_burn_without_quorum_and_under_veto_and_return_otherwise() {
    let mut m = m();
    m.ok(OWNER_A, stake(1_000));

    let burned = m.s.burned();
    let quiet = m.propose(OWNER_A, param("fee_min", "2"));
    let p = m.finish_vote(quiet);
    assert_eq!(p.status, ProposalStatus::NoQuorum);
    assert_eq!(m.s.burned(), burned + DEPOSIT);

    let vetoed = m.propose(OWNER_A, param("fee_min", "2"));
    m.ok(OWNER_A, vote(vetoed, Choice::Yes));
    m.ok(VALIDATOR, vote(vetoed, Choice::Veto));
    let p = m.finish_vote(vetoed);
    assert_eq!(p.status, ProposalStatus::Vetoed);
    assert_eq!(m.s.burned(), burned + 2 * DEPOSIT);

    let balance = m.balance(OWNER_A);
    let rejected = m.propose(OWNER_A, param("fee_min", "2"));
    m.ok(VALIDATOR, vote(rejected, Choice::No));
    let p = m.finish_vote(rejected);
    assert_eq!(p.status, ProposalStatus::Rejected);
    assert_eq!(m.balance(OWNER_A), balance - 1, "the deposit came back");
    assert_eq!(m.s.burned(), burned + 2 * DEPOSIT);
    assert!(m.s.supply().conserved(), "{:?}", m.s.supply());
}

#[test]
fn ethics_blocks_keep_a_dataset_out_of_rounds_a_model_off_the_market_and_an_offer_unpaid() {
    let mut m = m();
    let offer = m.offer();
    let channel = m.channel(offer, 1_000, 30);
    m.ok(
        CREATOR,
        task_create(vec![1, 2, 3], "health", 10_000, 5 * EPSILON_SCALE),
    );
    let task = m.s.tasks().last().unwrap().id;
    assert_eq!(m.s.round_eligible(task).unwrap(), vec![1, 2, 3]);

    m.pass(block_kind(BlockTarget::Dataset(1), true));
    m.pass(block_kind(BlockTarget::Model(1), true));
    m.pass(block_kind(BlockTarget::Offer(offer), true));
    assert!(m.s.blocked(&BlockTarget::Dataset(1)).is_some());

    assert_eq!(m.s.round_eligible(task).unwrap(), vec![2, 3]);
    let body = TxBody::OfferCreate(OfferCreate {
        model: 1,
        quant_hash: Digest(m.model.hash()),
        ops: m.model.ops(),
        price_per_query: 10,
        bond: 20_000,
        endpoint: "http://127.0.0.1:7001".into(),
        royalty_bps: 250,
    });
    let err = m.rejected(PROVIDER, body, "blocked");
    assert!(err.to_string().contains("model 1"), "{err}");
    let open = TxBody::ChannelOpen(ChannelOpen {
        offer,
        deposit: 100,
        expiry_height: m.s.height() + 10,
    });
    m.rejected(PAYER, open, "blocked");
    let voucher = m.voucher(PAYER, channel, 100);
    m.rejected(PROVIDER, M::claim(channel, voucher), "blocked");

    m.pass(block_kind(BlockTarget::Dataset(1), false));
    assert_eq!(m.s.round_eligible(task).unwrap(), vec![1, 2, 3]);
    assert!(m.s.blocked(&BlockTarget::Dataset(1)).is_none());
    let proof =
        m.s.prove(&StateKey::Blocked(BlockTarget::Model(1)))
            .expect("a block decision is a leaf");
    verify_proof(&m.s.root(), &proof).unwrap();
}

#[test]
fn a_chain_royalty_floor_binds_every_new_offer() {
    let mut m = m();
    m.pass(param("royalty_floor_bps", "300"));
    let offer = |m: &M, royalty_bps| {
        TxBody::OfferCreate(OfferCreate {
            model: 1,
            quant_hash: Digest(m.model.hash()),
            ops: m.model.ops(),
            price_per_query: 10,
            bond: 20_000,
            endpoint: "http://127.0.0.1:7001".into(),
            royalty_bps,
        })
    };
    // 250 met dataset 1's consent floor (200); the chain's floor is now higher.
    let err = m.rejected(PROVIDER, offer(&m, 250), "invalid_field");
    assert!(err.to_string().contains("royalty_floor_bps"), "{err}");
    m.ok(PROVIDER, offer(&m, 300));
}

#[test]
fn an_upheld_dispute_mints_the_watchers_reward_kept_below_the_slash() {
    const MINTED: u128 = 300;
    let mut m = M::with_params(Params {
        challenge_emission_reward: MINTED,
        ..gov_params()
    });
    // 1,000 × 50 % = 500 of the smallest offer bond is not paid back: 500 would not be below it.
    let err = m.rejected(
        VALIDATOR,
        propose(param("challenge_emission_reward", "500")),
        "invalid_field",
    );
    assert!(err.to_string().contains("never pays"), "{err}");
    let offer = m.offer();
    let ch = m.channel(offer, 1_000, 20);
    let (receipt, input) = m.receipt(offer, ch, 0, 1, true);
    let d = m.dispute(receipt, input);
    let fee = m.dispute_fee(&d);
    let (before, emitted) = (m.balance(STRANGER), m.s.emitted());
    let out = m.ok_fee(STRANGER, fee, TxBody::ReceiptDispute(d));
    let bond_share = match out.receipts[0].events[0] {
        Event::DisputeUpheld { reward, .. } => reward,
        ref other => panic!("{other:?}"),
    };
    assert_eq!(
        out.receipts[0].events[1],
        Event::EmissionPaid {
            account: m.addr(STRANGER),
            amount: MINTED,
            role: EmissionRole::Challenger,
        }
    );
    assert_eq!(m.balance(STRANGER), before - fee + bond_share + MINTED);
    assert_eq!(m.s.emitted(), emitted + MINTED);
    assert!(m.s.supply().conserved());
}

#[test]
fn delegated_stake_elects_a_validator_until_governance_bars_it() {
    let mut m = m();
    let node = ed25519_dalek::SigningKey::from_bytes(&[0x61; 32]);
    let declare = ValidatorDeclare::new(CHAIN, &m.addr(STRANGER), &node, String::new());
    m.ok(STRANGER, TxBody::ValidatorDeclare(declare.clone()));
    let candidates = |m: &M| -> Vec<(Address, u128)> {
        m.s.validator_candidates(10)
            .into_iter()
            .map(|c| (c.account, c.stake))
            .collect()
    };
    assert_eq!(candidates(&m), vec![(m.addr(VALIDATOR), STAKE)]);
    let chosen = m.addr(STRANGER);
    let delegate = |amount| {
        TxBody::Delegate(Delegate {
            validator: chosen,
            amount,
        })
    };
    m.ok(PAYER, delegate(STAKE + 1_000));
    assert_eq!(
        candidates(&m),
        vec![
            (m.addr(STRANGER), STAKE + 1_000),
            (m.addr(VALIDATOR), STAKE)
        ]
    );
    assert_eq!(m.s.supply().delegated, STAKE + 1_000);
    m.rejected(
        PAYER,
        TxBody::Delegate(Delegate {
            validator: m.addr(OWNER_A),
            amount: 1,
        }),
        "invalid_field",
    );

    // The validator votes with what is delegated to it, unless the delegator votes itself.
    let id = m.propose(VALIDATOR, param("fee_min", "3"));
    m.ok(STRANGER, vote(id, Choice::Yes));
    m.ok(VALIDATOR, vote(id, Choice::No));
    assert_eq!(m.s.proposal(id).unwrap().current_tally().yes, STAKE + 1_000);
    m.ok(PAYER, vote(id, Choice::No));
    let t = m.finish_vote(id).tally.unwrap();
    assert_eq!((t.yes, t.no), (0, 2 * STAKE + 1_000));

    m.pass(block_kind(BlockTarget::Validator(m.addr(STRANGER)), true));
    assert_eq!(candidates(&m), vec![(m.addr(VALIDATOR), STAKE)]);
    m.rejected(PAYER, delegate(1), "blocked");
    m.rejected(STRANGER, TxBody::ValidatorDeclare(declare), "blocked");

    let undelegate = TxBody::Undelegate(Undelegate {
        validator: m.addr(STRANGER),
        amount: STAKE + 1_000,
    });
    let balance = m.balance(PAYER);
    m.ok(PAYER, undelegate.clone());
    m.rejected(PAYER, undelegate, "insufficient_stake");
    let release = m.s.account(&m.addr(PAYER)).unbonding[0].release_height;
    m.run_to(release);
    assert_eq!(
        m.balance(PAYER),
        balance + STAKE + 1_000 - 1,
        "one fee: the refusal cost nothing"
    );
    assert_eq!(m.s.supply().delegated, 0);
    assert!(m.s.supply().conserved());
}

#[test]
fn emissions_fund_the_treasury_pay_validators_and_delegators_and_a_spend_pays_out() {
    const EPOCH: u64 = 10;
    const EMISSION: u128 = 1_000;
    let mut m = M::with_params(Params {
        epoch_blocks: EPOCH,
        emission_per_block: EMISSION,
        emission_treasury_bps: 1_000,
        validator_commission_bps: 1_000,
        ..gov_params()
    });
    // The market set-up ran some blocks of epoch 0 proposed by non-validators; finish it.
    m.run_to(EPOCH - 1);
    m.ok(
        PAYER,
        TxBody::Delegate(Delegate {
            validator: m.addr(VALIDATOR),
            amount: STAKE,
        }),
    );
    let validator = m.addr(VALIDATOR);
    let (v0, d0, t0) = (
        m.balance(VALIDATOR),
        m.balance(PAYER),
        m.s.account(&treasury()).balance,
    );
    // Epoch 1: every block proposed by the validator.
    while m.s.height() < 2 * EPOCH - 1 {
        block(&mut m.s, validator, vec![]);
        assert!(m.s.supply().conserved(), "{:?}", m.s.supply());
    }
    // Epoch 1 is heights 10..=19: the delegation's block and nine of the validator's. Only the
    // validator is in the set, so it and its delegator take the whole pool.
    let blocks = u128::from(EPOCH);
    let pool = EMISSION * 9 / 10 * blocks;
    // The treasury was read after the delegation's block had paid it its share.
    let to_treasury = EMISSION / 10 * (blocks - 1);
    // Own stake and delegation are equal: the delegator's half, less 10 % commission.
    let delegator = pool / 2 - pool / 2 / 10;
    assert_eq!(m.balance(PAYER) - d0, delegator);
    assert_eq!(m.balance(VALIDATOR) - v0, pool - delegator);
    let treasury_now = m.s.account(&treasury()).balance;
    assert_eq!(treasury_now - t0, to_treasury);
    let s = m.s.supply();
    assert_eq!(s.emission_pool, 0);
    assert!(s.conserved(), "{s:?}");
    assert_eq!(s.total, s.genesis + s.emitted);

    let payee = m.addr(STRANGER);
    let before = m.balance(STRANGER);
    m.pass(ProposalKind::TreasurySpend {
        to: payee,
        amount: 5_000,
    });
    assert_eq!(
        m.balance(STRANGER),
        before + 5_000 - 1,
        "the stranger paid the Execute fee"
    );
    let too_much = m.propose(
        VALIDATOR,
        ProposalKind::TreasurySpend {
            to: payee,
            amount: u128::from(u64::MAX),
        },
    );
    m.ok(VALIDATOR, vote(too_much, Choice::Yes));
    let p = m.finish_vote(too_much);
    m.run_to(p.executable_from.unwrap() - 1);
    // Not `rejected`: the block's own emission changes the treasury before the tx runs.
    let tx = m.tx_fee(STRANGER, 1, execute(too_much));
    let out = block(&mut m.s, validator, vec![tx]);
    let err = out.receipts[0].result.as_ref().unwrap_err();
    assert_eq!(err.code(), "insufficient_funds", "{err}");
    assert_eq!(
        m.s.proposal(too_much).unwrap().status,
        ProposalStatus::Passed
    );
    assert!(m.s.supply().conserved());
}

#[test]
fn a_dataset_bond_is_locked_at_registration_and_returned_on_revoke_at_its_own_amount() {
    let mut m = m();
    m.pass(param("dataset_bond", "3000"));
    let balance = m.balance(STRANGER);
    let bonds = m.s.supply().bonds;
    m.ok(STRANGER, dataset_register(40, policy(&["health"], 1_000)));
    let id = m.s.datasets().last().unwrap().id;
    assert_eq!(m.s.dataset(id).unwrap().bond, 3_000);
    assert_eq!(m.balance(STRANGER), balance - 3_000 - 1);
    assert_eq!(m.s.supply().bonds, bonds + 3_000);
    // A later change does not reprice a bond already locked.
    m.pass(param("dataset_bond", "1"));
    m.ok(
        STRANGER,
        TxBody::ConsentRevoke(ConsentRevoke { dataset: id }),
    );
    // Three fees: the registration, the second change's Execute and the revoke.
    assert_eq!(m.balance(STRANGER), balance - 3);
    assert_eq!(m.s.dataset(id).unwrap().bond, 0);
    assert_eq!(m.s.supply().bonds, bonds);
    assert!(m.s.supply().conserved());
    // Registering needs the bond on top of the fee.
    let broke = m.balance(5);
    m.ok(5, transfer(m.addr(STRANGER), broke - 2));
    m.rejected(
        5,
        dataset_register(41, policy(&["health"], 1_000)),
        "insufficient_funds",
    );
}

#[test]
fn governance_state_is_proven_snapshotted_and_restored() {
    let mut m = m();
    m.ok(
        PAYER,
        TxBody::Delegate(Delegate {
            validator: m.addr(VALIDATOR),
            amount: 2_000,
        }),
    );
    m.pass(block_kind(BlockTarget::Dataset(2), true));
    let open = m.propose(VALIDATOR, param("fee_min", "2"));
    m.ok(PAYER, vote(open, Choice::Abstain));
    let restored = State::from_snapshot(m.s.snapshot()).expect("snapshot restores");
    assert_eq!(restored.root(), m.s.root());
    assert_eq!(restored.proposal(open), m.s.proposal(open));
    assert_eq!(restored.delegated_to(&m.addr(VALIDATOR)), 2_000);
    for key in [
        StateKey::Proposal(open),
        StateKey::Blocked(BlockTarget::Dataset(2)),
        StateKey::Delegations(m.addr(PAYER)),
    ] {
        let proof = m.s.prove(&key).expect("a leaf");
        verify_proof(&m.s.root(), &proof).unwrap();
    }
    // The restored state tallies the open proposal like the original.
    let mut a = m.s.clone();
    let mut b = restored;
    for _ in 0..VOTING + 1 {
        let blk = next_block(&a, Address([0xAB; 32]), vec![]);
        assert_eq!(a.apply_block(&blk), b.apply_block(&blk));
    }
    assert_eq!(a.root(), b.root());
    assert_ne!(a.proposal(open).unwrap().status, ProposalStatus::Voting);
}

/// Random sequences of transfers, stake, delegation, proposals, votes and executions, with
/// emissions on and short epochs: tokens are conserved (genesis + emitted), two replicas agree
/// block by block, and a snapshot restores the same root and goes on identically.
mod props {
    use super::*;
    use proptest::prelude::*;

    const ACCOUNTS: usize = 5;

    #[derive(Clone, Debug)]
    enum Op {
        Transfer(usize, usize, u128),
        Stake(usize, u128),
        Unstake(usize, u128),
        Declare(usize),
        Delegate(usize, usize, u128),
        Undelegate(usize, usize, u128),
        ProposeParam(usize, bool, u128),
        ProposeSpend(usize, usize, u128),
        ProposeBar(usize, usize),
        Vote(usize, u64, u8),
        Execute(usize, u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let who = 0..ACCOUNTS;
        prop_oneof![
            1 => (who.clone(), 0..ACCOUNTS, 1..5_000u128).prop_map(|(a, b, n)| Op::Transfer(a, b, n)),
            1 => (who.clone(), 1..20_000u128).prop_map(|(a, n)| Op::Stake(a, n)),
            1 => (who.clone(), 1..20_000u128).prop_map(|(a, n)| Op::Unstake(a, n)),
            1 => who.clone().prop_map(Op::Declare),
            1 => (who.clone(), 0..ACCOUNTS, 1..20_000u128).prop_map(|(a, b, n)| Op::Delegate(a, b, n)),
            1 => (who.clone(), 0..ACCOUNTS, 1..20_000u128)
                .prop_map(|(a, b, n)| Op::Undelegate(a, b, n)),
            2 => (who.clone(), any::<bool>(), 0..3_000u128)
                .prop_map(|(a, fee, v)| Op::ProposeParam(a, fee, v)),
            1 => (who.clone(), 0..ACCOUNTS, 1..30_000u128)
                .prop_map(|(a, b, n)| Op::ProposeSpend(a, b, n)),
            1 => (who.clone(), 0..ACCOUNTS).prop_map(|(a, b)| Op::ProposeBar(a, b)),
            5 => (who.clone(), 1..6u64, 0..6u8).prop_map(|(a, p, c)| Op::Vote(a, p, c)),
            3 => (who, 1..6u64).prop_map(|(a, p)| Op::Execute(a, p)),
        ]
    }

    fn state(k: &[ed25519_dalek::SigningKey]) -> State {
        let params = Params {
            epoch_blocks: 4,
            validators_max: 3,
            validator_stake_min: 1_000,
            unbonding_delay_blocks: 3,
            gov_deposit_min: 10,
            gov_voting_blocks: 3,
            gov_timelock_blocks: 1,
            gov_execute_window_blocks: 5,
            emission_per_block: 777,
            ..Params::default()
        };
        State::from_genesis(&genesis(k, params)).unwrap()
    }

    /// The op's transaction; a vote or execution picks among the proposals that exist (the
    /// newest ones, or the passed ones), so most runs carry proposals to execution.
    fn body(s: &State, k: &[ed25519_dalek::SigningKey], op: &Op) -> (usize, TxBody) {
        let newest = s.proposals().last().map_or(1, |p| p.id);
        let passed: Vec<u64> = s
            .proposals()
            .filter(|p| p.status == ProposalStatus::Passed)
            .map(|p| p.id)
            .collect();
        let a = |i: usize| addr(&k[i]);
        match op.clone() {
            Op::Transfer(f, t, n) => (f, transfer(a(t), n)),
            Op::Stake(w, n) => (w, TxBody::Stake(Stake { amount: n })),
            Op::Unstake(w, n) => (w, TxBody::Unstake(Unstake { amount: n })),
            Op::Declare(w) => {
                let node = ed25519_dalek::SigningKey::from_bytes(&[0x90 + w as u8; 32]);
                let d = ValidatorDeclare::new(CHAIN, &a(w), &node, String::new());
                (w, TxBody::ValidatorDeclare(d))
            }
            Op::Delegate(w, v, n) => (
                w,
                TxBody::Delegate(Delegate {
                    validator: a(v),
                    amount: n,
                }),
            ),
            Op::Undelegate(w, v, n) => (
                w,
                TxBody::Undelegate(Undelegate {
                    validator: a(v),
                    amount: n,
                }),
            ),
            Op::ProposeParam(w, fee, v) => {
                let kind = if fee {
                    param("fee_min", &(v % 3 + 1).to_string())
                } else {
                    param("emission_per_block", &v.to_string())
                };
                (w, propose_small(kind))
            }
            Op::ProposeSpend(w, to, n) => (
                w,
                propose_small(ProposalKind::TreasurySpend {
                    to: a(to),
                    amount: n,
                }),
            ),
            Op::ProposeBar(w, v) => (
                w,
                propose_small(block_kind(BlockTarget::Validator(a(v)), true)),
            ),
            Op::Vote(w, p, c) => {
                // Half the votes are yes, so proposals pass and execute in most runs.
                let choice = [
                    Choice::Yes,
                    Choice::Yes,
                    Choice::Yes,
                    Choice::No,
                    Choice::Abstain,
                    Choice::Veto,
                ][c as usize];
                (w, vote(newest.saturating_sub(p % 2).max(1), choice))
            }
            Op::Execute(w, p) => {
                let id = passed
                    .get(p as usize % passed.len().max(1))
                    .copied()
                    .unwrap_or(p);
                (w, execute(id))
            }
        }
    }

    /// The tally written from the rule, apart from `PowerSnapshot::weights`: each stake entry
    /// counts once, for its holder if it voted; each delegation counts once, for the delegator
    /// if it voted, else for its validator if that voted, else for nobody.
    fn reference_tally(p: &Proposal) -> Tally {
        let mut t = Tally {
            power: p.power.stake.iter().map(|(_, s)| s).sum::<u128>()
                + p.power.delegations.iter().map(|d| d.amount).sum::<u128>(),
            ..Tally::default()
        };
        let mut add = |choice: Choice, w: u128| match choice {
            Choice::Yes => t.yes += w,
            Choice::No => t.no += w,
            Choice::Abstain => t.abstain += w,
            Choice::Veto => t.veto += w,
        };
        for (a, s) in &p.power.stake {
            if let Some(c) = p.votes.get(a) {
                add(*c, *s);
            }
        }
        for d in &p.power.delegations {
            if let Some(c) = p
                .votes
                .get(&d.delegator)
                .or_else(|| p.votes.get(&d.validator))
            {
                add(*c, d.amount);
            }
        }
        t
    }

    fn propose_small(kind: ProposalKind) -> TxBody {
        TxBody::Propose(Propose {
            kind,
            deposit: 10,
            description: Digest::default(),
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        #[test]
        fn governance_conserves_tokens_and_replicas_agree(
            blocks in proptest::collection::vec(proptest::collection::vec(op(), 0..6), 1..60)
        ) {
            let k = keys(ACCOUNTS);
            let mut a = state(&k);
            let mut b = state(&k);
            for (i, ops) in blocks.iter().enumerate() {
                let mut nonces: Vec<u64> =
                    k.iter().map(|key| a.account(&addr(key)).nonce).collect();
                let fee = a.params().fee_min;
                let txs: Vec<SignedTx> = ops
                    .iter()
                    .map(|op| {
                        let (who, body) = body(&a, &k, op);
                        let tx = sign(&k[who], nonces[who], fee, body);
                        nonces[who] += 1;
                        tx
                    })
                    .collect();
                let blk = next_block(&a, addr(&k[i % 2]), txs);
                let out_a = a.apply_block(&blk);
                let out_b = b.apply_block(&blk);
                prop_assert_eq!(&out_a, &out_b);
                let s = a.supply();
                prop_assert!(s.conserved(), "supply {:?}", s);
                let voting: u128 = a
                    .proposals()
                    .filter(|p| p.status == ProposalStatus::Voting)
                    .map(|p| p.deposit)
                    .sum();
                prop_assert_eq!(s.bonds, voting);
                let delegated: u128 = k
                    .iter()
                    .map(|key| a.delegations_of(&addr(key)).values().sum::<u128>())
                    .sum();
                prop_assert_eq!(s.delegated, delegated);
                let minted: u128 = out_a
                    .events
                    .iter()
                    .map(|e| match e {
                        Event::Minted { amount, .. } => *amount,
                        _ => 0,
                    })
                    .sum();
                prop_assert!(minted <= 3_000, "at most one block's emission per block");
                for p in a.proposals() {
                    let t = p.current_tally();
                    prop_assert_eq!(t, reference_tally(p));
                    prop_assert!(t.voted() <= t.power, "a vote counted twice: {:?}", t);
                    for voter in p.votes.keys() {
                        prop_assert!(p.power.has_power(voter), "a voter without power at the start");
                    }
                }
            }
            let mut restored = State::from_snapshot(a.snapshot()).unwrap();
            prop_assert_eq!(restored.root(), a.root());
            for _ in 0..4 {
                let blk = next_block(&a, addr(&k[0]), vec![]);
                prop_assert_eq!(a.apply_block(&blk), restored.apply_block(&blk));
            }
            prop_assert_eq!(restored.root(), a.root());
        }
    }
}
