//! Shared test harness: deterministic keys, a genesis funding them, and tx builders.
#![allow(dead_code)] // each test file uses a different subset of the helpers

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

/// Round deadline in the tests: a round opened at `h` may be expired from `h + 4`.
pub(crate) const ROUND_TIMEOUT: u64 = 3;

pub(crate) fn test_params() -> Params {
    Params {
        unbonding_delay_blocks: 3,
        round_timeout_blocks: ROUND_TIMEOUT,
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

pub(crate) fn task_create(datasets: Vec<u64>, purpose: &str, reward: u128, epsilon: u64) -> TxBody {
    TxBody::TaskCreate(TaskCreate {
        purpose: purpose.to_string(),
        model_spec: Digest::hash(b"mlp-64-10"),
        datasets,
        rounds: 5,
        epsilon,
        delta: 10_000_000, // 1e-5
        reward,
    })
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

/// Apply `txs` as the next block, proposed by `proposer`.
pub(crate) fn block(state: &mut State, proposer: Address, txs: Vec<SignedTx>) -> BlockOutcome {
    let height = state.height() + 1;
    state.apply_block(&Block {
        height,
        proposer,
        txs,
    })
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
