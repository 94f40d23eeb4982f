//! Property tests over random blocks of random (often failing) transactions:
//! supply is conserved by every block, replicas agree on roots and outcomes, every entry's
//! inclusion proof verifies and tampered proofs fail, batch verification equals one-by-one.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
use common::*;
use deai_ledger::*;
use proptest::prelude::*;

const ACCOUNTS: usize = 4;

#[derive(Clone, Debug)]
enum Op {
    Transfer {
        from: usize,
        to: usize,
        amount: u128,
    },
    Stake {
        who: usize,
        amount: u128,
    },
    Unstake {
        who: usize,
        amount: u128,
    },
    /// A registration whose commitment is one of four per account, so some repeat one.
    Register {
        who: usize,
        expiry: u64,
        data: u8,
    },
    Update {
        who: usize,
        dataset: u64,
    },
    Revoke {
        who: usize,
        dataset: u64,
    },
    Task {
        who: usize,
        datasets: Vec<u64>,
        reward: u128,
        epsilon: u64,
    },
    Cancel {
        who: usize,
        task: u64,
    },
    Model {
        who: usize,
        task: u64,
        parent: Option<u64>,
    },
    Coordinator {
        who: usize,
        task: u64,
        to: usize,
    },
    Commit {
        who: usize,
        task: u64,
    },
    /// A RoundOpen sent by the task's coordinator (when it is one of the keys), with the
    /// ledger's selection of `count`, or a wrong one when `tamper`.
    Open {
        who: usize,
        task: u64,
        count: usize,
        epsilon: u64,
        tamper: bool,
    },
    /// A RoundResult for the open round: the first `keep` selected survive, each scored `score`.
    Result {
        who: usize,
        task: u64,
        keep: usize,
        score: u64,
    },
    Close {
        who: usize,
        task: u64,
        good_reveal: bool,
    },
    /// Anyone expires the task's last round (too early, closed, or past its deadline).
    Expire {
        who: usize,
        task: u64,
    },
    BadNonce {
        who: usize,
    },
    BadSig {
        who: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..ACCOUNTS;
    let amount = prop_oneof![1u128..1_000, 1u128..2_000_000];
    prop_oneof![
        4 => (who.clone(), 0..ACCOUNTS + 1, amount.clone())
            .prop_map(|(from, to, amount)| Op::Transfer { from, to, amount }),
        1 => (who.clone(), amount.clone()).prop_map(|(who, amount)| Op::Stake { who, amount }),
        1 => (who.clone(), amount.clone()).prop_map(|(who, amount)| Op::Unstake { who, amount }),
        2 => (who.clone(), 0u64..12, 0u8..4).prop_map(|(who, expiry, data)| Op::Register { who, expiry, data }),
        1 => (who.clone(), 0u64..5).prop_map(|(who, dataset)| Op::Update { who, dataset }),
        1 => (who.clone(), 0u64..5).prop_map(|(who, dataset)| Op::Revoke { who, dataset }),
        2 => (who.clone(), prop::collection::vec(0u64..5, 0..3), amount.clone(), 1u64..10_000_000)
            .prop_map(|(who, datasets, reward, epsilon)| Op::Task { who, datasets, reward, epsilon }),
        1 => (who.clone(), 0u64..4).prop_map(|(who, task)| Op::Cancel { who, task }),
        1 => (who.clone(), 0u64..4, prop::option::of(0u64..4))
            .prop_map(|(who, task, parent)| Op::Model { who, task, parent }),
        1 => (who.clone(), 1u64..4, 0..ACCOUNTS)
            .prop_map(|(who, task, to)| Op::Coordinator { who, task, to }),
        2 => (who.clone(), 1u64..4).prop_map(|(who, task)| Op::Commit { who, task }),
        3 => (who.clone(), 1u64..4, 1usize..4, 1u64..3_000_000, prop::bool::weighted(0.2))
            .prop_map(|(who, task, count, epsilon, tamper)| Op::Open { who, task, count, epsilon, tamper }),
        3 => (who.clone(), 1u64..4, 0usize..4, 0u64..=SCORE_SCALE)
            .prop_map(|(who, task, keep, score)| Op::Result { who, task, keep, score }),
        2 => (who.clone(), 1u64..4, prop::bool::weighted(0.8))
            .prop_map(|(who, task, good_reveal)| Op::Close { who, task, good_reveal }),
        2 => (who.clone(), 1u64..4).prop_map(|(who, task)| Op::Expire { who, task }),
        1 => who.clone().prop_map(|who| Op::BadNonce { who }),
        1 => who.prop_map(|who| Op::BadSig { who }),
    ]
}

fn blocks() -> impl Strategy<Value = Vec<Vec<Op>>> {
    prop::collection::vec(prop::collection::vec(op(), 0..10), 1..6)
}

/// Turn ops into signed txs, with nonces that are right unless the op says otherwise.
fn build(state: &State, keys: &[ed25519_dalek::SigningKey], ops: &[Op]) -> Vec<SignedTx> {
    let mut pending = [0u64; ACCOUNTS];
    let outsider = Address([0x77; 32]);
    let target = |i: usize| keys.get(i).map_or(outsider, addr);
    ops.iter()
        .map(|op| {
            let (who, body, nonce_skew, corrupt) = match op.clone() {
                Op::Transfer { from, to, amount } => (from, transfer(target(to), amount), 0, false),
                Op::Stake { who, amount } => (who, TxBody::Stake(Stake { amount }), 0, false),
                Op::Unstake { who, amount } => (who, TxBody::Unstake(Unstake { amount }), 0, false),
                Op::Register { who, expiry, data } => (
                    who,
                    dataset_register(who as u8 * 4 + data, policy(&["health", "ads"], expiry)),
                    0,
                    false,
                ),
                Op::Update { who, dataset } => {
                    let p = policy(&["health"], 20);
                    (
                        who,
                        TxBody::ConsentUpdate(ConsentUpdate { dataset, policy: p }),
                        0,
                        false,
                    )
                }
                Op::Revoke { who, dataset } => (
                    who,
                    TxBody::ConsentRevoke(ConsentRevoke { dataset }),
                    0,
                    false,
                ),
                Op::Task {
                    who,
                    mut datasets,
                    reward,
                    epsilon,
                } => {
                    datasets.dedup();
                    (
                        who,
                        task_create(datasets, "health", reward, epsilon),
                        0,
                        false,
                    )
                }
                Op::Cancel { who, task } => {
                    (who, TxBody::TaskCancel(TaskCancel { task }), 0, false)
                }
                Op::Model { who, task, parent } => (who, model_register(task, parent), 0, false),
                Op::BadNonce { who } => (who, transfer(outsider, 1), 3, false),
                Op::Coordinator { who, task, to } => (
                    who,
                    TxBody::TaskSetCoordinator(TaskSetCoordinator {
                        task,
                        coordinator: addr(&keys[to]),
                    }),
                    0,
                    false,
                ),
                Op::Commit { who, task } => (who, commit_validation(task), 0, false),
                Op::Open {
                    who,
                    task,
                    count,
                    epsilon,
                    tamper,
                } => (
                    coordinator_of(state, keys, task).unwrap_or(who),
                    round_open(state, task, count, epsilon, tamper),
                    0,
                    false,
                ),
                Op::Result {
                    who,
                    task,
                    keep,
                    score,
                } => (
                    coordinator_of(state, keys, task).unwrap_or(who),
                    round_result(state, task, keep, score),
                    0,
                    false,
                ),
                Op::Close {
                    who,
                    task,
                    good_reveal,
                } => (who, task_close(task, good_reveal), 0, false),
                Op::Expire { who, task } => {
                    let round = state.task(task).map_or(1, |t| t.rounds_opened().max(1));
                    (
                        who,
                        TxBody::RoundExpire(RoundExpire { task, round }),
                        0,
                        false,
                    )
                }
                Op::BadSig { who } => (who, transfer(outsider, 1), 0, true),
            };
            let nonce = state.account(&addr(&keys[who])).nonce + pending[who] + nonce_skew;
            if nonce_skew == 0 && !corrupt {
                pending[who] += 1;
            }
            let mut tx = sign(&keys[who], nonce, 1 + (who as u128), body);
            if corrupt {
                tx.signature[10] ^= 0x40;
            }
            tx
        })
        .collect()
}

const SALT: Digest = Digest([0x5A; 32]);
const VALIDATION: Digest = Digest([0x7B; 32]);

fn commit_validation(task: u64) -> TxBody {
    TxBody::TaskCommitValidation(TaskCommitValidation {
        task,
        commitment: validation_commitment(&SALT, &VALIDATION),
    })
}

fn coordinator_of(state: &State, keys: &[ed25519_dalek::SigningKey], task: u64) -> Option<usize> {
    let c = state.task(task)?.coordinator();
    keys.iter().position(|k| addr(k) == c)
}

fn round_open(state: &State, task: u64, count: usize, epsilon: u64, tamper: bool) -> TxBody {
    let mut selected = state
        .round_selection(task, count, epsilon)
        .unwrap_or_default();
    if tamper || selected.is_empty() {
        let other = (1..6).find(|d| !selected.contains(d)).unwrap_or(1);
        selected.push(other);
    }
    let n = selected.len() as u32;
    TxBody::RoundOpen(RoundOpen {
        task,
        round: state.task(task).map_or(1, |t| t.rounds_opened() + 1),
        global_model: Digest([1; 32]),
        selected,
        secagg: SecAggParams { n, k: n, t: 1 },
        epsilon,
        delta: 1_000,
        eligible: state
            .round_eligible(task, epsilon)
            .map_or(0, |e| e.len() as u32),
    })
}

fn round_result(state: &State, task: u64, keep: usize, score: u64) -> TxBody {
    let (round, selected) = state
        .task(task)
        .and_then(|t| t.open_round())
        .map_or((1, vec![1]), |r| (r.number, r.selected.clone()));
    let survivors: Vec<u64> = selected.into_iter().take(keep).collect();
    TxBody::RoundResult(RoundResult {
        task,
        round,
        masked_updates: survivors.iter().map(|d| Digest([*d as u8; 32])).collect(),
        scores: survivors
            .iter()
            .map(|&dataset| Score {
                dataset,
                value: score,
            })
            .collect(),
        survivors,
        unmasking: Digest([2; 32]),
        aggregate: Digest([3; 32]),
        new_model: Digest([4; 32]),
    })
}

fn task_close(task: u64, good_reveal: bool) -> TxBody {
    TxBody::TaskClose(TaskClose {
        task,
        validation_salt: if good_reveal { SALT } else { Digest([0; 32]) },
        validation_data: VALIDATION,
        parent: None,
        metrics: vec![],
    })
}

fn check_all_proofs(state: &State) {
    let root = state.root();
    let mut keys: Vec<StateKey> = vec![StateKey::Meta];
    keys.extend(state.accounts().map(|a| StateKey::Account(a.address)));
    keys.extend(state.datasets().map(|d| StateKey::Dataset(d.id)));
    keys.extend(state.tasks().map(|t| StateKey::Task(t.id)));
    keys.extend(state.models().map(|m| StateKey::Model(m.id)));
    for key in keys {
        let proof = state.prove(&key).unwrap();
        verify_proof(&root, &proof).unwrap();
        for tampered in tamperings(&proof) {
            assert!(
                verify_proof(&root, &tampered).is_err(),
                "tampered proof of {key} verified"
            );
        }
    }
    assert!(state.prove(&StateKey::Dataset(10_000)).is_none());
}

/// A snapshot restores to the same root, keeps behaving identically, and refuses tampering.
fn check_snapshot(state: &State, k: &[ed25519_dalek::SigningKey]) {
    let json = serde_json::to_string(&state.snapshot()).unwrap();
    let snap: Snapshot = serde_json::from_str(&json).unwrap();
    let mut restored = State::from_snapshot(snap.clone()).unwrap();
    assert_eq!(restored.root(), state.root());
    assert_eq!(restored.supply(), state.supply());
    // The commitment index is rebuilt, so a restarted node refuses the same duplicates.
    for d in state.datasets() {
        let owner = state.dataset_by_commitment(&d.commitment);
        assert!(owner.is_some_and(|id| id <= d.id));
        assert_eq!(restored.dataset_by_commitment(&d.commitment), owner);
    }
    let mut original = state.clone();
    let txs = build(
        &original,
        k,
        &[
            Op::Transfer {
                from: 1,
                to: 2,
                amount: 3,
            },
            Op::Unstake { who: 0, amount: 1 },
        ],
    );
    let blk = Block {
        height: original.height() + 3,
        proposer: addr(&k[3]),
        txs,
    };
    assert_eq!(original.apply_block(&blk), restored.apply_block(&blk));
    let mut tampered = snap.clone();
    tampered.accounts[0].balance += 1;
    assert!(matches!(
        State::from_snapshot(tampered),
        Err(SnapshotError::RootMismatch { .. })
    ));
    let mut reordered = snap;
    reordered.leaves.swap(1, 2);
    assert!(State::from_snapshot(reordered).is_err());
}

fn tamperings(p: &Proof) -> Vec<Proof> {
    let mut out = Vec::new();
    let mut v = p.clone();
    if v.value.is_empty() {
        v.value.push(0);
    } else {
        v.value[0] ^= 1;
    }
    out.push(v);
    let mut v = p.clone();
    v.value.push(0);
    out.push(v);
    if !p.digests.is_empty() {
        let mut v = p.clone();
        v.digests[0].0[5] ^= 0x10;
        out.push(v);
        let mut v = p.clone();
        v.digests.pop();
        out.push(v);
    }
    let mut v = p.clone();
    v.location = (v.location + 1) % v.leaves.max(1);
    if v.location != p.location {
        out.push(v);
    }
    let mut v = p.clone();
    v.leaves += 1;
    out.push(v);
    let mut v = p.clone();
    v.key = match p.key {
        StateKey::Account(mut a) => {
            a.0[0] ^= 1;
            StateKey::Account(a)
        }
        StateKey::Dataset(id) => StateKey::Task(id),
        StateKey::Task(id) => StateKey::Task(id + 1),
        StateKey::Model(id) => StateKey::Dataset(id),
        StateKey::Meta => StateKey::Dataset(0),
    };
    out.push(v);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn blocks_conserve_supply_and_replicas_agree(ops in blocks()) {
        let k = keys(ACCOUNTS);
        let mut a = state(&k);
        let mut b = state(&k);
        prop_assert_eq!(a.root(), b.root());
        let genesis_supply = a.supply().genesis;
        prop_assert_eq!(genesis_supply, FUNDS * ACCOUNTS as u128 + STAKE);
        for (i, block_ops) in ops.iter().enumerate() {
            let txs = build(&a, &k, block_ops);
            let blk = Block { height: a.height() + 1, proposer: addr(&k[i % ACCOUNTS]), txs };
            let root_before = a.root();
            let out_a = a.apply_block(&blk);
            let out_b = b.apply_block(&blk);
            prop_assert_eq!(&out_a, &out_b);
            prop_assert_eq!(a.root(), b.root());
            prop_assert_eq!(out_a.root, a.root());
            let s = a.supply();
            prop_assert_eq!(s.total, genesis_supply, "supply {:?}", s);
            prop_assert_eq!(s.balances + s.staked + s.unbonding + s.escrow, genesis_supply);
            let fees: u128 = out_a.receipts.iter().map(|r| r.fee_paid).sum();
            let applied = out_a.receipts.iter().filter(|r| r.is_ok()).count();
            if applied == 0 && out_a.events.is_empty() {
                prop_assert_eq!(a.root(), root_before, "nothing applied yet root moved");
            }
            if applied > 0 {
                prop_assert_ne!(a.root(), root_before, "applied txs left root unchanged");
                prop_assert!(fees > 0);
            }
            for (tx, r) in blk.txs.iter().zip(&out_a.receipts) {
                prop_assert_eq!(r.tx_id, tx.id());
            }
        }
        check_all_proofs(&a);
        check_snapshot(&a, &k);
    }

    #[test]
    fn batch_verification_equals_one_by_one(bad in prop::collection::vec(any::<bool>(), 1..150)) {
        let k = keys(3);
        let txs: Vec<SignedTx> = bad.iter().enumerate().map(|(i, &bad)| {
            let mut tx = sign(&k[i % 3], i as u64, 1, transfer(Address([1; 32]), 1));
            if bad {
                tx.signature[i % 64] ^= 1 << (i % 8);
            }
            tx
        }).collect();
        let batch = verify_signatures(&txs);
        let single: Vec<bool> = txs.iter().map(|t| t.verify_signature().is_ok()).collect();
        prop_assert_eq!(&batch, &single);
        let expect: Vec<bool> = bad.iter().map(|b| !b).collect();
        prop_assert_eq!(batch, expect);
    }
}

#[test]
fn unbonding_returns_after_delay() {
    let k = keys(2);
    let mut s = state(&k);
    let v = addr(&k[0]);
    ok(
        &mut s,
        sign(&k[0], 0, 1, TxBody::Unstake(Unstake { amount: 2_000 })),
    );
    let entry = s.account(&v).unbonding[0];
    assert_eq!(entry.release_height, 1 + 3);
    assert_eq!(s.account(&v).staked, STAKE - 2_000);
    block(&mut s, addr(&k[1]), vec![]);
    block(&mut s, addr(&k[1]), vec![]);
    assert_eq!(s.account(&v).unbonding.len(), 1, "released early");
    let before = s.account(&v).balance;
    let out = block(&mut s, addr(&k[1]), vec![]);
    assert_eq!(s.height(), 4);
    assert!(s.account(&v).unbonding.is_empty());
    assert_eq!(s.account(&v).balance, before + 2_000);
    assert_eq!(
        out.events,
        vec![Event::Unbonded {
            account: v,
            amount: 2_000
        }]
    );
    assert_eq!(s.supply().total, s.supply().genesis);
}

#[test]
fn task_lifecycle_records_history_and_lineage() {
    let k = keys(3);
    let mut s = state(&k);
    ok(
        &mut s,
        sign(&k[1], 0, 1, dataset_register(1, policy(&["health"], 100))),
    );
    ok(
        &mut s,
        sign(
            &k[2],
            0,
            1,
            task_create(vec![1], "health", 5_000, EPSILON_SCALE),
        ),
    );
    assert_eq!(s.account(&addr(&k[2])).balance, FUNDS - 5_001);
    assert_eq!(s.supply().escrow, 5_000);
    ok(&mut s, sign(&k[2], 1, 1, model_register(1, None)));
    ok(&mut s, sign(&k[2], 2, 1, model_register(1, Some(1))));
    assert_eq!(s.model(2).unwrap().parent, Some(1));
    ok(
        &mut s,
        sign(&k[2], 3, 1, TxBody::TaskCancel(TaskCancel { task: 1 })),
    );
    let t = s.task(1).unwrap();
    assert_eq!((t.status, t.escrow), (TaskStatus::Cancelled, 0));
    assert_eq!(s.account(&addr(&k[2])).balance, FUNDS - 4);
    let kinds: Vec<&str> = s
        .dataset(1)
        .unwrap()
        .history
        .iter()
        .map(|h| match h.event {
            Event::DatasetRegistered { .. } => "registered",
            Event::DatasetSelected { .. } => "selected",
            Event::ModelRegistered { .. } => "model",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, vec!["registered", "selected", "model", "model"]);
    assert_eq!(s.task(1).unwrap().history.len(), 4);
    // The history root is the hash chain of the entries.
    let d = s.dataset(1).unwrap();
    let chained = d.history.iter().fold(Digest::default(), |h, e| e.chain(&h));
    assert_eq!(chained, d.history_root);
    ok(
        &mut s,
        sign(
            &k[1],
            1,
            1,
            TxBody::ConsentRevoke(ConsentRevoke { dataset: 1 }),
        ),
    );
    assert!(s.dataset(1).unwrap().revoked);
    check_all_proofs(&s);
}

#[test]
fn proof_value_decodes_to_the_account() {
    let k = keys(2);
    let s = state(&k);
    let a = addr(&k[1]);
    let proof = s.prove(&StateKey::Account(a)).unwrap();
    assert_eq!(proof.value, s.account(&a).leaf_value());
    let json = serde_json::to_string(&proof).unwrap();
    let back: Proof = serde_json::from_str(&json).unwrap();
    verify_proof(&s.root(), &back).unwrap();
    let other_root = Digest([3; 32]);
    assert!(verify_proof(&other_root, &proof).is_err());
}

#[test]
fn genesis_json_round_trip_and_checks() {
    let k = keys(2);
    let g = genesis(&k, test_params());
    let json = g.to_json();
    assert!(
        json.contains("\"amount\": \"1000000\""),
        "amounts are decimal strings: {json}"
    );
    let back = Genesis::from_json(&json).unwrap();
    assert_eq!(back, g);
    assert_eq!(
        State::from_genesis(&back).unwrap().root(),
        State::from_genesis(&g).unwrap().root()
    );
    let mut dup = g.clone();
    dup.balances.push(dup.balances[0]);
    assert!(matches!(
        State::from_genesis(&dup),
        Err(GenesisError::Duplicate(..))
    ));
    let mut overflow = g.clone();
    overflow.balances[0].1 = u128::MAX;
    assert!(matches!(
        State::from_genesis(&overflow),
        Err(GenesisError::SupplyOverflow)
    ));
    let mut chain = g;
    chain.chain_id = String::new();
    assert!(matches!(
        State::from_genesis(&chain),
        Err(GenesisError::ChainId { .. })
    ));
    let dev = Genesis::dev(addr(&k[0]), vec![addr(&k[1])]);
    let s = State::from_genesis(&dev).unwrap();
    assert_eq!(s.account(&addr(&k[0])).balance, 1_000_000 * TOKEN);
    assert_eq!(s.account(&addr(&k[1])).staked, 1_000 * TOKEN);
}

#[test]
fn batch_verification_handles_senders_that_are_not_curve_points() {
    let k = keys(2);
    let not_a_point = (0u8..=255)
        .map(|i| [i; 32])
        .find(|b| ed25519_dalek::VerifyingKey::from_bytes(b).is_err())
        .expect("some byte pattern is not a curve point");
    let mut txs: Vec<SignedTx> = (0..70)
        .map(|n| sign(&k[0], n, 1, transfer(addr(&k[1]), 1)))
        .collect();
    txs[3].tx.sender = Address(not_a_point);
    let got = verify_signatures(&txs);
    let want: Vec<bool> = (0..70).map(|i| i != 3).collect();
    assert_eq!(got, want);
    assert_eq!(
        txs[3].verify_signature().unwrap_err().code(),
        "bad_signature"
    );
}

#[test]
fn genesis_root_does_not_depend_on_list_order() {
    let k = keys(5);
    let g = genesis(&k, test_params());
    let mut reversed = g.clone();
    reversed.balances.reverse();
    let a = State::from_genesis(&g).unwrap();
    let b = State::from_genesis(&reversed).unwrap();
    assert_eq!(a.root(), b.root());
    let mut other = g;
    other.params.fee_min = 2;
    assert_ne!(
        State::from_genesis(&other).unwrap().root(),
        a.root(),
        "params are committed"
    );
}

#[test]
fn unbonding_entries_are_bounded() {
    let k = keys(2);
    let params = Params {
        unbonding_entries_max: 2,
        ..test_params()
    };
    let mut s = State::from_genesis(&genesis(&k, params)).unwrap();
    ok(
        &mut s,
        sign(&k[0], 0, 1, TxBody::Unstake(Unstake { amount: 1 })),
    );
    ok(
        &mut s,
        sign(&k[0], 1, 1, TxBody::Unstake(Unstake { amount: 1 })),
    );
    let out = block(
        &mut s,
        addr(&k[1]),
        vec![sign(&k[0], 2, 1, TxBody::Unstake(Unstake { amount: 1 }))],
    );
    assert_eq!(
        out.receipts[0].result.as_ref().unwrap_err().code(),
        "limit_exceeded"
    );
}
