//! The task lifecycle of issue 6: coordinator, validation commitment, `RoundOpen` with the
//! ledger's beacon-seeded selection and per-dataset ε schedule, `RoundResult`, `TaskClose` with
//! proportional rewards. Every rejection is checked by `check_tx` and in a block, with the root
//! unchanged. The inference market (issue 14) lives in `market/`.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod challenge;
mod governance;
mod market;
use crate::common::*;
use deai_ledger::*;
use ed25519_dalek::SigningKey;

const CREATOR: usize = 1;
const COORD: usize = 2;
const STRANGER: usize = 6;
/// Task 1's budget: its schedule charges a dataset 1.0 per round it takes part in.
const TASK_EPS: u64 = 5 * EPSILON_SCALE;
const REWARD: u128 = 10_000;
const SALT: Digest = Digest([0x5A; 32]);
const VALIDATION: Digest = Digest([0x7B; 32]);
const E: u64 = EPSILON_SCALE;

/// Keys 3, 4, 5 own datasets 1, 2, 3 (purpose "health", expire at 1000, ε max 8); key 1
/// created task 1 over them (5 rounds, ε 5 charged 1.0 per participation, reward 10 000),
/// designated key 2 as coordinator and committed its validation data.
struct H {
    k: Vec<SigningKey>,
    s: State,
}

impl H {
    fn new() -> Self {
        let t = task(vec![1, 2, 3], "health", REWARD, TASK_EPS);
        assert_eq!(t.epsilon_schedule, linear_schedule(5, TASK_EPS));
        assert!(
            t.epsilon_schedule
                .iter()
                .zip(1..)
                .all(|(s, j)| s.epsilon == j * E)
        );
        Self::with_task(t)
    }

    /// The same three datasets; task 1 is `t` (by the creator, coordinated by key 2,
    /// validation committed).
    fn with_task(t: TaskCreate) -> Self {
        let k = keys(7);
        let s = state(&k);
        let mut h = H { k, s };
        for (i, owner) in [3, 4, 5].into_iter().enumerate() {
            h.ok(owner, dataset_register(i as u8, policy(&["health"], 1_000)));
        }
        h.ok(CREATOR, TxBody::TaskCreate(t));
        h.ok(CREATOR, set_coordinator(1, h.addr(COORD)));
        h.ok(CREATOR, commit(1));
        h
    }

    fn addr(&self, who: usize) -> Address {
        addr(&self.k[who])
    }

    fn tx(&self, who: usize, body: TxBody) -> SignedTx {
        let nonce = self.s.account(&self.addr(who)).nonce;
        sign(&self.k[who], nonce, 1, body)
    }

    fn ok(&mut self, who: usize, body: TxBody) -> BlockOutcome {
        let tx = self.tx(who, body);
        ok(&mut self.s, tx)
    }

    /// Rejected by check_tx and in a block with `code`; root, supply and sender unchanged.
    fn rejected(&mut self, who: usize, body: TxBody, code: &str) -> TxError {
        let tx = self.tx(who, body);
        let err = self.s.check_tx(&tx).unwrap_err();
        assert_eq!(err.code(), code, "check_tx: {err}");
        let (root, supply, sender) = (
            self.s.root(),
            self.s.supply(),
            self.s.account(&tx.tx.sender),
        );
        let out = block(&mut self.s, Address([0xAB; 32]), vec![tx.clone()]);
        assert_eq!(
            out.receipts[0].result.as_ref().unwrap_err(),
            &err,
            "receipt"
        );
        assert_eq!(out.root, root, "root changed by a rejected tx");
        assert_eq!(self.s.supply(), supply);
        assert_eq!(self.s.account(&tx.tx.sender), sender);
        err
    }

    /// A RoundOpen for the next round of task 1 asking for `count` datasets.
    fn open_body(&self, count: u32) -> TxBody {
        open(&self.s, 1, count)
    }

    /// `who` opens the next round of `task` in a block whose beacon makes the ledger draw
    /// exactly `want` (sorted) from the eligible datasets; admitted first, applied, checked.
    fn open_drawing(&mut self, who: usize, task: u64, want: &[u64]) -> BlockOutcome {
        let eligible = self.s.round_eligible(task).unwrap();
        let round = self.s.task(task).unwrap().rounds_opened() + 1;
        let tx = self.tx(who, open(&self.s, task, want.len() as u32));
        self.s.check_tx(&tx).unwrap();
        let mut blk = next_block(&self.s, Address([0xEE; 32]), vec![tx]);
        blk.beacon = beacon_selecting(task, round, &eligible, want);
        let out = self.s.apply_block(&blk);
        assert!(out.receipts[0].is_ok(), "{:?}", out.receipts[0].result);
        let r = self.s.task(task).unwrap().round_log.last().unwrap();
        assert_eq!((r.number, r.selected.as_slice()), (round, want));
        assert_eq!(r.seed, selection_seed(task, round, &blk.beacon));
        out
    }

    fn spent(&self, dataset: u64) -> u64 {
        self.s.dataset(dataset).unwrap().epsilon_spent
    }
}

fn set_coordinator(task: u64, coordinator: Address) -> TxBody {
    TxBody::TaskSetCoordinator(TaskSetCoordinator { task, coordinator })
}

fn commit(task: u64) -> TxBody {
    TxBody::TaskCommitValidation(TaskCommitValidation {
        task,
        commitment: validation_commitment(&SALT, &VALIDATION),
    })
}

fn open(s: &State, task: u64, count: u32) -> TxBody {
    open_with_delta(s, task, count, 1_000_000)
}

fn open_with_delta(s: &State, task: u64, count: u32, delta: u64) -> TxBody {
    TxBody::RoundOpen(RoundOpen {
        task,
        round: s.task(task).map_or(1, |t| t.rounds_opened() + 1),
        global_model: Digest::hash(b"global"),
        count,
        secagg: SecAggParams {
            n: count,
            k: count,
            t: 1,
        },
        delta,
    })
}

fn result(task: u64, round: u32, survivors: Vec<u64>, scores: &[(u64, u64)]) -> TxBody {
    TxBody::RoundResult(RoundResult {
        task,
        round,
        masked_updates: survivors
            .iter()
            .map(|id| Digest::hash(&id.to_be_bytes()))
            .collect(),
        survivors,
        unmasking: Digest([1; 32]),
        aggregate: Digest([2; 32]),
        new_model: Digest::hash(&round.to_be_bytes()),
        scores: scores
            .iter()
            .map(|&(dataset, value)| Score { dataset, value })
            .collect(),
    })
}

fn close(task: u64, salt: Digest) -> TxBody {
    TxBody::TaskClose(TaskClose {
        task,
        validation_salt: salt,
        validation_data: VALIDATION,
        parent: None,
        metrics: vec![Metric {
            name: "accuracy".into(),
            value: 950_000,
        }],
    })
}

fn expire(task: u64, round: u32) -> TxBody {
    TxBody::RoundExpire(RoundExpire { task, round })
}

/// Apply `blocks` empty blocks.
fn advance(s: &mut State, blocks: u64) {
    for _ in 0..blocks {
        block(s, Address([0xAB; 32]), vec![]);
    }
}

fn selected_of(s: &State, task: u64) -> Vec<u64> {
    s.task(task)
        .unwrap()
        .round_log
        .last()
        .unwrap()
        .selected
        .clone()
}

#[test]
fn full_lifecycle_pays_in_proportion_and_conserves_supply() {
    let mut h = H::new();
    let genesis = h.s.supply().genesis;
    let creator_before = h.s.account(&h.addr(CREATOR)).balance;
    // Round 1: all three datasets; scores 1 : 2 : 0.
    let body = h.open_body(3);
    let out = h.ok(COORD, body);
    assert!(matches!(
        out.receipts[0].events[0],
        Event::RoundOpened {
            task: 1,
            round: 1,
            ..
        }
    ));
    h.ok(
        COORD,
        result(1, 1, vec![1, 2, 3], &[(1, 100_000), (2, 200_000)]),
    );
    // Round 2: two datasets; dataset 3 scores 300 000.
    let body = h.open_body(2);
    h.ok(COORD, body);
    let sel = selected_of(&h.s, 1);
    assert_eq!(sel.len(), 2);
    let scores: Vec<(u64, u64)> = sel
        .iter()
        .map(|&d| (d, if d == 3 { 300_000 } else { 0 }))
        .collect();
    h.ok(COORD, result(1, 2, sel.clone(), &scores));
    let t = h.s.task(1).unwrap();
    assert_eq!(t.epsilon_spent, 2 * EPSILON_SCALE);
    assert_eq!(t.delta_spent, 2_000_000);
    for d in 1..=3 {
        let rounds = 1 + u64::from(sel.contains(&d));
        assert_eq!(
            h.s.dataset(d).unwrap().epsilon_spent,
            rounds * EPSILON_SCALE
        );
    }
    let owner_before: Vec<u128> = [3, 4, 5].map(|o| h.s.account(&h.addr(o)).balance).to_vec();
    let out = h.ok(CREATOR, close(1, SALT));
    // Totals: d1 = 100k, d2 = 200k, d3 = 300k if selected in round 2, else 0.
    let d3 = if sel.contains(&3) { 300_000u128 } else { 0 };
    let sum = 300_000 + d3;
    let expect = [
        100_000 * REWARD / sum,
        200_000 * REWARD / sum,
        d3 * REWARD / sum,
    ];
    for (i, o) in [3, 4, 5].into_iter().enumerate() {
        assert_eq!(
            h.s.account(&h.addr(o)).balance - owner_before[i],
            expect[i],
            "owner {o}"
        );
    }
    let paid: u128 = expect.iter().sum();
    // The creator paid 3 setup fees + the close fee, got the refund.
    let creator_after = h.s.account(&h.addr(CREATOR)).balance;
    assert_eq!(creator_after, creator_before - 1 + (REWARD - paid));
    let t = h.s.task(1).unwrap();
    assert_eq!(t.status, TaskStatus::Closed);
    assert_eq!(t.escrow, 0);
    let model = h.s.model(t.final_model.unwrap()).unwrap();
    assert_eq!(
        model.model_hash,
        Digest::hash(&2u32.to_be_bytes()),
        "last round's model"
    );
    assert_eq!(model.task, 1);
    assert!(
        out.receipts[0]
            .events
            .iter()
            .any(|e| matches!(e, Event::TaskClosed { id: 1, .. }))
    );
    assert!(
        h.s.dataset(1)
            .unwrap()
            .history
            .iter()
            .any(|e| matches!(e.event, Event::RewardPaid { .. }))
    );
    assert_eq!(h.s.supply().total, genesis);
    for key in [
        StateKey::Task(1),
        StateKey::Dataset(3),
        StateKey::Model(model.id),
    ] {
        verify_proof(&h.s.root(), &h.s.prove(&key).unwrap()).unwrap();
    }
    // A light client checks whole entries, as sent over JSON, against their proofs: every
    // field, each round of the log and each history entry.
    let root = h.s.root();
    let task: Task =
        serde_json::from_value(serde_json::to_value(h.s.task(1).unwrap()).unwrap()).unwrap();
    let task_proof = h.s.prove(&StateKey::Task(1)).unwrap();
    verify_entry(&root, &task_proof, &task).unwrap();
    let dataset = h.s.dataset(3).unwrap().clone();
    let dataset_proof = h.s.prove(&StateKey::Dataset(3)).unwrap();
    verify_entry(&root, &dataset_proof, &dataset).unwrap();
    verify_entry(
        &root,
        &h.s.prove(&StateKey::Model(model.id)).unwrap(),
        model,
    )
    .unwrap();
    let mut forged = task.clone();
    forged.round_log[0].selected.reverse();
    let err = verify_entry(&root, &task_proof, &forged).unwrap_err();
    assert!(err.to_string().contains("committed leaf"), "{err}");
    let mut forged = dataset.clone();
    forged.history.pop();
    let err = verify_entry(&root, &dataset_proof, &forged).unwrap_err();
    assert!(err.to_string().contains("history"), "{err}");
    let mut forged = dataset;
    forged.schema.push('x');
    assert!(verify_entry(&root, &dataset_proof, &forged).is_err());
    // A closed task takes no more rounds.
    let body = open(&h.s, 1, 1);
    h.rejected(COORD, body, "task_not_open");
}

#[test]
fn dust_and_unscored_share_go_back_to_the_creator() {
    let mut h = H::new();
    let body = h.open_body(3);
    h.ok(COORD, body);
    // 10 000 split 1:1:1 → 3 333 each, 1 of dust refunded.
    h.ok(
        COORD,
        result(1, 1, vec![1, 2, 3], &[(1, 7), (2, 7), (3, 7)]),
    );
    let before = h.s.account(&h.addr(CREATOR)).balance;
    let out = h.ok(COORD, close(1, SALT));
    let paid: Vec<u128> = out.receipts[0]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::RewardPaid { amount, .. } => Some(*amount),
            _ => None,
        })
        .collect();
    assert_eq!(paid, vec![3_333; 3]);
    assert_eq!(h.s.account(&h.addr(CREATOR)).balance, before + 1);
}

#[test]
fn only_the_coordinator_runs_rounds() {
    let mut h = H::new();
    let body = h.open_body(2);
    h.rejected(CREATOR, body.clone(), "not_coordinator");
    h.rejected(STRANGER, body.clone(), "not_coordinator");
    h.rejected(STRANGER, set_coordinator(1, h.addr(STRANGER)), "not_owner");
    h.ok(COORD, body);
    let sel = selected_of(&h.s, 1);
    h.rejected(STRANGER, result(1, 1, sel.clone(), &[]), "not_coordinator");
    h.rejected(
        CREATOR,
        set_coordinator(1, h.addr(STRANGER)),
        "round_still_open",
    );
    h.ok(COORD, result(1, 1, sel, &[]));
    h.rejected(STRANGER, close(1, SALT), "not_coordinator");
}

#[test]
fn consent_is_judged_at_each_round_open() {
    let mut h = H::new();
    // Dataset 2 revoked while round 1 is open: the open round is unaffected.
    let body = h.open_body(3);
    h.ok(COORD, body);
    assert_eq!(selected_of(&h.s, 1), vec![1, 2, 3]);
    h.ok(4, TxBody::ConsentRevoke(ConsentRevoke { dataset: 2 }));
    h.ok(COORD, result(1, 1, vec![1, 2, 3], &[(2, 5)]));
    // From the next RoundOpen on, dataset 2 is not eligible: asking for all three is refused,
    // asking for two draws the other two.
    assert_eq!(h.s.round_eligible(1).unwrap(), vec![1, 3]);
    let err = h.rejected(COORD, h.open_body(3), "too_few_eligible");
    assert_eq!(
        err,
        TxError::TooFewEligible {
            task: 1,
            round: 2,
            asked: 3,
            eligible: 2
        }
    );
    h.ok(COORD, h.open_body(2));
    assert_eq!(selected_of(&h.s, 1), vec![1, 3]);
    h.ok(COORD, result(1, 2, vec![1, 3], &[]));
    // Dataset 3's owner narrows the purpose: no longer eligible either.
    h.ok(
        5,
        TxBody::ConsentUpdate(ConsentUpdate {
            dataset: 3,
            policy: policy(&["ads"], 1_000),
        }),
    );
    // Only dataset 1 is left.
    assert_eq!(h.s.round_eligible(1).unwrap(), vec![1]);
    let err = h.rejected(COORD, h.open_body(2), "too_few_eligible");
    assert!(matches!(
        err,
        TxError::TooFewEligible {
            asked: 2,
            eligible: 1,
            ..
        }
    ));
    let body = h.open_body(1);
    h.ok(COORD, body);
    assert_eq!(selected_of(&h.s, 1), vec![1]);
    let r = h.s.task(1).unwrap().round_log.last().unwrap();
    assert_eq!(r.eligible, 1);
    // Neither excluded dataset was charged for rounds it was not in.
    assert_eq!((h.spent(1), h.spent(2), h.spent(3)), (3 * E, E, 2 * E));
}

#[test]
fn expired_consent_is_rejected() {
    let k = keys(7);
    let mut h = H { s: state(&k), k };
    h.ok(3, dataset_register(0, policy(&["health"], 6)));
    h.ok(4, dataset_register(1, policy(&["health"], 1_000)));
    h.ok(CREATOR, task_create(vec![1, 2], "health", REWARD, TASK_EPS));
    h.ok(CREATOR, commit(1));
    assert_eq!(h.s.round_eligible(1).unwrap(), vec![1, 2]);
    while h.s.height() < 4 {
        block(&mut h.s, Address([0xAB; 32]), vec![]);
    }
    // Consent ends at height 6: a round opened at 5 may still take dataset 1, one at 6 not.
    let mut at5 = h.s.clone();
    let open2 = h.tx(CREATOR, open(&h.s, 1, 2));
    assert_eq!(ok(&mut at5, open2).height, 5);
    assert_eq!(at5.task(1).unwrap().round_log[0].selected, vec![1, 2]);
    block(&mut h.s, Address([0xAB; 32]), vec![]);
    assert_eq!(h.s.round_eligible(1).unwrap(), vec![2]);
    let err = h.rejected(CREATOR, open(&h.s, 1, 2), "too_few_eligible");
    assert!(matches!(
        err,
        TxError::TooFewEligible {
            task: 1,
            round: 1,
            asked: 2,
            eligible: 1
        }
    ));
    h.ok(CREATOR, open(&h.s, 1, 1));
    assert_eq!(selected_of(&h.s, 1), vec![2]);
    assert_eq!(h.spent(1), 0);
}

#[test]
fn a_round_asking_for_more_than_are_eligible_is_refused() {
    // More than the eligible datasets (here: more than the filter) is refused by name.
    let mut h = H::new();
    assert_eq!(h.s.round_eligible(1).unwrap(), vec![1, 2, 3]);
    let err = h.rejected(COORD, h.open_body(4), "too_few_eligible");
    assert_eq!(
        err,
        TxError::TooFewEligible {
            task: 1,
            round: 1,
            asked: 4,
            eligible: 3
        }
    );
    // A coordinator whose reading went stale: a revocation lands before its RoundOpen in the
    // same block, so the round it asked for no longer fits and is refused; the reverse order
    // keeps the round (the revocation takes effect from the next one).
    let mut stale = h.s.clone();
    let revoke = h.tx(4, TxBody::ConsentRevoke(ConsentRevoke { dataset: 2 }));
    let open3 = h.tx(COORD, h.open_body(3));
    h.s.check_tx(&open3).unwrap();
    let out = block(
        &mut stale,
        Address([0xAB; 32]),
        vec![revoke.clone(), open3.clone()],
    );
    assert!(out.receipts[0].is_ok());
    assert_eq!(
        out.receipts[1].result.as_ref().unwrap_err(),
        &TxError::TooFewEligible {
            task: 1,
            round: 1,
            asked: 3,
            eligible: 2
        }
    );
    assert!(stale.task(1).unwrap().round_log.is_empty());
    let out = block(&mut h.s, Address([0xAB; 32]), vec![open3, revoke]);
    assert!(out.receipts.iter().all(Receipt::is_ok));
    let r = &h.s.task(1).unwrap().round_log[0];
    assert_eq!((r.selected.clone(), r.eligible), (vec![1, 2, 3], 3));
    // Zero datasets, more than the task filter may hold, or n != count: refused statelessly.
    h.ok(COORD, result(1, 1, vec![], &[]));
    let err = h.rejected(COORD, h.open_body(0), "zero_amount");
    assert!(matches!(err, TxError::ZeroAmount { ref field } if field == "count"));
    let max = h.s.params().task_datasets_max;
    let err = h.rejected(COORD, h.open_body(max + 1), "limit_exceeded");
    assert!(matches!(err, TxError::LimitExceeded { ref field, .. } if field == "count"));
    let mut body = h.open_body(2);
    if let TxBody::RoundOpen(o) = &mut body {
        o.secagg.n = 3;
    }
    let err = h.rejected(COORD, body, "invalid_field");
    assert!(matches!(err, TxError::InvalidField { ref field, .. } if field == "secagg"));
}

#[test]
fn selection_is_drawn_from_the_block_beacon() {
    // Forty datasets in one task; the coordinator asks for 3. Which 3 is decided by the
    // beacon of the block that includes the RoundOpen: the same state and the same signed
    // transaction draw differently in blocks with different beacons (two equal draws by chance
    // have probability 1 / C(40, 3) = 1 / 9880), and identically on every replica of a block.
    let k = keys(7);
    let mut s = state(&k);
    let regs: Vec<SignedTx> = (0..40u64)
        .map(|i| {
            sign(
                &k[3],
                i,
                1,
                dataset_register(i as u8, policy(&["health"], 1_000)),
            )
        })
        .collect();
    let out = block(&mut s, Address([0xAB; 32]), regs);
    assert!(out.receipts.iter().all(Receipt::is_ok));
    let all: Vec<u64> = (1..=40).collect();
    ok(
        &mut s,
        sign(
            &k[CREATOR],
            0,
            1,
            task_create(all.clone(), "health", REWARD, TASK_EPS),
        ),
    );
    ok(&mut s, sign(&k[CREATOR], 1, 1, commit(1)));
    assert_eq!(s.round_eligible(1).unwrap(), all);
    let tx = sign(&k[CREATOR], 2, 1, open(&s, 1, 3));
    // Admission does not know the beacon and needs none.
    s.check_tx(&tx).unwrap();
    let mut draws = Vec::new();
    for b in [beacon(100), beacon(101)] {
        let mut replica_a = s.clone();
        let mut replica_b = s.clone();
        let blk = Block {
            height: s.height() + 1,
            proposer: Address([0xAB; 32]),
            beacon: b,
            txs: vec![tx.clone()],
        };
        let out = replica_a.apply_block(&blk);
        assert!(out.receipts[0].is_ok(), "{:?}", out.receipts[0].result);
        assert_eq!(out, replica_b.apply_block(&blk), "replicas disagree");
        assert_eq!(replica_a.root(), replica_b.root());
        let r = &replica_a.task(1).unwrap().round_log[0];
        let seed = selection_seed(1, 1, &b);
        assert_eq!(r.seed, seed);
        assert_eq!(r.selected, select(&seed, &all, 3));
        assert_eq!((r.selected.len(), r.eligible), (3, 40));
        // Only the selected are charged.
        for d in &all {
            let charged = replica_a.dataset(*d).unwrap().epsilon_spent;
            assert_eq!(charged, if r.selected.contains(d) { E } else { 0 });
        }
        draws.push((r.selected.clone(), replica_a.root()));
    }
    assert_ne!(draws[0].0, draws[1].0, "the beacon did not change the draw");
    assert_ne!(draws[0].1, draws[1].1);
}

#[test]
fn epsilon_is_charged_per_dataset_from_the_schedule() {
    // ε 3.0 after one round, 4.0 after two, 5.0 after three: a dataset pays 3.0, 1.0, 1.0 for
    // its 1st, 2nd, 3rd round, whatever round of the task those are.
    let mut t = task(vec![1, 2, 3], "health", REWARD, 5 * E);
    t.rounds = 3;
    t.epsilon_schedule = schedule(&[(1, 3 * E), (2, 4 * E), (3, 5 * E)]);
    let mut h = H::with_task(t);
    {
        let t = h.s.task(1).unwrap();
        assert_eq!(
            (0..=4).map(|j| t.cumulative_epsilon(j)).collect::<Vec<_>>(),
            vec![Some(0), Some(3 * E), Some(4 * E), Some(5 * E), None]
        );
        assert_eq!(t.next_charge(1), Some(3 * E));
    }
    // Round 1 draws {1, 2}: each pays its 1st step; the task's ε is the largest, 3.0.
    let out = h.open_drawing(COORD, 1, &[1, 2]);
    assert!(matches!(
        out.receipts[0].events[0],
        Event::RoundOpened { epsilon, eligible: 3, .. } if epsilon == 3 * E
    ));
    assert_eq!((h.spent(1), h.spent(2), h.spent(3)), (3 * E, 3 * E, 0));
    assert_eq!(h.s.task(1).unwrap().epsilon_spent, 3 * E);
    h.ok(COORD, result(1, 1, vec![], &[]));
    // Round 2 draws {1, 3}: dataset 1 pays 1.0 (its 2nd), dataset 3 pays 3.0 (its 1st);
    // the task's ε rises to 4.0, so the round records 1.0.
    h.open_drawing(COORD, 1, &[1, 3]);
    assert_eq!((h.spent(1), h.spent(2), h.spent(3)), (4 * E, 3 * E, 3 * E));
    {
        let t = h.s.task(1).unwrap();
        assert_eq!((t.epsilon_spent, t.round_log[1].epsilon), (4 * E, E));
        assert_eq!(
            [1, 2, 3].map(|d| t.participations(d)),
            [2, 1, 1],
            "participations"
        );
        assert_eq!(
            [1, 2, 3].map(|d| t.next_charge(d)),
            [Some(E), Some(E), Some(E)]
        );
    }
    h.ok(COORD, result(1, 2, vec![], &[]));
    // Round 3 draws all: dataset 1 its 3rd (1.0), datasets 2 and 3 their 2nd (1.0 each).
    h.open_drawing(COORD, 1, &[1, 2, 3]);
    assert_eq!((h.spent(1), h.spent(2), h.spent(3)), (5 * E, 4 * E, 4 * E));
    let t = h.s.task(1).unwrap();
    let rounds: Vec<u64> = t.round_log.iter().map(|r| r.epsilon).collect();
    assert_eq!(rounds, vec![3 * E, E, E]);
    assert_eq!(t.epsilon_spent, 5 * E);
    assert_eq!(rounds.iter().sum::<u64>(), t.epsilon_spent);
    let most = (1..=3)
        .map(|d| t.cumulative_epsilon(t.participations(d)).unwrap())
        .max();
    assert_eq!(most, Some(t.epsilon_spent));
    assert_eq!(t.next_charge(1), None, "dataset 1 took part in every round");
    // Each dataset's history records what it was charged for each round, not the task's figure:
    // round 2 raised the task's ε by 1.0 but charged dataset 3 its first step, 3.0.
    let charged = |d: u64| -> Vec<(u32, u64)> {
        h.s.dataset(d)
            .unwrap()
            .history
            .iter()
            .filter_map(|e| match e.event {
                Event::EpsilonCharged {
                    dataset,
                    task: 1,
                    round,
                    epsilon,
                } if dataset == d => Some((round, epsilon)),
                _ => None,
            })
            .collect()
    };
    assert_eq!(charged(3), vec![(2, 3 * E), (3, E)]);
    assert_eq!(charged(1), vec![(1, 3 * E), (2, E), (3, E)]);
    assert!(
        !h.s.dataset(3)
            .unwrap()
            .history
            .iter()
            .any(|e| matches!(e.event, Event::RoundOpened { .. })),
        "the round's own event, with the task's figure, stays in the task's history"
    );
}

#[test]
fn a_grid_schedule_charges_only_at_its_steps() {
    // A long task prices rounds on a grid: 4.0 for up to 2 rounds, 6.0 for up to 4. One dataset
    // pays 4.0 at its 1st round, 0 at its 2nd, 2.0 at its 3rd, 0 at its 4th.
    let mut t = task(vec![1], "health", REWARD, 6 * E);
    t.rounds = 4;
    t.epsilon_schedule = schedule(&[(2, 4 * E), (4, 6 * E)]);
    let mut h = H::with_task(t);
    let mut charges = Vec::new();
    for round in 1..=4u32 {
        let before = h.spent(1);
        let out = h.ok(COORD, h.open_body(1));
        assert!(matches!(
            out.receipts[0].events[0],
            Event::RoundOpened { round: r, .. } if r == round
        ));
        charges.push(h.spent(1) - before);
        h.ok(COORD, result(1, round, vec![1], &[(1, 1)]));
    }
    assert_eq!(charges, vec![4 * E, 0, 2 * E, 0]);
    let t = h.s.task(1).unwrap();
    let rounds: Vec<u64> = t.round_log.iter().map(|r| r.epsilon).collect();
    assert_eq!(rounds, charges, "one dataset: the task's ε is its ε");
    assert_eq!((t.epsilon_spent, h.spent(1)), (6 * E, 6 * E));
    assert_eq!(h.spent(2), 0);
}

#[test]
fn delta_budget_is_enforced_by_basic_composition() {
    // δ is still summed per round; ε needs no check at RoundOpen: the schedule, checked at
    // creation, never passes the task's budget.
    let mut h = H::new();
    let body = open_with_delta(&h.s, 1, 3, 4_000_000);
    h.ok(COORD, body);
    h.ok(COORD, result(1, 1, vec![1], &[]));
    let body = open_with_delta(&h.s, 1, 3, 4_000_000);
    h.ok(COORD, body);
    h.ok(COORD, result(1, 2, vec![1], &[]));
    let body = open_with_delta(&h.s, 1, 3, 2_000_001);
    let err = h.rejected(COORD, body, "budget_exceeded");
    assert_eq!(
        err,
        TxError::BudgetExceeded {
            task: 1,
            what: "delta".into(),
            spent: 8_000_000,
            round: 2_000_001,
            budget: 10_000_000,
        }
    );
    let body = open_with_delta(&h.s, 1, 3, 2_000_000);
    h.ok(COORD, body);
    let t = h.s.task(1).unwrap();
    assert_eq!((t.delta_spent, t.epsilon_spent), (10_000_000, 3 * E));
    assert!(t.epsilon_spent <= t.epsilon);
}

#[test]
fn dataset_epsilon_max_holds_across_tasks() {
    let mut h = H::new();
    // Task 2 (by the creator, no coordinator) uses dataset 1 only, whose ε max is 8: 4.0 for
    // its first round, 8.0 for both.
    let mut t2 = task(vec![1], "health", REWARD, 8 * E);
    t2.rounds = 2;
    t2.epsilon_schedule = schedule(&[(1, 4 * E), (2, 8 * E)]);
    h.ok(CREATOR, TxBody::TaskCreate(t2));
    h.ok(CREATOR, commit(2));
    // Task 1 selects all of its datasets three times: dataset 1 spends 3.0.
    for round in 1..=3 {
        h.ok(COORD, h.open_body(3));
        h.ok(COORD, result(1, round, vec![], &[]));
    }
    // Task 2's first round costs it 4.0 more: 7.0.
    h.ok(CREATOR, open(&h.s, 2, 1));
    h.ok(CREATOR, result(2, 1, vec![1], &[]));
    assert_eq!(h.spent(1), 7 * E);
    // Its second would cost 4.0: 11.0 > 8, so dataset 1 is not eligible and the round is refused.
    assert_eq!(h.s.round_eligible(2).unwrap(), Vec::<u64>::new());
    let err = h.rejected(CREATOR, open(&h.s, 2, 1), "too_few_eligible");
    assert_eq!(
        err,
        TxError::TooFewEligible {
            task: 2,
            round: 2,
            asked: 1,
            eligible: 0
        }
    );
    // Task 1's 4th round costs it 1.0: exactly 8, still eligible.
    assert_eq!(h.s.round_eligible(1).unwrap(), vec![1, 2, 3]);
    h.ok(COORD, h.open_body(3));
    h.ok(COORD, result(1, 4, vec![], &[]));
    assert_eq!((h.spent(1), h.spent(2)), (8 * E, 4 * E));
    // A 5th would pass 8: the other two remain.
    assert_eq!(h.s.round_eligible(1).unwrap(), vec![2, 3]);
    h.rejected(COORD, h.open_body(3), "too_few_eligible");
    h.ok(COORD, h.open_body(2));
    assert_eq!(selected_of(&h.s, 1), vec![2, 3]);
    assert_eq!((h.spent(1), h.spent(2), h.spent(3)), (8 * E, 5 * E, 5 * E));
    for d in h.s.datasets() {
        assert!(d.epsilon_spent <= d.policy.epsilon_max);
    }
}

#[test]
fn rounds_are_sequential_and_bounded() {
    let mut h = H::new();
    let mut body = h.open_body(1);
    if let TxBody::RoundOpen(o) = &mut body {
        o.round = 2;
    }
    h.rejected(COORD, body, "wrong_round");
    h.rejected(COORD, result(1, 1, vec![], &[]), "round_not_open");
    for round in 1..=5u32 {
        let body = h.open_body(1);
        h.ok(COORD, body);
        let body = h.open_body(1);
        h.rejected(COORD, body, "round_still_open");
        h.rejected(COORD, result(1, round + 1, vec![], &[]), "round_not_open");
        // Round 1 open, nothing recorded yet: wait for it; later: only TaskClose ends the task.
        let code = if round == 1 {
            "round_still_open"
        } else {
            "invalid_field"
        };
        h.rejected(CREATOR, TxBody::TaskCancel(TaskCancel { task: 1 }), code);
        h.ok(COORD, result(1, round, vec![], &[]));
        h.rejected(COORD, result(1, round, vec![], &[]), "round_not_open");
    }
    let body = h.open_body(1);
    h.rejected(COORD, body, "wrong_round");
}

#[test]
fn survivors_and_scores_must_be_participants() {
    let mut h = H::new();
    let body = h.open_body(2);
    h.ok(COORD, body);
    let sel = selected_of(&h.s, 1);
    let outsider = (1..=3).find(|d| !sel.contains(d)).unwrap();
    let mut survivors = vec![sel[0], outsider];
    survivors.sort_unstable();
    let err = h.rejected(COORD, result(1, 1, survivors, &[]), "invalid_participant");
    assert!(
        matches!(err, TxError::InvalidParticipant { dataset, ref field, .. } if dataset == outsider && field == "survivors")
    );
    let err = h.rejected(
        COORD,
        result(1, 1, vec![sel[0]], &[(sel[1], 5)]),
        "invalid_participant",
    );
    assert!(matches!(err, TxError::InvalidParticipant { ref field, .. } if field == "scores"));
    h.rejected(
        COORD,
        result(1, 1, vec![sel[0]], &[(sel[0], SCORE_SCALE + 1)]),
        "invalid_field",
    );
    h.rejected(
        COORD,
        result(1, 1, vec![sel[1], sel[0]], &[]),
        "invalid_field",
    );
    h.ok(COORD, result(1, 1, vec![sel[0]], &[(sel[0], SCORE_SCALE)]));
}

#[test]
fn close_checks_the_validation_reveal_and_open_rounds() {
    let mut h = H::new();
    h.rejected(COORD, close(1, SALT), "invalid_field"); // no completed round
    let body = h.open_body(2);
    h.ok(COORD, body);
    h.rejected(CREATOR, commit(1), "invalid_field"); // too late to commit
    h.rejected(CREATOR, close(1, SALT), "round_still_open");
    let sel = selected_of(&h.s, 1);
    h.ok(COORD, result(1, 1, sel, &[]));
    let err = h.rejected(CREATOR, close(1, Digest([0; 32])), "validation_mismatch");
    assert!(matches!(
        err,
        TxError::ValidationMismatch {
            task: 1,
            committed: Some(_),
            ..
        }
    ));
    h.ok(CREATOR, close(1, SALT));
}

#[test]
fn rounds_need_a_validation_commitment() {
    let k = keys(7);
    let mut h = H { s: state(&k), k };
    h.ok(3, dataset_register(0, policy(&["health"], 1_000)));
    h.ok(CREATOR, task_create(vec![1], "health", REWARD, TASK_EPS));
    let body = open(&h.s, 1, 1);
    h.rejected(CREATOR, body, "invalid_field");
}

#[test]
fn round_records_eligible_count_and_deadline() {
    let mut h = H::new();
    // Two of three eligible datasets selected: the count eligible is on the ledger.
    let body = h.open_body(2);
    let out = h.ok(COORD, body);
    let opened = h.s.height();
    let r = h.s.task(1).unwrap().round_log[0].clone();
    assert_eq!((r.selected.len(), r.eligible), (2, 3));
    assert_eq!(r.deadline_height, opened + ROUND_TIMEOUT);
    assert_eq!(
        out.receipts[0].events[0],
        Event::RoundOpened {
            task: 1,
            round: 1,
            epsilon: EPSILON_SCALE,
            eligible: 3,
            deadline_height: opened + ROUND_TIMEOUT,
        }
    );
    // The task's leaf commits to it: the proof's value holds the round's digest.
    let proof = h.s.prove(&StateKey::Task(1)).unwrap();
    verify_proof(&h.s.root(), &proof).unwrap();
    let digest = r.digest();
    assert!(proof.value.windows(32).any(|w| w == digest.0));
    let mut forged = r.clone();
    forged.eligible = 2;
    assert_ne!(forged.digest(), digest, "eligible is in the digest");
    // Revoked datasets are not eligible: the next round records 2.
    h.ok(COORD, result(1, 1, vec![], &[]));
    h.ok(4, TxBody::ConsentRevoke(ConsentRevoke { dataset: 2 }));
    assert_eq!(h.s.round_eligible(1).unwrap(), vec![1, 3]);
    let body = h.open_body(1);
    h.ok(COORD, body);
    let r = &h.s.task(1).unwrap().round_log[1];
    assert_eq!((r.selected.len(), r.eligible), (1, 2));
}

#[test]
fn stalled_round_expires_and_the_task_goes_on() {
    let mut h = H::new();
    let body = h.open_body(3);
    h.ok(COORD, body);
    let deadline = h.s.height() + ROUND_TIMEOUT;
    // Too early, up to and including the deadline: named, with the heights.
    while h.s.height() < deadline {
        let next = h.s.height() + 1;
        let err = h.rejected(STRANGER, expire(1, 1), "round_not_expired");
        assert_eq!(
            err,
            TxError::RoundNotExpired {
                task: 1,
                round: 1,
                deadline_height: deadline,
                height: next,
            }
        );
    }
    h.rejected(STRANGER, expire(9, 1), "unknown_id");
    h.rejected(STRANGER, expire(1, 2), "round_not_open");
    h.rejected(STRANGER, expire(1, 0), "round_not_open");
    let spent_before: Vec<u64> = (1..=3)
        .map(|d| h.s.dataset(d).unwrap().epsilon_spent)
        .collect();
    let stranger_before = h.s.account(&h.addr(STRANGER)).balance;
    // Anyone may expire it once the height is past the deadline; it pays nothing but the fee.
    let at = h.s.height() + 1;
    let out = h.ok(STRANGER, expire(1, 1));
    assert_eq!(
        out.receipts[0].events,
        vec![Event::RoundExpired { task: 1, round: 1 }]
    );
    assert_eq!(h.s.account(&h.addr(STRANGER)).balance, stranger_before - 1);
    let t = h.s.task(1).unwrap();
    let r = &t.round_log[0];
    assert!(r.is_expired() && !r.is_open() && r.outcome.is_none());
    assert_eq!(r.expired_height, Some(at));
    assert!(t.open_round().is_none());
    // ε and δ stay charged, to the task and to every selected dataset.
    assert_eq!((t.epsilon_spent, t.delta_spent), (EPSILON_SCALE, 1_000_000));
    for d in 1..=3u64 {
        let ds = h.s.dataset(d).unwrap();
        assert_eq!(ds.epsilon_spent, spent_before[d as usize - 1]);
        assert!(
            ds.history
                .iter()
                .any(|e| e.event == Event::RoundExpired { task: 1, round: 1 })
        );
    }
    // The late result is refused by name; so is a second expiry.
    let late = result(1, 1, vec![1, 2, 3], &[(1, 5)]);
    let err = h.rejected(COORD, late, "round_expired");
    assert_eq!(
        err,
        TxError::RoundExpired {
            task: 1,
            round: 1,
            expired_height: at
        }
    );
    h.rejected(STRANGER, expire(1, 1), "round_expired");
    // The creator replaces the coordinator; round numbers continue.
    h.ok(CREATOR, set_coordinator(1, h.addr(STRANGER)));
    let body = h.open_body(2);
    if let TxBody::RoundOpen(o) = &body {
        assert_eq!(o.round, 2);
    }
    h.ok(STRANGER, body);
    let sel = selected_of(&h.s, 1);
    h.ok(STRANGER, result(1, 2, sel.clone(), &[(sel[0], 10)]));
    h.rejected(COORD, expire(1, 2), "round_not_open"); // has a result
    assert_eq!(h.s.task(1).unwrap().epsilon_spent, 2 * EPSILON_SCALE);
    // Round 3 expires too: the close registers round 2's model, the last with a result.
    let body = h.open_body(1);
    h.ok(STRANGER, body);
    advance(&mut h.s, ROUND_TIMEOUT);
    h.ok(COORD, expire(1, 3));
    h.rejected(
        CREATOR,
        TxBody::TaskCancel(TaskCancel { task: 1 }),
        "invalid_field",
    );
    h.ok(CREATOR, close(1, SALT));
    let t = h.s.task(1).unwrap();
    let model = h.s.model(t.final_model.unwrap()).unwrap();
    assert_eq!(model.model_hash, Digest::hash(&2u32.to_be_bytes()));
    assert_eq!(h.s.supply().total, h.s.supply().genesis);
    let restored = State::from_snapshot(h.s.snapshot()).unwrap();
    assert_eq!(restored.root(), h.s.root());
}

#[test]
fn task_whose_rounds_all_expired_is_not_frozen() {
    let mut h = H::new();
    let creator_before = h.s.account(&h.addr(CREATOR)).balance;
    let coord_before = h.s.account(&h.addr(COORD)).balance;
    let body = h.open_body(3);
    h.ok(COORD, body);
    assert_eq!(h.s.supply().bonds, COORDINATOR_BOND);
    // While the round is open the creator can neither cancel, close nor replace the coordinator.
    let cancel = TxBody::TaskCancel(TaskCancel { task: 1 });
    h.rejected(CREATOR, cancel.clone(), "round_still_open");
    h.rejected(CREATOR, close(1, SALT), "round_still_open");
    h.rejected(
        CREATOR,
        set_coordinator(1, h.addr(CREATOR)),
        "round_still_open",
    );
    advance(&mut h.s, ROUND_TIMEOUT);
    h.ok(CREATOR, expire(1, 1));
    // No round has a result: nothing to close, but the escrow is not stuck.
    h.rejected(CREATOR, close(1, SALT), "invalid_field");
    h.ok(CREATOR, cancel);
    let t = h.s.task(1).unwrap();
    assert_eq!((t.status, t.escrow), (TaskStatus::Cancelled, 0));
    assert_eq!(t.epsilon_spent, EPSILON_SCALE, "privacy stays spent");
    assert_eq!(
        h.s.account(&h.addr(CREATOR)).balance,
        creator_before - 2 + REWARD
    );
    // The coordinator's bond, locked by the expired round, came back.
    assert_eq!(h.s.account(&h.addr(COORD)).balance, coord_before - 1);
    assert_eq!(h.s.supply().bonds, 0);
}

#[test]
fn per_round_epsilon_cap_limits_eligibility() {
    let mut h = H::new();
    // Dataset 2 accepts at most ε = 1 per round (and asks for σ ≥ 1.1, which only owners check).
    let mut capped = policy(&["health"], 1_000);
    capped.epsilon_round_max = E;
    capped.noise_multiplier_min = 1_100_000;
    h.ok(
        4,
        TxBody::ConsentUpdate(ConsentUpdate {
            dataset: 2,
            policy: capped.clone(),
        }),
    );
    assert_eq!(h.s.dataset(2).unwrap().policy, capped);
    // Task 1 charges 1.0 per round: within the cap (equal to it).
    assert_eq!(h.s.round_eligible(1).unwrap(), vec![1, 2, 3]);
    // Task 2 charges 1.0 for a 1st round, then 1.5 for a 2nd: dataset 2 may take part once.
    let mut t2 = task(vec![1, 2, 3], "health", REWARD, 5 * E / 2);
    t2.rounds = 2;
    t2.epsilon_schedule = schedule(&[(1, E), (2, 5 * E / 2)]);
    h.ok(CREATOR, TxBody::TaskCreate(t2));
    h.ok(CREATOR, commit(2));
    assert_eq!(h.s.round_eligible(2).unwrap(), vec![1, 2, 3]);
    h.ok(CREATOR, open(&h.s, 2, 3));
    h.ok(CREATOR, result(2, 1, vec![], &[]));
    assert_eq!((h.spent(1), h.spent(2), h.spent(3)), (E, E, E));
    assert_eq!(h.s.round_eligible(2).unwrap(), vec![1, 3]);
    let err = h.rejected(CREATOR, open(&h.s, 2, 3), "too_few_eligible");
    assert_eq!(
        err,
        TxError::TooFewEligible {
            task: 2,
            round: 2,
            asked: 3,
            eligible: 2
        }
    );
    h.ok(CREATOR, open(&h.s, 2, 2));
    let r = &h.s.task(2).unwrap().round_log[1];
    assert_eq!((r.selected.clone(), r.eligible), (vec![1, 3], 2));
    // Datasets without a cap (0) paid 1.5; dataset 2 was never charged above its cap.
    assert_eq!(
        (h.spent(1), h.spent(2), h.spent(3)),
        (5 * E / 2, E, 5 * E / 2)
    );
    // Task 1 still takes dataset 2: its next charge there is 1.0.
    assert_eq!(h.s.round_eligible(1).unwrap(), vec![1, 2, 3]);
    // A cap above the total is not a policy.
    let mut bad = policy(&["health"], 1_000);
    bad.epsilon_round_max = bad.epsilon_max + 1;
    let body = TxBody::ConsentUpdate(ConsentUpdate {
        dataset: 2,
        policy: bad,
    });
    h.rejected(4, body, "invalid_field");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        /// Asks for `count` datasets (0: exactly as many as are eligible).
        Open {
            count: u32,
        },
        Result {
            keep: usize,
            score: u64,
        },
        Close {
            good_reveal: bool,
        },
        Revoke {
            owner: usize,
        },
        Narrow {
            owner: usize,
        },
        /// The owner sets new ε caps (some below what the dataset already spent, some refused)
        /// and a consent expiry (some within the run).
        Caps {
            owner: usize,
            epsilon_max: u64,
            round_max: u64,
            expiry: u64,
        },
        Transfer {
            from: usize,
            amount: u128,
        },
        /// Anyone expires the task's last round (often too early, or already closed).
        Expire,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u32..5).prop_map(|count| Op::Open { count }),
            4 => (0usize..4, 0u64..=SCORE_SCALE).prop_map(|(keep, score)| Op::Result { keep, score }),
            1 => prop::bool::weighted(0.7).prop_map(|good_reveal| Op::Close { good_reveal }),
            1 => (3usize..6).prop_map(|owner| Op::Revoke { owner }),
            1 => (3usize..6).prop_map(|owner| Op::Narrow { owner }),
            2 => (3usize..6, E / 2..9 * E, prop_oneof![Just(0u64), E / 4..3 * E], 5u64..60)
                .prop_map(|(owner, epsilon_max, round_max, expiry)| Op::Caps { owner, epsilon_max, round_max, expiry }),
            1 => (0usize..7, 1u128..5_000).prop_map(|(from, amount)| Op::Transfer { from, amount }),
            2 => Just(Op::Expire),
        ]
    }

    /// A valid task over datasets 1..=3: a random schedule (steps 1 or 2 rounds apart, each
    /// adding up to 1.8 ε, the first positive) and a budget at or a little above its last step
    /// (at most 8, the datasets' ε max).
    fn task_strategy() -> impl Strategy<Value = TaskCreate> {
        (
            prop::collection::vec((1u32..3, 0u64..1_800_000), 1..5),
            0u64..=800_000,
        )
            .prop_map(|(steps, slack)| {
                let (mut rounds, mut epsilon) = (0, 0);
                let steps: Vec<EpsilonStep> = steps
                    .into_iter()
                    .map(|(gap, add)| {
                        rounds += gap;
                        epsilon = (epsilon + add).max(1);
                        EpsilonStep { rounds, epsilon }
                    })
                    .collect();
                let mut t = task(vec![1, 2, 3], "health", REWARD, epsilon + slack);
                t.rounds = rounds;
                t.epsilon_schedule = steps;
                t
            })
    }

    fn body(h: &H, op: &Op) -> (usize, TxBody) {
        match *op {
            Op::Open { count } => {
                let count = match count {
                    0 => h.s.round_eligible(1).unwrap().len() as u32,
                    n => n,
                };
                (COORD, open(&h.s, 1, count))
            }
            Op::Result { keep, score } => {
                let t = h.s.task(1).unwrap();
                let (round, selected) = t
                    .open_round()
                    .map_or((1, vec![1]), |r| (r.number, r.selected.clone()));
                let survivors: Vec<u64> = selected.into_iter().take(keep).collect();
                let scores: Vec<(u64, u64)> = survivors.iter().map(|&d| (d, score / d)).collect();
                (COORD, result(1, round, survivors, &scores))
            }
            Op::Close { good_reveal } => (
                CREATOR,
                close(1, if good_reveal { SALT } else { Digest([0; 32]) }),
            ),
            Op::Revoke { owner } => (
                owner,
                TxBody::ConsentRevoke(ConsentRevoke {
                    dataset: owner as u64 - 2,
                }),
            ),
            Op::Narrow { owner } => (
                owner,
                TxBody::ConsentUpdate(ConsentUpdate {
                    dataset: owner as u64 - 2,
                    policy: policy(&["ads"], 1_000),
                }),
            ),
            Op::Caps {
                owner,
                epsilon_max,
                round_max,
                expiry,
            } => {
                let mut p = policy(&["health"], expiry);
                p.epsilon_max = epsilon_max;
                p.epsilon_round_max = round_max;
                (
                    owner,
                    TxBody::ConsentUpdate(ConsentUpdate {
                        dataset: owner as u64 - 2,
                        policy: p,
                    }),
                )
            }
            Op::Transfer { from, amount } => (from, transfer(Address([0x77; 32]), amount)),
            Op::Expire => {
                let round = h.s.task(1).unwrap().rounds_opened().max(1);
                (STRANGER, expire(1, round))
            }
        }
    }

    /// A RoundOpen's outcome against the reference model of eligibility and charges: applied
    /// iff it asks for at most the eligible datasets (other refusals are about the round, not
    /// the datasets), drawing `select(seed(beacon), eligible, count)` and charging each selected
    /// dataset its next step.
    fn check_open(pre: &State, post: &State, blk: &Block, o: &RoundOpen, receipt: &Receipt) {
        let (task, count) = (o.task, o.count);
        let eligible = ref_eligible(pre, task, blk.height);
        match &receipt.result {
            Ok(()) => {
                let (t0, t1) = (pre.task(task).unwrap(), post.task(task).unwrap());
                let r = t1.round_log.last().unwrap();
                assert!(count as usize <= eligible.len());
                assert_eq!(r.eligible as usize, eligible.len());
                assert_eq!(r.seed, selection_seed(task, r.number, &blk.beacon));
                assert_eq!(r.selected, select(&r.seed, &eligible, count as usize));
                let mut most = t0.epsilon_spent;
                for d in pre.datasets() {
                    let after = post.dataset(d.id).unwrap().epsilon_spent;
                    if r.selected.contains(&d.id) {
                        assert_eq!(after - d.epsilon_spent, ref_charge(t0, d.id).unwrap());
                        assert!(after <= d.policy.epsilon_max);
                        let j = ref_participations(t0, d.id) + 1;
                        most = most.max(ref_cumulative(&t0.epsilon_schedule, j).unwrap());
                    } else {
                        assert_eq!(after, d.epsilon_spent, "dataset {} not selected", d.id);
                    }
                }
                assert_eq!(t1.epsilon_spent, most);
                assert_eq!(r.epsilon, most - t0.epsilon_spent);
            }
            Err(TxError::TooFewEligible {
                asked,
                eligible: found,
                ..
            }) => {
                assert_eq!((*asked, *found as usize), (count, eligible.len()));
                assert!(count as usize > eligible.len());
            }
            Err(e) => assert!(
                [
                    "zero_amount",
                    "round_still_open",
                    "wrong_round",
                    "task_not_open"
                ]
                .contains(&e.code()),
                "{e}"
            ),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Random lifecycle runs (one tx per block) of a task with a random ε schedule: every
        /// transaction is admitted by `check_tx` iff the block applies it (with the same error);
        /// RoundOpen follows the reference model; supply conserved, a replica replaying the
        /// same blocks agrees, ε accounting exact and within every budget (expired rounds stay
        /// charged), a close pays out exactly the escrow, proofs verify and a snapshot restores
        /// the same root.
        #[test]
        fn lifecycle_conserves_supply_and_budgets(
            t in task_strategy(),
            ops in prop::collection::vec(op(), 1..40),
        ) {
            let mut h = H::with_task(t);
            let mut replica = h.s.clone();
            let genesis = h.s.supply().genesis;
            for op in &ops {
                let (who, body) = body(&h, op);
                let tx = h.tx(who, body);
                let escrow = h.s.task(1).unwrap().escrow;
                let admitted = h.s.check_tx(&tx);
                let pre = h.s.clone();
                let blk = next_block(&h.s, Address([0xAB; 32]), vec![tx.clone()]);
                let out = h.s.apply_block(&blk);
                prop_assert_eq!(&out, &replica.apply_block(&blk));
                prop_assert_eq!(&admitted, &out.receipts[0].result, "admission differs from the block");
                if let TxBody::RoundOpen(o) = &tx.tx.body {
                    check_open(&pre, &h.s, &blk, o, &out.receipts[0]);
                }
                prop_assert_eq!(h.s.supply().total, genesis);
                check_epsilon_accounting(&h.s);
                let t = h.s.task(1).unwrap();
                for r in &t.round_log {
                    prop_assert!(!(r.outcome.is_some() && r.is_expired()));
                }
                // A dataset is only ever charged within the ε max in force.
                for d in h.s.datasets() {
                    if d.epsilon_spent > pre.dataset(d.id).unwrap().epsilon_spent {
                        prop_assert!(d.epsilon_spent <= d.policy.epsilon_max);
                    }
                }
                let (mut paid, mut refund) = (0u128, None);
                for e in &out.events {
                    match e {
                        Event::RewardPaid { amount, .. } => paid += amount,
                        Event::TaskClosed { paid: p, refund: r, .. } => {
                            prop_assert_eq!(*p, paid);
                            refund = Some(*r);
                        }
                        _ => {}
                    }
                }
                if let Some(r) = refund {
                    prop_assert_eq!(paid + r, escrow);
                }
            }
            let root = h.s.root();
            for key in [StateKey::Task(1), StateKey::Dataset(1), StateKey::Dataset(2), StateKey::Dataset(3)] {
                prop_assert!(verify_proof(&root, &h.s.prove(&key).unwrap()).is_ok());
            }
            let restored = State::from_snapshot(h.s.snapshot()).unwrap();
            prop_assert_eq!(restored.root(), root);
        }

        /// Up to three tasks share four datasets whose ε max and per-round caps are random, so
        /// datasets run out of budget across tasks: rounds of random tasks asking for random counts
        /// follow the reference model (eligibility, draw, charges), `check_tx` admits exactly what
        /// the block applies, and no dataset is ever charged past its ε max or a round past its cap.
        #[test]
        fn shared_datasets_run_out_of_budget_across_tasks(
            datasets in prop::collection::vec((2 * E..6 * E, prop_oneof![Just(0u64), E / 2..2 * E]), 4),
            tasks in prop::collection::vec(
                (
                    prop::collection::btree_set(1u64..5, 1..5),
                    E * 3 / 10..E * 12 / 10,
                    prop::collection::vec((1u32..3, 0u64..E / 4), 0..4),
                ),
                1..4,
            ),
            rounds in prop::collection::vec((1u64..4, 0u32..4, 0u8..8), 1..30),
        ) {
            let k = keys(7);
            let mut s = state(&k);
            let send = |s: &mut State, who: usize, body: TxBody| {
                let tx = sign(&k[who], s.account(&addr(&k[who])).nonce, 1, body);
                let admitted = s.check_tx(&tx);
                let pre = s.clone();
                let blk = next_block(s, Address([0xAB; 32]), vec![tx.clone()]);
                let out = s.apply_block(&blk);
                assert_eq!(admitted, out.receipts[0].result, "admission differs from the block");
                if let TxBody::RoundOpen(o) = &tx.tx.body {
                    check_open(&pre, s, &blk, o, &out.receipts[0]);
                }
                check_epsilon_accounting(s);
                out.receipts[0].is_ok()
            };
            let owners = [3usize, 4, 5, 3];
            for (i, &(epsilon_max, round_max)) in datasets.iter().enumerate() {
                let mut p = policy(&["health"], 1_000);
                p.epsilon_max = epsilon_max;
                p.epsilon_round_max = round_max;
                prop_assert!(send(&mut s, owners[i], dataset_register(i as u8, p)));
            }
            for (filter, first, rest) in &tasks {
                let (mut rounds, mut epsilon) = (1u32, *first);
                let mut steps = vec![EpsilonStep { rounds, epsilon }];
                for &(gap, add) in rest {
                    rounds += gap;
                    epsilon += add;
                    steps.push(EpsilonStep { rounds, epsilon });
                }
                let mut t = task(filter.iter().copied().collect(), "health", REWARD, epsilon);
                t.rounds = rounds;
                t.epsilon_schedule = steps;
                // Budgets stay below every dataset's ε max (2): the filter admits each task.
                prop_assert!(send(&mut s, CREATOR, TxBody::TaskCreate(t)));
            }
            for id in 1..=tasks.len() as u64 {
                prop_assert!(send(&mut s, CREATOR, commit(id)));
            }
            for &(task, count, twist) in &rounds {
                let task = task.min(tasks.len() as u64);
                let count = match count {
                    0 => s.round_eligible(task).unwrap().len() as u32,
                    n => n,
                };
                let body = open(&s, task, count);
                if send(&mut s, CREATOR, body) {
                    let selected = selected_of(&s, task);
                    let round = s.task(task).unwrap().rounds_opened();
                    prop_assert!(send(&mut s, CREATOR, result(task, round, selected, &[])));
                }
                // Now and then an owner lowers its dataset's ε max (to 2, where every task is still
                // admitted) or its per-round cap: later rounds must respect it.
                if let 1..=4 = twist {
                    let id = u64::from(twist);
                    let mut p = s.dataset(id).unwrap().policy.clone();
                    p.epsilon_max = p.epsilon_max.min(2 * E);
                    p.epsilon_round_max = if twist % 2 == 0 { E / 2 } else { p.epsilon_round_max };
                    let body = TxBody::ConsentUpdate(ConsentUpdate { dataset: id, policy: p });
                    send(&mut s, owners[id as usize - 1], body);
                }
            }
            prop_assert_eq!(s.supply().total, s.supply().genesis);
        }
    }
}
