//! Shared test harness: deterministic keys, a genesis funding them, and tx builders.

use deai_ledger::*;
use ed25519_dalek::SigningKey;

pub(crate) const CHAIN: &str = "deai-test";
pub(crate) const FUNDS: u128 = 1_000_000;
pub(crate) const STAKE: u128 = 5_000;

/// `n` deterministic signing keys.
pub(crate) fn keys(n: usize) -> Vec<SigningKey> {
    (0..n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            SigningKey::from_bytes(&seed)
        })
        .collect()
}

pub(crate) fn addr(k: &SigningKey) -> Address {
    Address::from_key(&k.verifying_key())
}

/// Every key funded with `FUNDS`; the first key is a validator with `STAKE`.
pub(crate) fn genesis(keys: &[SigningKey], params: Params) -> Genesis {
    Genesis {
        chain_id: CHAIN.to_string(),
        balances: keys.iter().map(|k| (addr(k), FUNDS)).collect(),
        validators: vec![(addr(&keys[0]), STAKE)],
        params,
    }
}

pub(crate) fn state(keys: &[SigningKey]) -> State {
    State::from_genesis(&genesis(keys, test_params())).expect("valid genesis")
}

/// What a coordinator locks per task in the tests (scaled to [`FUNDS`]).
pub(crate) const COORDINATOR_BOND: u128 = 1_000;
/// What a challenge locks in the tests.
pub(crate) const CHALLENGE_DEPOSIT: u128 = 100;

/// Round deadline in the tests: a round opened at `h` may be expired from `h + 4`.
pub(crate) const ROUND_TIMEOUT: u64 = 3;

pub(crate) fn test_params() -> Params {
    Params {
        unbonding_delay_blocks: 3,
        round_timeout_blocks: ROUND_TIMEOUT,
        validator_stake_min: STAKE,
        coordinator_bond: COORDINATOR_BOND,
        challenge_deposit: CHALLENGE_DEPOSIT,
        ..Params::default()
    }
}

pub(crate) fn sign(key: &SigningKey, nonce: u64, fee: u128, body: TxBody) -> SignedTx {
    SignedTx::sign(
        Tx {
            chain_id: CHAIN.to_string(),
            sender: addr(key),
            nonce,
            fee,
            body,
        },
        key,
    )
}

pub(crate) fn transfer(to: Address, amount: u128) -> TxBody {
    TxBody::Transfer(Transfer { to, amount })
}

pub(crate) fn policy(purposes: &[&str], expiry_height: u64) -> ConsentPolicy {
    ConsentPolicy {
        purposes: purposes.iter().map(|p| p.to_string()).collect(),
        creators: None,
        reward_min: 100,
        epsilon_max: 8 * EPSILON_SCALE,
        expiry_height,
        epsilon_round_max: 0,
        noise_multiplier_min: 0,
        royalty_bps_min: 0,
    }
}

pub(crate) fn dataset_register(tag: u8, policy: ConsentPolicy) -> TxBody {
    TxBody::DatasetRegister(DatasetRegister {
        commitment: Digest::hash(&[tag]),
        samples: 1_000,
        schema: "digits-8x8".to_string(),
        policy,
    })
}

/// Rounds of the tasks built by [`task`].
pub(crate) const TASK_ROUNDS: u32 = 5;

/// An ε schedule from `(rounds, cumulative ε)` pairs.
pub(crate) fn schedule(steps: &[(u32, u64)]) -> Vec<EpsilonStep> {
    steps
        .iter()
        .map(|&(rounds, epsilon)| EpsilonStep { rounds, epsilon })
        .collect()
}

/// One step per round, the cumulative ε growing evenly (rounded up) to `epsilon` at `rounds`:
/// valid for any `epsilon >= 1`.
pub(crate) fn linear_schedule(rounds: u32, epsilon: u64) -> Vec<EpsilonStep> {
    (1..=rounds)
        .map(|j| EpsilonStep {
            rounds: j,
            epsilon: (epsilon * u64::from(j)).div_ceil(u64::from(rounds)),
        })
        .collect()
}

/// A task of [`TASK_ROUNDS`] rounds with budget `epsilon` spread evenly over them.
pub(crate) fn task(datasets: Vec<u64>, purpose: &str, reward: u128, epsilon: u64) -> TaskCreate {
    TaskCreate {
        purpose: purpose.to_string(),
        model_spec: Digest::hash(b"mlp-64-10"),
        datasets,
        rounds: TASK_ROUNDS,
        epsilon,
        epsilon_schedule: linear_schedule(TASK_ROUNDS, epsilon),
        delta: 10_000_000, // 1e-5
        reward,
    }
}

pub(crate) fn task_create(datasets: Vec<u64>, purpose: &str, reward: u128, epsilon: u64) -> TxBody {
    TxBody::TaskCreate(task(datasets, purpose, reward, epsilon))
}

pub(crate) fn model_register(task: u64, parent: Option<u64>) -> TxBody {
    TxBody::ModelRegister(ModelRegister {
        model_hash: Digest::hash(&task.to_be_bytes()),
        task,
        parent,
        metrics: vec![Metric {
            name: "accuracy".to_string(),
            value: 973_100,
        }],
    })
}

/// The harness's block randomness at `height`: BLAKE3 of the height, so every block draws
/// differently.
pub(crate) fn beacon(height: u64) -> Digest {
    Digest::hash(&height.to_be_bytes())
}

/// The next block of `state` holding `txs`, proposed by `proposer`, with [`beacon`].
pub(crate) fn next_block(state: &State, proposer: Address, txs: Vec<SignedTx>) -> Block {
    let height = state.height() + 1;
    Block {
        height,
        proposer,
        beacon: beacon(height),
        txs,
    }
}

/// Apply `txs` as the next block, proposed by `proposer`.
pub(crate) fn block(state: &mut State, proposer: Address, txs: Vec<SignedTx>) -> BlockOutcome {
    let blk = next_block(state, proposer, txs);
    state.apply_block(&blk)
}

/// A beacon under which the next round of `task`, asking for `want.len()` datasets among
/// `eligible`, selects exactly `want` (sorted): lets a test choose the draw.
pub(crate) fn beacon_selecting(task: u64, round: u32, eligible: &[u64], want: &[u64]) -> Digest {
    (0u64..100_000)
        .map(|i| Digest::hash(&[b"pick".as_slice(), &i.to_be_bytes()].concat()))
        .find(|b| select(&selection_seed(task, round, b), eligible, want.len()) == want)
        .expect("some beacon draws the wanted selection")
}

/// Apply one tx that must succeed.
pub(crate) fn ok(state: &mut State, tx: SignedTx) -> BlockOutcome {
    let out = block(state, Address([0xEE; 32]), vec![tx]);
    assert!(
        out.receipts[0].is_ok(),
        "expected success, got {:?}",
        out.receipts[0].result
    );
    out
}

/// Reference model of the ε schedule, written from the spec rather than from `Task`'s methods:
/// a dataset's cumulative ε after `j` rounds of a task (0 for none, `None` past the last step).
pub(crate) fn ref_cumulative(schedule: &[EpsilonStep], j: u32) -> Option<u64> {
    if j == 0 {
        return Some(0);
    }
    schedule.iter().find(|s| s.rounds >= j).map(|s| s.epsilon)
}

/// In how many of `task`'s opened rounds `id` was selected.
pub(crate) fn ref_participations(task: &Task, id: u64) -> u32 {
    task.round_log
        .iter()
        .filter(|r| r.selected.contains(&id))
        .count() as u32
}

/// What selecting `id` in `task`'s next round charges it, `None` past the schedule.
pub(crate) fn ref_charge(task: &Task, id: u64) -> Option<u64> {
    let j = ref_participations(task, id);
    Some(
        ref_cumulative(&task.epsilon_schedule, j + 1)? - ref_cumulative(&task.epsilon_schedule, j)?,
    )
}

/// Reference model of eligibility: the datasets of `task`'s filter that a round opened at
/// `height` may select (live consent admitting the task, a next step, within the per-round cap
/// and the dataset's ε budget).
pub(crate) fn ref_eligible(s: &State, task: u64, height: u64) -> Vec<u64> {
    let Some(t) = s.task(task) else {
        return Vec::new();
    };
    let mut out: Vec<u64> = t
        .datasets
        .iter()
        .copied()
        .filter(|&id| {
            let Some(d) = s.dataset(id) else {
                return false;
            };
            let p = &d.policy;
            let admits = !d.revoked
                && height < p.expiry_height
                && p.purposes.contains(&t.purpose)
                && p.creators.as_ref().is_none_or(|c| c.contains(&t.creator))
                && t.reward >= p.reward_min
                && t.epsilon <= p.epsilon_max;
            let Some(charge) = ref_charge(t, id) else {
                return false;
            };
            admits
                && (p.epsilon_round_max == 0 || charge <= p.epsilon_round_max)
                && d.epsilon_spent + charge <= p.epsilon_max
        })
        .collect();
    out.sort_unstable();
    out
}

/// Every dataset's ε is exactly what the schedules of the tasks it took part in charge for its
/// participations, and every task's ε is that of its most-used dataset, the sum of its rounds',
/// within its budget.
pub(crate) fn check_epsilon_accounting(s: &State) {
    for d in s.datasets() {
        let owed: u64 = s
            .tasks()
            .map(|t| ref_cumulative(&t.epsilon_schedule, ref_participations(t, d.id)).unwrap())
            .sum();
        assert_eq!(d.epsilon_spent, owed, "dataset {} ε", d.id);
    }
    for t in s.tasks() {
        let most = t
            .datasets
            .iter()
            .map(|&id| ref_cumulative(&t.epsilon_schedule, ref_participations(t, id)).unwrap())
            .max()
            .unwrap_or(0);
        assert_eq!(t.epsilon_spent, most, "task {} ε", t.id);
        assert_eq!(
            t.epsilon_spent,
            t.round_log.iter().map(|r| r.epsilon).sum::<u64>()
        );
        assert!(t.epsilon_spent <= t.epsilon, "task {} over budget", t.id);
        assert!(t.delta_spent <= t.delta);
        for r in &t.round_log {
            assert!(r.selected.len() <= r.eligible as usize);
            assert!(r.selected.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
