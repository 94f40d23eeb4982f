//! Property tests over random blocks of random (often failing) transactions:
//! supply is conserved by every block, replicas agree on roots and outcomes, ε accounting is
//! exact and within every budget and cap, a RoundOpen is admitted iff a block applies it (whatever
//! the beacon), every entry's inclusion proof verifies and tampered proofs fail, batch
//! verification equals one-by-one, and every validator set chosen is the one the stake rule names.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use crate::common::*;
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
    /// A registration whose commitment is one of four per account, so some repeat one, with
    /// random ε caps (a per-round cap above the total is refused).
    Register {
        who: usize,
        expiry: u64,
        data: u8,
        caps: (u64, u64),
    },
    /// New consent with random ε caps (some below what the dataset already spent).
    Update {
        who: usize,
        dataset: u64,
        caps: (u64, u64),
    },
    Revoke {
        who: usize,
        dataset: u64,
    },
    /// A task of a random ε schedule, budget at or above its last step (or, when `bad`, a
    /// schedule broken one of the ways TaskCreate refuses).
    Task {
        who: usize,
        datasets: Vec<u64>,
        reward: u128,
        schedule: Vec<(u32, u64)>,
        slack: u64,
        bad: Option<u8>,
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
    /// A RoundOpen sent by the task's coordinator (when it is one of the keys) asking for
    /// `count` datasets (0: as many as are eligible now, which a block may change).
    Open {
        who: usize,
        task: u64,
        count: u32,
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
    /// Declare one of three node keys (so accounts contend for some).
    Declare {
        who: usize,
        node: u8,
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
        2 => (who.clone(), 0u64..12, 0u8..4, caps())
            .prop_map(|(who, expiry, data, caps)| Op::Register { who, expiry, data, caps }),
        1 => (who.clone(), 0u64..5, caps()).prop_map(|(who, dataset, caps)| Op::Update { who, dataset, caps }),
        1 => (who.clone(), 0u64..5).prop_map(|(who, dataset)| Op::Revoke { who, dataset }),
        2 => (
            who.clone(),
            prop::collection::vec(0u64..5, 0..3),
            amount.clone(),
            prop::collection::vec((1u32..3, 0u64..2_000_000), 1..5),
            0u64..1_000_000,
            prop::option::weighted(0.1, 0u8..7),
        )
            .prop_map(|(who, datasets, reward, schedule, slack, bad)| Op::Task {
                who,
                datasets,
                reward,
                schedule,
                slack,
                bad,
            }),
        1 => (who.clone(), 0u64..4).prop_map(|(who, task)| Op::Cancel { who, task }),
        1 => (who.clone(), 0u64..4, prop::option::of(0u64..4))
            .prop_map(|(who, task, parent)| Op::Model { who, task, parent }),
        1 => (who.clone(), 1u64..4, 0..ACCOUNTS)
            .prop_map(|(who, task, to)| Op::Coordinator { who, task, to }),
        2 => (who.clone(), 1u64..4).prop_map(|(who, task)| Op::Commit { who, task }),
        6 => (who.clone(), 1u64..4, 0u32..5)
            .prop_map(|(who, task, count)| Op::Open { who, task, count }),
        4 => (who.clone(), 1u64..4, 0usize..4, 0u64..=SCORE_SCALE)
            .prop_map(|(who, task, keep, score)| Op::Result { who, task, keep, score }),
        2 => (who.clone(), 1u64..4, prop::bool::weighted(0.8))
            .prop_map(|(who, task, good_reveal)| Op::Close { who, task, good_reveal }),
        2 => (who.clone(), 1u64..4).prop_map(|(who, task)| Op::Expire { who, task }),
        1 => who.clone().prop_map(|who| Op::BadNonce { who }),
        1 => who.clone().prop_map(|who| Op::BadSig { who }),
        1 => (who, 0u8..3).prop_map(|(who, node)| Op::Declare { who, node }),
    ]
}

/// `(epsilon_max, epsilon_round_max)`: 0.5 to 10 ε, no per-round cap or 0.25 to 4 ε.
fn caps() -> impl Strategy<Value = (u64, u64)> {
    (
        500_000u64..10_000_000,
        prop_oneof![Just(0u64), 250_000u64..4_000_000],
    )
}

fn capped_policy(
    purposes: &[&str],
    expiry: u64,
    (epsilon_max, round_max): (u64, u64),
) -> ConsentPolicy {
    let mut p = policy(purposes, expiry);
    p.epsilon_max = epsilon_max;
    p.epsilon_round_max = round_max;
    p
}

/// A task over `datasets` whose schedule has steps `gap` rounds apart each adding `add` ε (the
/// first at least 1), its rounds those of the last step, its budget the last step's ε plus
/// `slack`; `bad` breaks it one of seven ways.
fn scheduled_task(
    datasets: Vec<u64>,
    reward: u128,
    steps: &[(u32, u64)],
    slack: u64,
    bad: Option<u8>,
) -> TxBody {
    let (mut rounds, mut epsilon) = (0u32, 0u64);
    let mut schedule: Vec<EpsilonStep> = steps
        .iter()
        .map(|&(gap, add)| {
            rounds += gap;
            epsilon = (epsilon + add).max(1);
            EpsilonStep { rounds, epsilon }
        })
        .collect();
    let mut t = task(datasets, "health", reward, epsilon + slack);
    t.rounds = rounds;
    match bad {
        Some(0) => schedule.clear(),
        Some(1) => schedule[0].epsilon = 0,
        Some(2) => schedule.insert(0, schedule[0]),
        Some(3) => t.rounds += 1,
        Some(4) => t.epsilon = epsilon - 1,
        Some(5) => {
            schedule.push(EpsilonStep {
                rounds: rounds + 1,
                epsilon: epsilon - 1,
            });
            t.rounds += 1;
        }
        Some(_) => schedule.insert(
            0,
            EpsilonStep {
                rounds: 0,
                epsilon: 1,
            },
        ),
        None => {}
    }
    t.epsilon_schedule = schedule;
    TxBody::TaskCreate(t)
}

fn blocks() -> impl Strategy<Value = Vec<Vec<Op>>> {
    prop::collection::vec(prop::collection::vec(op(), 0..10), 1..6)
}

/// A first block that makes rounds likely, and datasets' budgets run out: eight datasets (two
/// per account, ε max 3 to 6, random per-round caps, a quarter of them expiring within the
/// run), three tasks over random subsets of them with front-loaded schedules of at most 3 ε (so
/// every filter admits them), each with its validation committed.
fn setup() -> impl Strategy<Value = Vec<Op>> {
    let caps = (
        3_000_000u64..6_000_000,
        prop_oneof![Just(0u64), 250_000u64..2_000_000],
    );
    let expiry = prop_oneof![3 => Just(1_000u64), 1 => 2u64..9];
    let schedule = (
        500_000u64..1_500_000,
        prop::collection::vec((1u32..3, 0u64..400_000), 0..3),
    )
        .prop_map(|(first, rest)| {
            let mut steps = vec![(1, first)];
            steps.extend(rest);
            steps
        });
    let task = (
        0..ACCOUNTS,
        prop::collection::btree_set(1u64..9, 1..6),
        schedule,
        0u64..300_000,
    );
    (
        prop::collection::vec((caps, expiry), 8),
        prop::collection::vec(task, 3),
    )
        .prop_map(|(caps, tasks)| {
            let mut ops: Vec<Op> = caps
                .into_iter()
                .enumerate()
                .map(|(i, (caps, expiry))| Op::Register {
                    who: i % ACCOUNTS,
                    expiry,
                    data: (i / ACCOUNTS) as u8,
                    caps,
                })
                .collect();
            for (who, datasets, schedule, slack) in &tasks {
                ops.push(Op::Task {
                    who: *who,
                    datasets: datasets.iter().copied().collect(),
                    reward: 1_000,
                    schedule: schedule.clone(),
                    slack: *slack,
                    bad: None,
                });
            }
            for (task, (who, ..)) in tasks.iter().enumerate() {
                ops.push(Op::Commit {
                    who: *who,
                    task: task as u64 + 1,
                });
            }
            ops
        })
}

/// Random blocks, after the [`setup`] block three times in four.
fn scenario() -> impl Strategy<Value = Vec<Vec<Op>>> {
    (prop_oneof![1 => Just(Vec::new()), 3 => setup()], blocks()).prop_map(|(setup, mut blocks)| {
        if !setup.is_empty() {
            blocks.insert(0, setup);
        }
        blocks
    })
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
                Op::Declare { who, node } => {
                    let node = ed25519_dalek::SigningKey::from_bytes(&[0x80 + node; 32]);
                    let body = ValidatorDeclare::new(CHAIN, &target(who), &node, String::new());
                    (who, TxBody::ValidatorDeclare(body), 0, false)
                }
                Op::Unstake { who, amount } => (who, TxBody::Unstake(Unstake { amount }), 0, false),
                Op::Register {
                    who,
                    expiry,
                    data,
                    caps,
                } => (
                    who,
                    dataset_register(
                        who as u8 * 4 + data,
                        capped_policy(&["health", "ads"], expiry, caps),
                    ),
                    0,
                    false,
                ),
                Op::Update { who, dataset, caps } => {
                    let p = capped_policy(&["health"], 20, caps);
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
                    schedule,
                    slack,
                    bad,
                } => {
                    datasets.dedup();
                    (
                        who,
                        scheduled_task(datasets, reward, &schedule, slack, bad),
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
                Op::Open { who, task, count } => (
                    coordinator_of(state, keys, task).unwrap_or(who),
                    round_open(state, task, count),
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

fn round_open(state: &State, task: u64, count: u32) -> TxBody {
    let n = match count {
        0 => state.round_eligible(task).map_or(0, |e| e.len() as u32),
        n => n,
    };
    TxBody::RoundOpen(RoundOpen {
        task,
        round: state.task(task).map_or(1, |t| t.rounds_opened() + 1),
        global_model: Digest([1; 32]),
        count: n,
        secagg: SecAggParams { n, k: n, t: 1 },
        delta: 1_000,
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

/// A state whose validator sets change every four blocks, so random blocks cross boundaries.
fn short_epochs_state(k: &[ed25519_dalek::SigningKey]) -> State {
    let params = Params {
        epoch_blocks: 4,
        validators_max: 2,
        ..test_params()
    };
    State::from_genesis(&genesis(k, params)).unwrap()
}

/// A set chosen by the block from `pre` to `post` holds exactly the accounts the rule names:
/// declared keys with at least the minimum bonded in `post`, highest stake first, at most
/// `validators_max`, or the previous set carried over when none qualifies; earlier sets never
/// change.
fn check_validator_sets(pre: &State, post: &State) {
    let params = post.params();
    for e in 0..=params.epoch_of(pre.height()) + 1 {
        if let Some(before) = pre.validator_set(e) {
            assert_eq!(
                Some(before),
                post.validator_set(e),
                "epoch {e}'s set changed"
            );
        }
    }
    if !params.chooses_next_set(post.height()) {
        return;
    }
    let epoch = params.epoch_of(post.height()) + 1;
    let set = post.validator_set(epoch).expect("chosen");
    let mut want: Vec<(u128, Address, Address)> = post
        .accounts()
        .filter(|a| a.staked >= params.validator_stake_min)
        .filter_map(|a| a.validator.as_ref().map(|v| (a.staked, v.key, a.address)))
        .collect();
    want.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
    want.truncate(params.validators_max as usize);
    let got: Vec<(u128, Address, Address)> = set
        .members
        .iter()
        .map(|m| (m.stake, m.key, m.account))
        .collect();
    if want.is_empty() {
        let previous = post.validator_set(epoch - 1).expect("previous set");
        assert_eq!(
            set.members, previous.members,
            "an empty choice carries the set over"
        );
    } else {
        assert_eq!(got, want);
    }
}

fn check_all_proofs(state: &State) {
    let root = state.root();
    let mut keys: Vec<StateKey> = vec![StateKey::Meta];
    keys.extend(state.accounts().map(|a| StateKey::Account(a.address)));
    keys.extend(state.datasets().map(|d| StateKey::Dataset(d.id)));
    keys.extend(state.tasks().map(|t| StateKey::Task(t.id)));
    keys.extend(state.models().map(|m| StateKey::Model(m.id)));
    keys.extend(state.offers().map(|o| StateKey::Offer(o.id)));
    keys.extend(state.channels().map(|c| StateKey::Channel(c.id)));
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
    let height = original.height() + 3;
    let blk = Block {
        height,
        proposer: addr(&k[3]),
        beacon: beacon(height),
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
        StateKey::Epoch(e) => StateKey::Epoch(e + 1),
        StateKey::Offer(id) => StateKey::Channel(id),
        StateKey::Channel(id) => StateKey::Offer(id),
        StateKey::Proposal(id) => StateKey::Proposal(id + 1),
        StateKey::Blocked(t) => StateKey::Blocked(match t {
            deai_ledger::BlockTarget::Dataset(id) => deai_ledger::BlockTarget::Model(id),
            _ => deai_ledger::BlockTarget::Dataset(0),
        }),
        StateKey::Delegations(mut a) => {
            a.0[0] ^= 1;
            StateKey::Delegations(a)
        }
    };
    out.push(v);
    out
}

/// Every charge a block made stayed within a policy the dataset had during the block (the one
/// before it, or one a ConsentUpdate of the block set): its per-round cap for each charge, its
/// `epsilon_max` for the total.
fn check_charges_within_caps(pre: &State, post: &State, blk: &Block, out: &BlockOutcome) {
    for d in post.datasets() {
        let mut policies: Vec<&ConsentPolicy> =
            pre.dataset(d.id).map(|p| &p.policy).into_iter().collect();
        for (tx, r) in blk.txs.iter().zip(&out.receipts) {
            if let (Ok(()), TxBody::ConsentUpdate(u)) = (&r.result, &tx.tx.body)
                && u.dataset == d.id
            {
                policies.push(&u.policy);
            }
        }
        if policies.is_empty() {
            policies.push(&d.policy); // registered in this block
        }
        let before = pre.dataset(d.id).map_or(0, |p| p.epsilon_spent);
        if d.epsilon_spent > before {
            let max = policies.iter().map(|p| p.epsilon_max).max().unwrap();
            assert!(
                d.epsilon_spent <= max,
                "dataset {} spent {} > {max}",
                d.id,
                d.epsilon_spent
            );
        }
        let cap = policies
            .iter()
            .map(|p| {
                if p.epsilon_round_max == 0 {
                    u64::MAX
                } else {
                    p.epsilon_round_max
                }
            })
            .max()
            .unwrap();
        for t in post.tasks() {
            for (i, r) in t.round_log.iter().enumerate() {
                if r.opened_height != blk.height || !r.selected.contains(&d.id) {
                    continue;
                }
                let j = ref_participations_upto(&t.round_log[..=i], d.id);
                let charge = ref_cumulative(&t.epsilon_schedule, j).unwrap()
                    - ref_cumulative(&t.epsilon_schedule, j - 1).unwrap();
                assert!(
                    charge <= cap,
                    "dataset {} charged {charge} > cap {cap}",
                    d.id
                );
            }
        }
    }
}

fn ref_participations_upto(rounds: &[Round], id: u64) -> u32 {
    rounds.iter().filter(|r| r.selected.contains(&id)).count() as u32
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn blocks_conserve_supply_and_replicas_agree(ops in scenario()) {
        let k = keys(ACCOUNTS);
        let mut a = short_epochs_state(&k);
        let mut b = short_epochs_state(&k);
        prop_assert_eq!(a.root(), b.root());
        let genesis_supply = a.supply().genesis;
        prop_assert_eq!(genesis_supply, FUNDS * ACCOUNTS as u128 + STAKE);
        for (i, block_ops) in ops.iter().enumerate() {
            let txs = build(&a, &k, block_ops);
            let blk = next_block(&a, addr(&k[i % ACCOUNTS]), txs);
            let root_before = a.root();
            let pre = a.clone();
            let out_a = a.apply_block(&blk);
            let out_b = b.apply_block(&blk);
            prop_assert_eq!(&out_a, &out_b);
            prop_assert_eq!(a.root(), b.root());
            prop_assert_eq!(out_a.root, a.root());
            let s = a.supply();
            prop_assert_eq!(s.total, genesis_supply, "supply {:?}", s);
            // No offers or channels here: what tasks lock besides escrow is coordinator bonds
            // and challenge deposits.
            let locked: u128 = a.tasks().map(|t| t.locked()).sum();
            prop_assert_eq!(s.bonds, locked);
            prop_assert_eq!(s.balances + s.staked + s.unbonding + s.escrow + locked, genesis_supply);
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
            check_epsilon_accounting(&a);
            check_charges_within_caps(&pre, &a, &blk, &out_a);
            check_validator_sets(&pre, &a);
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

    /// The Action contract for RoundOpen, from random states: `check_tx` (no beacon) admits it
    /// iff a block applies it, with the same error otherwise, whatever the block's beacon; and
    /// when applied it draws `count` datasets from the eligible ones with that block's seed.
    #[test]
    fn round_open_is_admitted_iff_it_applies(ops in scenario(), count in 0u32..5, beacons in any::<([u8; 32], [u8; 32])>()) {
        let k = keys(ACCOUNTS);
        let mut s = state(&k);
        for (i, block_ops) in ops.iter().enumerate() {
            let txs = build(&s, &k, block_ops);
            let blk = next_block(&s, addr(&k[i % ACCOUNTS]), txs);
            s.apply_block(&blk);
        }
        for task in 1..=4u64 {
            let who = coordinator_of(&s, &k, task).unwrap_or(0);
            let tx = sign(&k[who], s.account(&addr(&k[who])).nonce, 1, round_open(&s, task, count));
            let admitted = s.check_tx(&tx);
            let eligible = s.round_eligible(task).ok();
            prop_assert_eq!(eligible.clone(), s.task(task).map(|_| ref_eligible(&s, task, s.height() + 1)));
            for b in [Digest(beacons.0), Digest(beacons.1)] {
                let mut applied = s.clone();
                let blk = Block { height: s.height() + 1, proposer: addr(&k[0]), beacon: b, txs: vec![tx.clone()] };
                let out = applied.apply_block(&blk);
                prop_assert_eq!(&admitted, &out.receipts[0].result);
                if admitted.is_ok() {
                    let r = applied.task(task).unwrap().round_log.last().unwrap().clone();
                    let eligible = eligible.clone().unwrap();
                    let TxBody::RoundOpen(o) = &tx.tx.body else { unreachable!() };
                    prop_assert_eq!(r.eligible as usize, eligible.len());
                    prop_assert_eq!(&r.selected, &select(&selection_seed(task, o.round, &b), &eligible, o.count as usize));
                    prop_assert_eq!(r.selected.len(), o.count as usize);
                    check_epsilon_accounting(&applied);
                } else {
                    prop_assert_eq!(applied.task(task), s.task(task));
                    prop_assert!(applied.datasets().eq(s.datasets()));
                }
            }
        }
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
    assert_eq!(
        s.account(&addr(&k[1])).balance,
        deai_ledger::VALIDATOR_DEV_BALANCE,
        "a validator can pay for its challenge votes"
    );
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
