//! Every kind of bad transaction is rejected with its code, by `check_tx` and inside a block,
//! and leaves the state root, balances and nonces unchanged.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use crate::common::*;
use deai_ledger::*;

/// Fixture: key 0 owns dataset 1 (purpose "health", expires at height 50) and task 1
/// (on dataset 1, reward 1_000); key 1 is a stranger.
fn fixture() -> (Vec<ed25519_dalek::SigningKey>, State) {
    let k = keys(3);
    let mut s = state(&k);
    ok(
        &mut s,
        sign(&k[0], 0, 1, dataset_register(1, policy(&["health"], 50))),
    );
    ok(
        &mut s,
        sign(
            &k[0],
            1,
            1,
            task_create(vec![1], "health", 1_000, EPSILON_SCALE),
        ),
    );
    (k, s)
}

/// Assert `tx` is rejected with `code` by check_tx and by block application, changing nothing.
fn rejected(s: &mut State, tx: SignedTx, code: &str) {
    assert_eq!(s.check_tx(&tx).unwrap_err().code(), code, "check_tx");
    if code == "bad_signature" {
        // The caller vouches for the signature: only the other checks run.
        assert!(s.check_tx_stateless_verified(&tx).is_ok());
    } else {
        assert_eq!(s.check_tx_verified(&tx).unwrap_err().code(), code);
    }
    let root = s.root();
    let supply = s.supply();
    let sender = s.account(&tx.tx.sender);
    let proposer = Address([0xAB; 32]);
    let out = block(s, proposer, vec![tx.clone()]);
    let r = &out.receipts[0];
    assert_eq!(r.result.as_ref().unwrap_err().code(), code, "receipt");
    assert_eq!(r.fee_paid, 0);
    assert!(r.events.is_empty());
    assert_eq!(out.root, root, "root changed by a rejected tx");
    assert_eq!(s.root(), root);
    assert_eq!(s.supply(), supply);
    assert_eq!(s.account(&tx.tx.sender), sender, "sender changed");
    assert_eq!(
        s.account(&proposer).balance,
        0,
        "proposer paid for a rejected tx"
    );
}

#[test]
fn bad_signature() {
    let (k, mut s) = fixture();
    let mut tx = sign(&k[1], 0, 1, transfer(addr(&k[2]), 5));
    tx.signature[0] ^= 1;
    rejected(&mut s, tx, "bad_signature");
    // Signed by another key than the sender's.
    let mut tx = sign(&k[1], 0, 1, transfer(addr(&k[2]), 5));
    tx.tx.sender = addr(&k[2]);
    rejected(&mut s, tx, "bad_signature");
}

#[test]
fn wrong_chain_id() {
    let (k, mut s) = fixture();
    let mut tx = sign(&k[1], 0, 1, transfer(addr(&k[2]), 5)).tx;
    tx.chain_id = "other-chain".into();
    rejected(&mut s, SignedTx::sign(tx, &k[1]), "wrong_chain_id");
}

#[test]
fn replayed_nonce() {
    let (k, mut s) = fixture();
    let tx = sign(&k[1], 0, 1, transfer(addr(&k[2]), 5));
    ok(&mut s, tx.clone());
    rejected(&mut s, tx, "nonce_replayed");
}

#[test]
fn future_nonce() {
    let (k, mut s) = fixture();
    rejected(
        &mut s,
        sign(&k[1], 7, 1, transfer(addr(&k[2]), 5)),
        "nonce_future",
    );
}

#[test]
fn overdraft() {
    let (k, mut s) = fixture();
    // amount alone fits, amount + fee does not
    rejected(
        &mut s,
        sign(&k[1], 0, 1, transfer(addr(&k[2]), FUNDS)),
        "insufficient_funds",
    );
    rejected(
        &mut s,
        sign(&k[1], 0, FUNDS + 1, transfer(addr(&k[2]), 1)),
        "insufficient_funds",
    );
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    rejected(
        &mut s,
        sign(&stranger, 0, 1, transfer(addr(&k[2]), 1)),
        "insufficient_funds",
    );
    rejected(
        &mut s,
        sign(&k[1], 0, 1, TxBody::Unstake(Unstake { amount: 1 })),
        "insufficient_stake",
    );
    rejected(
        &mut s,
        sign(&k[1], 0, 1, task_create(vec![], "x", FUNDS, 1)),
        "insufficient_funds",
    );
}

#[test]
fn fee_below_minimum() {
    let (k, mut s) = fixture();
    rejected(
        &mut s,
        sign(&k[1], 0, 0, transfer(addr(&k[2]), 5)),
        "fee_too_low",
    );
}

#[test]
fn unknown_ids() {
    let (k, mut s) = fixture();
    let bodies = [
        TxBody::ConsentRevoke(ConsentRevoke { dataset: 99 }),
        TxBody::ConsentUpdate(ConsentUpdate {
            dataset: 99,
            policy: policy(&["a"], 9),
        }),
        TxBody::TaskCancel(TaskCancel { task: 99 }),
        task_create(vec![1, 99], "health", 1_000, 1),
        model_register(99, None),
        model_register(1, Some(99)),
    ];
    for body in bodies {
        rejected(&mut s, sign(&k[0], 2, 1, body), "unknown_id");
    }
}

#[test]
fn not_the_owner() {
    let (k, mut s) = fixture();
    let bodies = [
        TxBody::ConsentRevoke(ConsentRevoke { dataset: 1 }),
        TxBody::ConsentUpdate(ConsentUpdate {
            dataset: 1,
            policy: policy(&["a"], 9),
        }),
        TxBody::TaskCancel(TaskCancel { task: 1 }),
        model_register(1, None),
    ];
    for body in bodies {
        rejected(&mut s, sign(&k[1], 0, 1, body), "not_owner");
    }
}

#[test]
fn oversized() {
    let k = keys(2);
    let params = Params {
        tx_bytes_max: 300,
        ..test_params()
    };
    let mut s = State::from_genesis(&genesis(&k, params)).unwrap();
    let purposes: Vec<&str> = vec!["a-rather-long-purpose-name-number"; 10];
    let tx = sign(&k[0], 0, 1, dataset_register(1, policy(&purposes, 9)));
    assert!(tx.encode().len() > 300);
    rejected(&mut s, tx.clone(), "oversized");
    assert!(
        SignedTx::decode(&tx.encode(), s.params()).is_err(),
        "decode must refuse it too"
    );
}

#[test]
fn limits_exceeded() {
    let (k, mut s) = fixture();
    let long = "x".repeat(65);
    rejected(
        &mut s,
        sign(&k[1], 0, 1, dataset_register(2, policy(&[&long], 9))),
        "limit_exceeded",
    );
    let many = vec!["p"; 17];
    rejected(
        &mut s,
        sign(&k[1], 0, 1, dataset_register(2, policy(&many, 9))),
        "limit_exceeded",
    );
    rejected(
        &mut s,
        sign(&k[1], 0, 1, transfer(addr(&k[2]), 0)),
        "zero_amount",
    );
    let mut cap_above_total = policy(&["health"], 9);
    cap_above_total.epsilon_round_max = cap_above_total.epsilon_max + 1;
    rejected(
        &mut s,
        sign(&k[1], 0, 1, dataset_register(2, cap_above_total)),
        "invalid_field",
    );
    rejected(
        &mut s,
        sign(&k[1], 0, 1, task_create(vec![1, 1], "health", 1_000, 1)),
        "invalid_field",
    );
}

#[test]
fn expired_consent() {
    let (k, mut s) = fixture();
    // dataset 2 expires at height 4; the next block is height 4.
    ok(
        &mut s,
        sign(&k[0], 2, 1, dataset_register(2, policy(&["health"], 4))),
    );
    assert_eq!(s.height(), 3);
    rejected(
        &mut s,
        sign(&k[1], 0, 1, task_create(vec![2], "health", 1_000, 1)),
        "consent_expired",
    );
}

#[test]
fn consent_violated() {
    let (k, mut s) = fixture();
    let cases = [
        task_create(vec![1], "advertising", 1_000, 1), // purpose not allowed
        task_create(vec![1], "health", 99, 1),         // reward below minimum 100
        task_create(vec![1], "health", 1_000, 9 * EPSILON_SCALE), // ε above 8
    ];
    for body in cases {
        rejected(&mut s, sign(&k[1], 0, 1, body), "consent_violated");
    }
    // Allowed creators: only key 2.
    let mut p = policy(&["health"], 50);
    p.creators = Some(vec![addr(&k[2])]);
    ok(
        &mut s,
        sign(
            &k[0],
            2,
            1,
            TxBody::ConsentUpdate(ConsentUpdate {
                dataset: 1,
                policy: p,
            }),
        ),
    );
    rejected(
        &mut s,
        sign(&k[1], 0, 1, task_create(vec![1], "health", 1_000, 1)),
        "consent_violated",
    );
    ok(
        &mut s,
        sign(&k[2], 0, 1, task_create(vec![1], "health", 1_000, 1)),
    );
}

#[test]
fn revoked_consent() {
    let (k, mut s) = fixture();
    ok(
        &mut s,
        sign(
            &k[0],
            2,
            1,
            TxBody::ConsentRevoke(ConsentRevoke { dataset: 1 }),
        ),
    );
    rejected(
        &mut s,
        sign(&k[1], 0, 1, task_create(vec![1], "health", 1_000, 1)),
        "consent_revoked",
    );
    rejected(
        &mut s,
        sign(
            &k[0],
            3,
            1,
            TxBody::ConsentRevoke(ConsentRevoke { dataset: 1 }),
        ),
        "consent_revoked",
    );
}

#[test]
fn cancelled_task_is_closed() {
    let (k, mut s) = fixture();
    ok(
        &mut s,
        sign(&k[0], 2, 1, TxBody::TaskCancel(TaskCancel { task: 1 })),
    );
    rejected(
        &mut s,
        sign(&k[0], 3, 1, TxBody::TaskCancel(TaskCancel { task: 1 })),
        "task_not_open",
    );
    rejected(
        &mut s,
        sign(&k[0], 3, 1, model_register(1, None)),
        "task_not_open",
    );
}

#[test]
fn block_full() {
    let k = keys(2);
    let params = Params {
        block_txs_max: 2,
        ..test_params()
    };
    let mut s = State::from_genesis(&genesis(&k, params)).unwrap();
    let txs: Vec<_> = (0..3)
        .map(|n| sign(&k[1], n, 1, transfer(addr(&k[0]), 1)))
        .collect();
    let out = block(&mut s, addr(&k[0]), txs);
    assert!(out.receipts[0].is_ok() && out.receipts[1].is_ok());
    assert_eq!(
        out.receipts[2].result.as_ref().unwrap_err().code(),
        "block_full"
    );
    assert_eq!(s.account(&addr(&k[1])).nonce, 2);
}

#[test]
fn rejected_tx_among_good_ones_changes_only_the_good() {
    let (k, mut s) = fixture();
    let good = sign(&k[1], 0, 1, transfer(addr(&k[2]), 10));
    let bad = sign(&k[1], 5, 1, transfer(addr(&k[2]), 10));
    let good2 = sign(&k[1], 1, 1, transfer(addr(&k[2]), 10));
    let out = block(&mut s, addr(&k[0]), vec![good, bad, good2]);
    let codes: Vec<_> = out
        .receipts
        .iter()
        .map(|r| r.result.as_ref().err().map(TxError::code))
        .collect();
    assert_eq!(codes, vec![None, Some("nonce_future"), None]);
    assert_eq!(s.account(&addr(&k[2])).balance, FUNDS + 20);
    assert_eq!(s.account(&addr(&k[1])).balance, FUNDS - 22);
}

#[test]
fn duplicate_commitment() {
    let (k, mut s) = fixture();
    // Dataset 1's commitment again, from a stranger and from its own owner: refused, named.
    for (key, nonce) in [(&k[1], 0), (&k[0], 2)] {
        let tx = sign(key, nonce, 1, dataset_register(1, policy(&["health"], 50)));
        assert_eq!(
            s.check_tx(&tx).unwrap_err(),
            TxError::DuplicateCommitment {
                commitment: Digest::hash(&[1]),
                existing: 1
            }
        );
        rejected(&mut s, tx, "duplicate_commitment");
    }
    assert_eq!(s.datasets().count(), 1);
    // Still refused after revocation, and by a node restored from a snapshot.
    ok(
        &mut s,
        sign(
            &k[0],
            2,
            1,
            TxBody::ConsentRevoke(ConsentRevoke { dataset: 1 }),
        ),
    );
    let mut restored = State::from_snapshot(s.snapshot()).unwrap();
    assert_eq!(restored.dataset_by_commitment(&Digest::hash(&[1])), Some(1));
    let tx = sign(&k[1], 0, 1, dataset_register(1, policy(&["health"], 50)));
    rejected(&mut restored, tx.clone(), "duplicate_commitment");
    rejected(&mut s, tx, "duplicate_commitment");
    // Another commitment is fine.
    ok(
        &mut s,
        sign(&k[1], 0, 1, dataset_register(2, policy(&["health"], 50))),
    );
}

#[test]
fn round_expire_refusals() {
    let (k, mut s) = fixture();
    // Task 1 has no round yet; task 7 does not exist.
    let expire = |task, round| TxBody::RoundExpire(RoundExpire { task, round });
    rejected(&mut s, sign(&k[1], 0, 1, expire(7, 1)), "unknown_id");
    rejected(&mut s, sign(&k[1], 0, 1, expire(1, 1)), "round_not_open");
}

/// A TaskCreate of 3 rounds over dataset 1, budget 5 ε, with `steps` as its schedule.
fn scheduled(steps: &[(u32, u64)]) -> TaskCreate {
    let mut t = task(vec![1], "health", 1_000, 5 * EPSILON_SCALE);
    t.rounds = 3;
    t.epsilon_schedule = schedule(steps);
    t
}

#[test]
fn epsilon_schedule_rules() {
    let (k, mut s) = fixture();
    const E: u64 = EPSILON_SCALE;
    // Each case breaks exactly one rule; the refusal names the field and the rule.
    let cases: Vec<(TaskCreate, &str)> = vec![
        (scheduled(&[]), "no step"),
        (scheduled(&[(0, E), (3, 2 * E)]), "first step"),
        (scheduled(&[(1, 0), (3, 2 * E)]), "first step"),
        (scheduled(&[(2, E), (1, 2 * E), (3, 3 * E)]), "out of order"),
        (scheduled(&[(1, E), (1, 2 * E), (3, 3 * E)]), "out of order"),
        (scheduled(&[(1, 2 * E), (2, E), (3, 3 * E)]), "decreases"),
        (scheduled(&[(1, E), (2, 2 * E)]), "last step"),
        (scheduled(&[(1, E), (4, 2 * E)]), "last step"),
        (scheduled(&[(1, E), (3, 5 * E + 1)]), "budget"),
    ];
    for (t, rule) in cases {
        let steps = t.epsilon_schedule.clone();
        let tx = sign(&k[1], 0, 1, TxBody::TaskCreate(t));
        match s.check_tx(&tx).unwrap_err() {
            TxError::InvalidField { field, reason } => {
                assert_eq!(field, "epsilon_schedule", "{steps:?}");
                assert!(reason.contains(rule), "{steps:?}: {reason}");
            }
            other => panic!("{steps:?}: {other:?}"),
        }
        rejected(&mut s, tx, "invalid_field");
    }
    // More than EPSILON_SCHEDULE_STEPS_MAX steps, each otherwise fine.
    let steps_max = EPSILON_SCHEDULE_STEPS_MAX as u32;
    let long = |n: u32| {
        let mut t = task(vec![1], "health", 1_000, 5 * E);
        t.rounds = n;
        t.epsilon_schedule = linear_schedule(n, u64::from(n));
        t
    };
    let tx = sign(&k[1], 0, 1, TxBody::TaskCreate(long(steps_max + 1)));
    assert_eq!(
        s.check_tx(&tx).unwrap_err(),
        TxError::LimitExceeded {
            field: "epsilon_schedule".into(),
            len: EPSILON_SCHEDULE_STEPS_MAX + 1,
            max: EPSILON_SCHEDULE_STEPS_MAX,
        }
    );
    rejected(&mut s, tx, "limit_exceeded");
    // Accepted when right: a step per round, a grid of one step, flat steps, the last step at
    // the budget, the most steps; the task stores the schedule as given.
    let good = [
        scheduled(&[(1, E), (2, 2 * E), (3, 3 * E)]),
        scheduled(&[(3, 5 * E)]),
        scheduled(&[(1, E), (2, E), (3, E)]),
        scheduled(&[(2, 1), (3, 5 * E)]),
        long(steps_max),
    ];
    for (nonce, t) in good.into_iter().enumerate() {
        let tx = sign(&k[1], nonce as u64, 1, TxBody::TaskCreate(t.clone()));
        s.check_tx(&tx).unwrap();
        ok(&mut s, tx);
        let id = s.tasks().map(|t| t.id).max().unwrap();
        let stored = s.task(id).unwrap();
        assert_eq!(
            (&stored.epsilon_schedule, stored.rounds, stored.epsilon),
            (&t.epsilon_schedule, t.rounds, t.epsilon)
        );
        assert_eq!(stored.epsilon_spent, 0);
    }
}

#[test]
fn round_open_refusals() {
    let (k, mut s) = fixture();
    let open = |count: u32, n: u32| {
        TxBody::RoundOpen(RoundOpen {
            task: 1,
            round: 1,
            global_model: Digest([1; 32]),
            count,
            secagg: SecAggParams { n, k: n, t: 1 },
            delta: 1,
        })
    };
    rejected(&mut s, sign(&k[0], 2, 1, open(0, 0)), "zero_amount");
    rejected(&mut s, sign(&k[0], 2, 1, open(65, 65)), "limit_exceeded");
    rejected(&mut s, sign(&k[0], 2, 1, open(1, 2)), "invalid_field");
    // Task 1 has no validation commitment yet; a stranger is not its coordinator.
    rejected(&mut s, sign(&k[0], 2, 1, open(1, 1)), "invalid_field");
    rejected(&mut s, sign(&k[1], 0, 1, open(1, 1)), "not_coordinator");
    let commit = TxBody::TaskCommitValidation(TaskCommitValidation {
        task: 1,
        commitment: Digest([2; 32]),
    });
    ok(&mut s, sign(&k[0], 2, 1, commit));
    // One dataset in the filter: two is too many.
    rejected(&mut s, sign(&k[0], 3, 1, open(2, 2)), "too_few_eligible");
    ok(&mut s, sign(&k[0], 3, 1, open(1, 1)));
    assert_eq!(s.task(1).unwrap().round_log[0].selected, vec![1]);
}
