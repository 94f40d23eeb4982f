//! The task lifecycle of issue 6: coordinator, validation commitment, `RoundOpen` with its
//! deterministic selection and DP budgets, `RoundResult`, `TaskClose` with proportional rewards.
//! Every rejection is checked by `check_tx` and in a block, with the root unchanged.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
use common::*;
use deai_ledger::*;
use ed25519_dalek::SigningKey;

const CREATOR: usize = 1;
const COORD: usize = 2;
const STRANGER: usize = 6;
const TASK_EPS: u64 = 4 * EPSILON_SCALE;
const REWARD: u128 = 10_000;
const SALT: Digest = Digest([0x5A; 32]);
const VALIDATION: Digest = Digest([0x7B; 32]);

/// Keys 3, 4, 5 own datasets 1, 2, 3 (purpose "health", expire at 1000, ε max 8); key 1
/// created task 1 over them (5 rounds, ε 4, reward 10 000), designated key 2 as coordinator
/// and committed its validation data.
struct H {
    k: Vec<SigningKey>,
    s: State,
}

impl H {
    fn new() -> Self {
        let k = keys(7);
        let s = state(&k);
        let mut h = H { k, s };
        for (i, owner) in [3, 4, 5].into_iter().enumerate() {
            h.ok(owner, dataset_register(i as u8, policy(&["health"], 1_000)));
        }
        h.ok(
            CREATOR,
            task_create(vec![1, 2, 3], "health", REWARD, TASK_EPS),
        );
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

    /// A RoundOpen for the next round of task 1 with the ledger's own selection of `count`.
    fn open_body(&self, count: usize, epsilon: u64) -> TxBody {
        let selected = self.s.round_selection(1, count, epsilon).unwrap();
        open(&self.s, 1, selected, epsilon)
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

fn open(s: &State, task: u64, selected: Vec<u64>, epsilon: u64) -> TxBody {
    let n = selected.len() as u32;
    TxBody::RoundOpen(RoundOpen {
        task,
        round: s.task(task).map_or(1, |t| t.rounds_opened() + 1),
        global_model: Digest::hash(b"global"),
        selected,
        secagg: SecAggParams { n, k: n, t: 1 },
        epsilon,
        delta: 1_000_000,
        eligible: s
            .round_eligible(task, epsilon)
            .map_or(0, |e| e.len() as u32),
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
    let body = h.open_body(3, EPSILON_SCALE);
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
    let body = h.open_body(2, EPSILON_SCALE);
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
    // A closed task takes no more rounds.
    let body = open(&h.s, 1, vec![1], EPSILON_SCALE);
    h.rejected(COORD, body, "task_not_open");
}

#[test]
fn dust_and_unscored_share_go_back_to_the_creator() {
    let mut h = H::new();
    let body = h.open_body(3, EPSILON_SCALE);
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
    let body = h.open_body(2, EPSILON_SCALE);
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
    let body = h.open_body(3, EPSILON_SCALE);
    h.ok(COORD, body);
    h.ok(4, TxBody::ConsentRevoke(ConsentRevoke { dataset: 2 }));
    h.ok(COORD, result(1, 1, vec![1, 2, 3], &[(2, 5)]));
    // From the next RoundOpen on, dataset 2 is never selected and naming it is rejected.
    assert!(
        !h.s.round_selection(1, 3, EPSILON_SCALE)
            .unwrap()
            .contains(&2)
    );
    let body = open(&h.s, 1, vec![1, 2], EPSILON_SCALE);
    let err = h.rejected(COORD, body, "consent_revoked");
    assert_eq!(err, TxError::ConsentRevoked { dataset: 2 });
    // Dataset 3's owner narrows the purpose: mismatched consent, named.
    h.ok(
        5,
        TxBody::ConsentUpdate(ConsentUpdate {
            dataset: 3,
            policy: policy(&["ads"], 1_000),
        }),
    );
    let body = open(&h.s, 1, vec![1, 3], EPSILON_SCALE);
    match h.rejected(COORD, body, "consent_violated") {
        TxError::ConsentViolated { dataset, reason } => {
            assert_eq!(dataset, 3);
            assert!(reason.contains("purpose"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // Only dataset 1 is left.
    assert_eq!(h.s.round_selection(1, 3, EPSILON_SCALE).unwrap(), vec![1]);
    let body = h.open_body(3, EPSILON_SCALE);
    h.ok(COORD, body);
}

#[test]
fn expired_consent_is_rejected() {
    let k = keys(7);
    let mut h = H { s: state(&k), k };
    h.ok(3, dataset_register(0, policy(&["health"], 6)));
    h.ok(4, dataset_register(1, policy(&["health"], 1_000)));
    h.ok(CREATOR, task_create(vec![1, 2], "health", REWARD, TASK_EPS));
    h.ok(CREATOR, commit(1));
    while h.s.height() < 6 {
        block(&mut h.s, Address([0xAB; 32]), vec![]);
    }
    let body = open(&h.s, 1, vec![1], EPSILON_SCALE);
    let err = h.rejected(CREATOR, body, "consent_expired");
    assert!(matches!(err, TxError::ConsentExpired { dataset: 1, .. }));
    assert_eq!(h.s.round_selection(1, 2, EPSILON_SCALE).unwrap(), vec![2]);
}

#[test]
fn a_round_priced_for_another_eligible_count_is_refused() {
    // A coordinator that prices ε for more eligible datasets than there are (a lower sampling
    // rate, so a smaller ε) is refused; so is one whose reading went stale.
    let mut h = H::new();
    let right = h.s.round_selection(1, 1, EPSILON_SCALE).unwrap();
    let found = h.s.round_eligible(1, EPSILON_SCALE).unwrap().len() as u32;
    let mut body = open(&h.s, 1, right.clone(), EPSILON_SCALE);
    if let TxBody::RoundOpen(o) = &mut body {
        o.eligible = found + 1;
    }
    let err = h.rejected(COORD, body, "eligible_mismatch");
    assert_eq!(
        err,
        TxError::EligibleMismatch {
            task: 1,
            round: 1,
            declared: found + 1,
            found
        }
    );
    let body = open(&h.s, 1, right, EPSILON_SCALE);
    h.ok(COORD, body);
    let eligible = h.s.task(1).unwrap().round_log[0].eligible;
    assert_eq!(eligible, found);
}

#[test]
fn selection_must_be_the_seeded_one() {
    let mut h = H::new();
    let right = h.s.round_selection(1, 1, EPSILON_SCALE).unwrap();
    let wrong: Vec<u64> = (1..=3).filter(|d| !right.contains(d)).take(1).collect();
    let body = open(&h.s, 1, wrong.clone(), EPSILON_SCALE);
    let err = h.rejected(COORD, body, "wrong_selection");
    assert_eq!(
        err,
        TxError::WrongSelection {
            task: 1,
            round: 1,
            expected: right.clone(),
            got: wrong
        }
    );
    // Not in the task's filter.
    let body = open(&h.s, 1, vec![9], EPSILON_SCALE);
    h.rejected(COORD, body, "invalid_participant");
    // The seed is the previous height's root: an empty block changes nothing, a state change
    // may; the ledger recomputes it either way.
    block(&mut h.s, Address([0xAB; 32]), vec![]);
    assert_eq!(h.s.round_selection(1, 1, EPSILON_SCALE).unwrap(), right);
    let body = open(&h.s, 1, right, EPSILON_SCALE);
    h.ok(COORD, body);
}

#[test]
fn task_budget_is_enforced_by_basic_composition() {
    let mut h = H::new();
    let body = h.open_body(3, 3 * EPSILON_SCALE);
    h.ok(COORD, body);
    h.ok(COORD, result(1, 1, vec![1], &[]));
    let body = h.open_body(3, EPSILON_SCALE + 1);
    let err = h.rejected(COORD, body, "budget_exceeded");
    assert_eq!(
        err,
        TxError::BudgetExceeded {
            task: 1,
            what: "epsilon".into(),
            spent: 3 * EPSILON_SCALE,
            round: EPSILON_SCALE + 1,
            budget: TASK_EPS,
        }
    );
    let body = h.open_body(3, EPSILON_SCALE);
    h.ok(COORD, body);
}

#[test]
fn dataset_epsilon_max_holds_across_tasks() {
    let mut h = H::new();
    // Task 2 (by the creator, no coordinator) also uses dataset 1, whose ε max is 8.
    h.ok(
        CREATOR,
        task_create(vec![1], "health", REWARD, 8 * EPSILON_SCALE),
    );
    h.ok(CREATOR, commit(2));
    // Task 1 selects all of its datasets, task 2 its only one: dataset 1 takes part in both.
    for (task, count, eps) in [(1u64, 3, 4 * EPSILON_SCALE), (2, 1, 3 * EPSILON_SCALE)] {
        let who = if task == 1 { COORD } else { CREATOR };
        let selected = h.s.round_selection(task, count, eps).unwrap();
        assert!(selected.contains(&1));
        let body = open(&h.s, task, selected, eps);
        h.ok(who, body);
        h.ok(who, result(task, 1, vec![], &[]));
    }
    assert_eq!(h.s.dataset(1).unwrap().epsilon_spent, 7 * EPSILON_SCALE);
    let body = open(&h.s, 2, vec![1], EPSILON_SCALE + 1);
    let err = h.rejected(CREATOR, body, "dataset_budget_exceeded");
    assert_eq!(
        err,
        TxError::DatasetBudgetExceeded {
            dataset: 1,
            spent: 7 * EPSILON_SCALE,
            round: EPSILON_SCALE + 1,
            max: 8 * EPSILON_SCALE,
        }
    );
    assert!(
        h.s.round_selection(2, 1, EPSILON_SCALE + 1)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn rounds_are_sequential_and_bounded() {
    let mut h = H::new();
    let mut body = h.open_body(1, 1);
    if let TxBody::RoundOpen(o) = &mut body {
        o.round = 2;
    }
    h.rejected(COORD, body, "wrong_round");
    h.rejected(COORD, result(1, 1, vec![], &[]), "round_not_open");
    for round in 1..=5u32 {
        let body = h.open_body(1, 1);
        h.ok(COORD, body);
        let body = h.open_body(1, 1);
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
    let body = h.open_body(1, 1);
    h.rejected(COORD, body, "wrong_round");
}

#[test]
fn survivors_and_scores_must_be_participants() {
    let mut h = H::new();
    let body = h.open_body(2, EPSILON_SCALE);
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
    let body = h.open_body(2, EPSILON_SCALE);
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
    let body = open(&h.s, 1, vec![1], 1);
    h.rejected(CREATOR, body, "invalid_field");
}

#[test]
fn round_records_eligible_count_and_deadline() {
    let mut h = H::new();
    // Two of three eligible datasets selected: q = 2/3 is on the ledger.
    let body = h.open_body(2, EPSILON_SCALE);
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
    assert_eq!(h.s.round_eligible(1, EPSILON_SCALE).unwrap(), vec![1, 3]);
    let body = h.open_body(1, EPSILON_SCALE);
    h.ok(COORD, body);
    let r = &h.s.task(1).unwrap().round_log[1];
    assert_eq!((r.selected.len(), r.eligible), (1, 2));
}

#[test]
fn stalled_round_expires_and_the_task_goes_on() {
    let mut h = H::new();
    let body = h.open_body(3, EPSILON_SCALE);
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
    let body = h.open_body(2, EPSILON_SCALE);
    if let TxBody::RoundOpen(o) = &body {
        assert_eq!(o.round, 2);
    }
    h.ok(STRANGER, body);
    let sel = selected_of(&h.s, 1);
    h.ok(STRANGER, result(1, 2, sel.clone(), &[(sel[0], 10)]));
    h.rejected(COORD, expire(1, 2), "round_not_open"); // has a result
    assert_eq!(h.s.task(1).unwrap().epsilon_spent, 2 * EPSILON_SCALE);
    // Round 3 expires too: the close registers round 2's model, the last with a result.
    let body = h.open_body(1, EPSILON_SCALE);
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
    let body = h.open_body(3, EPSILON_SCALE);
    h.ok(COORD, body);
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
}

#[test]
fn per_round_epsilon_cap_limits_eligibility() {
    let mut h = H::new();
    // Dataset 2 accepts at most ε = 1 per round (and asks for σ ≥ 1.1, which only owners check).
    let mut capped = policy(&["health"], 1_000);
    capped.epsilon_round_max = EPSILON_SCALE;
    capped.noise_multiplier_min = 1_100_000;
    h.ok(
        4,
        TxBody::ConsentUpdate(ConsentUpdate {
            dataset: 2,
            policy: capped.clone(),
        }),
    );
    assert_eq!(h.s.dataset(2).unwrap().policy, capped);
    assert_eq!(h.s.round_eligible(1, EPSILON_SCALE).unwrap(), vec![1, 2, 3]);
    assert_eq!(
        h.s.round_eligible(1, EPSILON_SCALE + 1).unwrap(),
        vec![1, 3]
    );
    let body = open(&h.s, 1, vec![1, 2, 3], EPSILON_SCALE + 1);
    let err = h.rejected(COORD, body, "dataset_round_epsilon_exceeded");
    assert_eq!(
        err,
        TxError::DatasetRoundEpsilonExceeded {
            dataset: 2,
            round: EPSILON_SCALE + 1,
            max: EPSILON_SCALE,
        }
    );
    let body = h.open_body(3, EPSILON_SCALE + 1);
    h.ok(COORD, body);
    let r = &h.s.task(1).unwrap().round_log[0];
    assert_eq!((r.selected.clone(), r.eligible), (vec![1, 3], 2));
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
        Open {
            count: usize,
            epsilon: u64,
            tamper: bool,
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
        Transfer {
            from: usize,
            amount: u128,
        },
        /// Anyone expires the task's last round (often too early, or already closed).
        Expire,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1usize..4, 1u64..1_500_000, prop::bool::weighted(0.15))
                .prop_map(|(count, epsilon, tamper)| Op::Open { count, epsilon, tamper }),
            4 => (0usize..4, 0u64..=SCORE_SCALE).prop_map(|(keep, score)| Op::Result { keep, score }),
            1 => prop::bool::weighted(0.7).prop_map(|good_reveal| Op::Close { good_reveal }),
            1 => (3usize..6).prop_map(|owner| Op::Revoke { owner }),
            1 => (3usize..6).prop_map(|owner| Op::Narrow { owner }),
            1 => (0usize..7, 1u128..5_000).prop_map(|(from, amount)| Op::Transfer { from, amount }),
            2 => Just(Op::Expire),
        ]
    }

    fn body(h: &H, op: &Op) -> (usize, TxBody) {
        match *op {
            Op::Open {
                count,
                epsilon,
                tamper,
            } => {
                let mut selected = h.s.round_selection(1, count, epsilon).unwrap();
                if tamper || selected.is_empty() {
                    let other = (1..=3).find(|d| !selected.contains(d)).unwrap_or(9);
                    selected.push(other);
                }
                (COORD, open(&h.s, 1, selected, epsilon))
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
            Op::Transfer { from, amount } => (from, transfer(Address([0x77; 32]), amount)),
            Op::Expire => {
                let round = h.s.task(1).unwrap().rounds_opened().max(1);
                (STRANGER, expire(1, round))
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Random lifecycle runs (one tx per block): supply conserved, a replica replaying the
        /// same blocks agrees, budgets never exceeded (expired rounds stay charged), a close
        /// pays out exactly the escrow, proofs verify and a snapshot restores the same root.
        #[test]
        fn lifecycle_conserves_supply_and_budgets(ops in prop::collection::vec(op(), 1..40)) {
            let mut h = H::new();
            let mut replica = h.s.clone();
            let genesis = h.s.supply().genesis;
            for op in &ops {
                let (who, body) = body(&h, op);
                let tx = h.tx(who, body);
                let escrow = h.s.task(1).unwrap().escrow;
                let blk = Block { height: h.s.height() + 1, proposer: Address([0xAB; 32]), txs: vec![tx] };
                let out = h.s.apply_block(&blk);
                prop_assert_eq!(&out, &replica.apply_block(&blk));
                prop_assert_eq!(h.s.supply().total, genesis);
                let t = h.s.task(1).unwrap();
                prop_assert!(t.epsilon_spent <= t.epsilon && t.delta_spent <= t.delta);
                // Expired rounds stay charged; a round is closed at most one way.
                prop_assert_eq!(t.epsilon_spent, t.round_log.iter().map(|r| r.epsilon).sum::<u64>());
                for r in &t.round_log {
                    prop_assert!(!(r.outcome.is_some() && r.is_expired()));
                    prop_assert!(r.selected.len() <= r.eligible as usize);
                }
                for d in h.s.datasets() {
                    prop_assert!(d.epsilon_spent <= d.policy.epsilon_max || d.policy.purposes == ["ads"]);
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
    }
}
