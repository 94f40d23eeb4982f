//! Shared test vectors for clients in other languages (the Python client, `clients/python`):
//! one signed transaction of every kind (optional fields both ways), vouchers, query receipts
//! and their signed batch, key files and addresses, inclusion proofs of a small state (with
//! tampered ones that must fail), and a small quantized model with the engine's answers. Each
//! is written as the JSON the node's API uses beside its canonical bytes, so a client that
//! reproduces every vector byte for byte builds, signs and checks exactly what the ledger does.
//!
//! The vectors live in `clients/python/tests/vectors/*.json`, committed. This test rebuilds them
//! and fails when a file differs; `DEAI_WRITE_VECTORS=1 cargo test -p deai-ledger --test it
//! vectors` rewrites them (then commit the files). A new [`TxBody`] kind does not compile here
//! until [`kind_index`] names it, and then fails until [`bodies`] holds a vector of it.

use deai_ledger::payment::sign_receipts;
use deai_ledger::tx::Vote as VoteTx;
use deai_ledger::*;
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};
use std::path::PathBuf;

/// The chain id every vector signs for.
const CHAIN: &str = "deai-vectors";

/// Where the vector files live.
fn dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize()
        .unwrap_or(root)
        .join("clients/python/tests/vectors")
}

/// A deterministic key: its seed is 32 bytes of `n`.
fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn address(k: &SigningKey) -> Address {
    Address::from_key(&k.verifying_key())
}

/// Every kind, as an index in declaration order: exhaustive, so a new kind does not compile
/// until it is listed here (with the next index), and [`every_kind_has_a_vector`] then fails
/// until [`bodies`] holds one of it.
fn kind_index(body: &TxBody) -> usize {
    match body {
        TxBody::Transfer(_) => 0,
        TxBody::Stake(_) => 1,
        TxBody::Unstake(_) => 2,
        TxBody::DatasetRegister(_) => 3,
        TxBody::ConsentUpdate(_) => 4,
        TxBody::ConsentRevoke(_) => 5,
        TxBody::TaskCreate(_) => 6,
        TxBody::TaskCancel(_) => 7,
        TxBody::ModelRegister(_) => 8,
        TxBody::TaskSetCoordinator(_) => 9,
        TxBody::TaskCommitValidation(_) => 10,
        TxBody::RoundOpen(_) => 11,
        TxBody::RoundResult(_) => 12,
        TxBody::TaskClose(_) => 13,
        TxBody::RoundExpire(_) => 14,
        TxBody::ValidatorDeclare(_) => 15,
        TxBody::OfferCreate(_) => 16,
        TxBody::OfferUpdate(_) => 17,
        TxBody::OfferWithdraw(_) => 18,
        TxBody::ChannelOpen(_) => 19,
        TxBody::ChannelTopUp(_) => 20,
        TxBody::ChannelClaim(_) => 21,
        TxBody::ChannelClose(_) => 22,
        TxBody::ReceiptDispute(_) => 23,
        TxBody::RoundChallenge(_) => 24,
        TxBody::ChallengeVote(_) => 25,
        TxBody::Propose(_) => 26,
        TxBody::Vote(_) => 27,
        TxBody::Execute(_) => 28,
        TxBody::Delegate(_) => 29,
        TxBody::Undelegate(_) => 30,
    }
}

/// Number of kinds [`kind_index`] lists.
const KINDS: usize = 31;

fn policy_full() -> ConsentPolicy {
    ConsentPolicy {
        purposes: vec!["health".into(), "recherche médicale".into()],
        creators: Some(vec![address(&key(4)), Address([0xAB; 32])]),
        reward_min: 123_456_789_012_345_678_901_234_567,
        epsilon_max: 8 * EPSILON_SCALE,
        expiry_height: 1_000_000,
        epsilon_round_max: 500_000,
        noise_multiplier_min: 1_100_000,
        royalty_bps_min: 300,
    }
}

fn policy_open() -> ConsentPolicy {
    ConsentPolicy {
        purposes: vec![],
        creators: None,
        reward_min: 0,
        epsilon_max: 0,
        expiry_height: u64::MAX,
        epsilon_round_max: 0,
        noise_multiplier_min: 0,
        royalty_bps_min: 0,
    }
}

fn voucher(payer: &SigningKey, channel_id: u64, cumulative_amount: u128) -> SignedVoucher {
    Voucher {
        chain_id: CHAIN.into(),
        channel_id,
        cumulative_amount,
    }
    .sign(payer)
}

/// Three receipts of one offer and channel, signed by `provider` as one batch.
fn receipt_batch(provider: &SigningKey) -> Vec<SignedQueryReceipt> {
    let receipts = (0..3u8)
        .map(|i| QueryReceipt {
            chain_id: CHAIN.into(),
            offer_id: 7,
            channel_id: 9,
            sequence: 100 + u64::from(i),
            input_hash: Digest::hash(&[i; 64]),
            output: (0..12 + 4 * i).collect(),
            model_hash: Digest::hash(b"quantized model blob"),
            voucher_amount: 40 + u128::from(i),
        })
        .collect();
    sign_receipts(receipts, provider)
}

/// One body per kind (optional fields set and unset), each with a name and its signer.
fn bodies() -> Vec<(&'static str, u8, TxBody)> {
    use TxBody as B;
    let long_endpoint = format!("https://provider.example/{}", "x".repeat(140));
    vec![
        (
            "transfer",
            1,
            B::Transfer(Transfer {
                to: address(&key(2)),
                amount: u128::MAX,
            }),
        ),
        ("stake", 1, B::Stake(Stake { amount: 5_000 })),
        ("unstake", 1, B::Unstake(Unstake { amount: 1 })),
        (
            "dataset_register/full_policy",
            2,
            B::DatasetRegister(DatasetRegister {
                commitment: dataset_commitment(&Digest([1; 32]), &Digest::hash(b"data")),
                samples: 60_000,
                schema: "digits-8x8 ✓".into(),
                policy: policy_full(),
            }),
        ),
        (
            "dataset_register/open_policy",
            2,
            B::DatasetRegister(DatasetRegister {
                commitment: Digest([0; 32]),
                samples: 1,
                schema: String::new(),
                policy: policy_open(),
            }),
        ),
        (
            "consent_update",
            2,
            B::ConsentUpdate(ConsentUpdate {
                dataset: 3,
                policy: policy_full(),
            }),
        ),
        (
            "consent_revoke",
            2,
            B::ConsentRevoke(ConsentRevoke { dataset: u64::MAX }),
        ),
        (
            "task_create",
            3,
            B::TaskCreate(TaskCreate {
                purpose: "health".into(),
                model_spec: Digest::hash(b"mlp-64-10"),
                datasets: vec![1, 2, 300],
                rounds: 3,
                epsilon: 3 * EPSILON_SCALE,
                epsilon_schedule: vec![
                    EpsilonStep {
                        rounds: 1,
                        epsilon: 1_000_000,
                    },
                    EpsilonStep {
                        rounds: 3,
                        epsilon: 2_500_000,
                    },
                ],
                delta: 10_000_000,
                reward: 1_000 * TOKEN,
            }),
        ),
        ("task_cancel", 3, B::TaskCancel(TaskCancel { task: 4 })),
        (
            "model_register/parent",
            3,
            B::ModelRegister(ModelRegister {
                model_hash: Digest::hash(b"weights"),
                task: 4,
                parent: Some(2),
                metrics: vec![
                    Metric {
                        name: "accuracy".into(),
                        value: 973_100,
                    },
                    Metric {
                        name: "loss_delta".into(),
                        value: -1_250_000,
                    },
                ],
            }),
        ),
        (
            "model_register/no_parent",
            3,
            B::ModelRegister(ModelRegister {
                model_hash: Digest::hash(b"weights 2"),
                task: 4,
                parent: None,
                metrics: vec![],
            }),
        ),
        (
            "task_set_coordinator",
            3,
            B::TaskSetCoordinator(TaskSetCoordinator {
                task: 4,
                coordinator: address(&key(5)),
            }),
        ),
        (
            "task_commit_validation",
            3,
            B::TaskCommitValidation(TaskCommitValidation {
                task: 4,
                commitment: validation_commitment(&Digest([1; 32]), &Digest([2; 32])),
            }),
        ),
        (
            "round_open",
            5,
            B::RoundOpen(RoundOpen {
                task: 4,
                round: 2,
                global_model: Digest::hash(b"global"),
                count: 3,
                secagg: SecAggParams { n: 3, k: 3, t: 2 },
                delta: 1_000,
            }),
        ),
        (
            "round_result",
            5,
            B::RoundResult(RoundResult {
                task: 4,
                round: 2,
                masked_updates: vec![Digest([7; 32]), Digest([8; 32])],
                survivors: vec![1, 5],
                unmasking: Digest([9; 32]),
                aggregate: Digest([10; 32]),
                new_model: Digest([11; 32]),
                scores: vec![
                    Score {
                        dataset: 1,
                        value: SCORE_SCALE,
                    },
                    Score {
                        dataset: 5,
                        value: 0,
                    },
                ],
            }),
        ),
        (
            "task_close/parent",
            3,
            B::TaskClose(TaskClose {
                task: 4,
                validation_salt: Digest([1; 32]),
                validation_data: Digest([2; 32]),
                parent: Some(3),
                metrics: vec![Metric {
                    name: "accuracy".into(),
                    value: 900_000,
                }],
            }),
        ),
        (
            "task_close/no_parent",
            3,
            B::TaskClose(TaskClose {
                task: 4,
                validation_salt: Digest([3; 32]),
                validation_data: Digest([4; 32]),
                parent: None,
                metrics: vec![],
            }),
        ),
        (
            "round_expire",
            6,
            B::RoundExpire(RoundExpire { task: 4, round: 2 }),
        ),
        (
            "validator_declare/p2p",
            1,
            B::ValidatorDeclare(ValidatorDeclare::new(
                CHAIN,
                &address(&key(1)),
                &key(10),
                "10.0.0.1:7651".into(),
            )),
        ),
        (
            "validator_declare/no_p2p",
            1,
            B::ValidatorDeclare(ValidatorDeclare::new(
                CHAIN,
                &address(&key(1)),
                &key(11),
                String::new(),
            )),
        ),
        (
            "offer_create",
            7,
            B::OfferCreate(OfferCreate {
                model: 1,
                quant_hash: Digest::hash(b"quantized model blob"),
                ops: 2_368,
                price_per_query: 10,
                bond: 10 * TOKEN,
                endpoint: long_endpoint,
                royalty_bps: 250,
            }),
        ),
        (
            "offer_update/all",
            7,
            B::OfferUpdate(OfferUpdate {
                offer: 7,
                price_per_query: Some(u128::MAX),
                endpoint: Some("http://127.0.0.1:7000".into()),
                bond_top_up: 5,
            }),
        ),
        (
            "offer_update/none",
            7,
            B::OfferUpdate(OfferUpdate {
                offer: 7,
                price_per_query: None,
                endpoint: None,
                bond_top_up: 0,
            }),
        ),
        (
            "offer_withdraw",
            7,
            B::OfferWithdraw(OfferWithdraw { offer: 7 }),
        ),
        (
            "channel_open",
            8,
            B::ChannelOpen(ChannelOpen {
                offer: 7,
                deposit: 500,
                expiry_height: 90,
            }),
        ),
        (
            "channel_top_up",
            8,
            B::ChannelTopUp(ChannelTopUp {
                channel: 9,
                amount: 0,
                expiry_height: 95,
            }),
        ),
        (
            "channel_claim",
            7,
            B::ChannelClaim(ChannelClaim {
                channel: 9,
                voucher: voucher(&key(8), 9, 420),
            }),
        ),
        (
            "channel_close",
            8,
            B::ChannelClose(ChannelClose { channel: 9 }),
        ),
        (
            "receipt_dispute",
            8,
            B::ReceiptDispute(ReceiptDispute {
                receipt: receipt_batch(&key(7)).swap_remove(1),
                input: (0..64).collect(),
                model: (0..=255).collect(),
            }),
        ),
        (
            "round_challenge/group_sum",
            6,
            B::RoundChallenge(RoundChallenge {
                task: 4,
                round: 2,
                claim: Claim::GroupSum { group: 1 },
            }),
        ),
        (
            "round_challenge/aggregate",
            6,
            B::RoundChallenge(RoundChallenge {
                task: 4,
                round: 2,
                claim: Claim::Aggregate,
            }),
        ),
        (
            "round_challenge/model",
            6,
            B::RoundChallenge(RoundChallenge {
                task: 4,
                round: 2,
                claim: Claim::Model,
            }),
        ),
        (
            "round_challenge/score",
            6,
            B::RoundChallenge(RoundChallenge {
                task: 4,
                round: 3,
                claim: Claim::Score { group: u32::MAX },
            }),
        ),
        (
            "challenge_vote/upheld",
            1,
            B::ChallengeVote(ChallengeVote {
                task: 4,
                challenge: 1,
                upheld: true,
            }),
        ),
        (
            "challenge_vote/rejected",
            1,
            B::ChallengeVote(ChallengeVote {
                task: 4,
                challenge: 2,
                upheld: false,
            }),
        ),
        (
            "propose/param_change",
            1,
            B::Propose(Propose {
                kind: ProposalKind::ParamChange {
                    changes: vec![
                        ParamSet {
                            name: "task_epsilon_max".into(),
                            value: "4000000".into(),
                        },
                        ParamSet {
                            name: "fee_min".into(),
                            value: "2".into(),
                        },
                    ],
                },
                deposit: 100 * TOKEN,
                description: Digest::hash(b"why"),
            }),
        ),
        (
            "propose/block_dataset",
            1,
            B::Propose(Propose {
                kind: ProposalKind::Block {
                    target: BlockTarget::Dataset(3),
                    blocked: true,
                    reason: Digest::hash(b"reasons"),
                },
                deposit: 1,
                description: Digest([0; 32]),
            }),
        ),
        (
            "propose/block_model",
            1,
            B::Propose(Propose {
                kind: ProposalKind::Block {
                    target: BlockTarget::Model(1),
                    blocked: false,
                    reason: Digest([5; 32]),
                },
                deposit: 2,
                description: Digest([6; 32]),
            }),
        ),
        (
            "propose/block_offer",
            1,
            B::Propose(Propose {
                kind: ProposalKind::Block {
                    target: BlockTarget::Offer(2),
                    blocked: true,
                    reason: Digest([5; 32]),
                },
                deposit: 3,
                description: Digest([6; 32]),
            }),
        ),
        (
            "propose/block_validator",
            1,
            B::Propose(Propose {
                kind: ProposalKind::Block {
                    target: BlockTarget::Validator(address(&key(10))),
                    blocked: true,
                    reason: Digest([5; 32]),
                },
                deposit: 4,
                description: Digest([6; 32]),
            }),
        ),
        (
            "propose/treasury_spend",
            1,
            B::Propose(Propose {
                kind: ProposalKind::TreasurySpend {
                    to: address(&key(3)),
                    amount: 42 * TOKEN,
                },
                deposit: 100 * TOKEN,
                description: Digest::hash(b"grant"),
            }),
        ),
        (
            "vote/yes",
            1,
            B::Vote(VoteTx {
                proposal: 1,
                choice: Choice::Yes,
            }),
        ),
        (
            "vote/no",
            2,
            B::Vote(VoteTx {
                proposal: 1,
                choice: Choice::No,
            }),
        ),
        (
            "vote/abstain",
            3,
            B::Vote(VoteTx {
                proposal: 1,
                choice: Choice::Abstain,
            }),
        ),
        (
            "vote/veto",
            4,
            B::Vote(VoteTx {
                proposal: 1,
                choice: Choice::Veto,
            }),
        ),
        ("execute", 4, B::Execute(Execute { proposal: 1 })),
        (
            "delegate",
            4,
            B::Delegate(Delegate {
                validator: address(&key(1)),
                amount: 7 * TOKEN,
            }),
        ),
        (
            "undelegate",
            4,
            B::Undelegate(Undelegate {
                validator: address(&key(1)),
                amount: 3 * TOKEN,
            }),
        ),
    ]
}

/// The transaction vectors: each body signed with a nonce and fee that vary across them.
fn tx_vectors() -> Value {
    let txs: Vec<Value> = bodies()
        .into_iter()
        .enumerate()
        .map(|(i, (name, seed, body))| {
            let signer = key(seed);
            let i = i as u64;
            let tx = Tx {
                chain_id: CHAIN.into(),
                sender: address(&signer),
                nonce: if i == 0 { u64::MAX } else { i * 1_000 + i },
                fee: if i == 1 {
                    u128::MAX
                } else {
                    u128::from(i) * 7 + 1
                },
                body,
            };
            let signed = SignedTx::sign(tx, &signer);
            signed.verify_signature().unwrap();
            json!({
                "name": name,
                "kind": serde_json::to_value(&signed.tx.body).unwrap()["type"],
                "tag": signed.tx.body.tag(),
                "signer_seed": hex::encode(signer.to_bytes()),
                "tx": signed,
                "signing_bytes": hex::encode(signed.tx.signing_bytes()),
                "encoded": hex::encode(signed.encode()),
                "id": signed.id().to_string(),
            })
        })
        .collect();
    json!({
        "about": "One signed transaction of every kind; generated by crates/deai-ledger/tests/it/vectors.rs. Do not edit: run DEAI_WRITE_VECTORS=1 cargo test -p deai-ledger --test it vectors.",
        "chain_id": CHAIN,
        "signing_domain": String::from_utf8(tx::SIGNING_DOMAIN.to_vec()).unwrap(),
        "possession_domain": String::from_utf8(tx::POSSESSION_DOMAIN.to_vec()).unwrap(),
        "kinds": KINDS,
        "txs": txs,
    })
}

/// Vouchers, a signed receipt batch and its `SignedLeaves`.
fn payment_vectors() -> Value {
    let payer = key(8);
    let vouchers: Vec<Value> = [(9u64, 1u128), (9, 420), (u64::MAX, u128::MAX)]
        .into_iter()
        .map(|(channel, amount)| {
            let v = voucher(&payer, channel, amount);
            v.verify(&address(&payer)).unwrap();
            json!({
                "signer_seed": hex::encode(payer.to_bytes()),
                "voucher": v,
                "signing_bytes": hex::encode(v.voucher.signing_bytes()),
                "encoded": hex::encode(v.encode()),
            })
        })
        .collect();
    let provider = key(7);
    let batch = receipt_batch(&provider);
    let receipts: Vec<Value> = batch
        .iter()
        .map(|r| {
            r.verify(&address(&provider)).unwrap();
            json!({
                "receipt": r,
                "signing_bytes": hex::encode(r.receipt.signing_bytes()),
                "leaf": r.receipt.leaf().to_string(),
                "encoded": hex::encode(r.encode()),
            })
        })
        .collect();
    let leaves: Vec<Digest> = batch.iter().map(|r| r.receipt.leaf()).collect();
    let signed = SignedLeaves::sign(leaves.clone(), &provider);
    let root = signed.verify(&address(&provider)).unwrap();
    // A lone receipt is a batch of one.
    let single = batch[0].receipt.clone().sign(&provider);
    json!({
        "about": "Vouchers and query receipts; generated by crates/deai-ledger/tests/it/vectors.rs. Do not edit: run DEAI_WRITE_VECTORS=1 cargo test -p deai-ledger --test it vectors.",
        "voucher_domain": String::from_utf8(payment::VOUCHER_DOMAIN.to_vec()).unwrap(),
        "receipt_domain": String::from_utf8(payment::RECEIPT_DOMAIN.to_vec()).unwrap(),
        "vouchers": vouchers,
        "provider_seed": hex::encode(provider.to_bytes()),
        "provider": address(&provider),
        "receipts": receipts,
        "signed_leaves": {
            "leaves": leaves,
            "root": root,
            "signature": hex::encode(signed.signature),
        },
        "single": {
            "receipt": single,
            "encoded": hex::encode(single.encode()),
        },
    })
}

/// A small seeded quantized model (what an offer serves), inputs for it and the engine's
/// outputs: lets a client's live test create an offer a provider node can serve, and check the
/// answers it buys.
fn model_vectors() -> Value {
    use deai_infer::{Arch, Input, QuantModel, infer};
    let arch = Arch::Mlp {
        inputs: 64,
        hidden: 16,
        classes: 10,
    };
    let model = QuantModel::seeded(arch, 7);
    let queries: Vec<Value> = (0..4u64)
        .map(|seed| {
            let input = Input::seeded(&model, seed);
            json!({
                "input": hex::encode(input.as_bytes()),
                "output": hex::encode(infer(&model, &input).to_bytes()),
            })
        })
        .collect();
    json!({
        "about": "A seeded quantized model and answers of deai_infer; generated by crates/deai-ledger/tests/it/vectors.rs. Do not edit: run DEAI_WRITE_VECTORS=1 cargo test -p deai-ledger --test it vectors.",
        "arch": arch.to_string(),
        "blob": hex::encode(model.encode()),
        "hash": hex::encode(model.hash()),
        "ops": model.ops(),
        "input_len": model.input_shape().len,
        "input_max": model.input_shape().max,
        "queries": queries,
    })
}

/// `deai_node::keyfile`'s file, fields in its order (the ledger cannot depend on the node).
#[derive(serde::Serialize)]
struct KeyFile {
    kind: &'static str,
    secret: String,
    public: String,
}

/// Seeds, their addresses and the key file `deai key new` writes for them
/// (`deai_node::keyfile`: pretty JSON of kind, secret, public, no trailing newline).
fn key_vectors() -> Value {
    let keys: Vec<Value> = [
        [0u8; 32],
        [1; 32],
        [0xFF; 32],
        *Digest::hash(b"seed").as_bytes(),
    ]
    .iter()
    .map(|seed| {
        let k = SigningKey::from_bytes(seed);
        let file = KeyFile {
            kind: "ed25519",
            secret: hex::encode(k.to_bytes()),
            public: hex::encode(k.verifying_key().to_bytes()),
        };
        json!({
            "seed": hex::encode(seed),
            "address": address(&k),
            "key_file": serde_json::to_string_pretty(&file).unwrap(),
            "signature_of_hello": hex::encode(
                ed25519_dalek::Signer::sign(&k, b"hello").to_bytes()
            ),
        })
    })
    .collect();
    json!({
        "about": "Keys and addresses; generated by crates/deai-ledger/tests/it/vectors.rs. Do not edit: run DEAI_WRITE_VECTORS=1 cargo test -p deai-ledger --test it vectors.",
        "keys": keys,
    })
}

/// A small state (genesis, then a block of transfers, a dataset and a stake) and a proof of
/// each of its entries, with tampered copies that must fail.
fn proof_vectors() -> Value {
    let dev = key(1);
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        balances: vec![(address(&dev), 1_000 * TOKEN), (address(&key(2)), TOKEN)],
        validators: vec![(address(&key(2)), 1_000 * TOKEN)],
        params: Params::default(),
    };
    let mut state = State::from_genesis(&genesis).unwrap();
    let sign = |nonce: u64, body: TxBody| {
        SignedTx::sign(
            Tx {
                chain_id: CHAIN.into(),
                sender: address(&dev),
                nonce,
                fee: 1,
                body,
            },
            &dev,
        )
    };
    let mut txs: Vec<SignedTx> = (0..6u8)
        .map(|i| {
            sign(
                u64::from(i),
                TxBody::Transfer(Transfer {
                    to: Address([0x40 + i; 32]),
                    amount: 1_000 + u128::from(i),
                }),
            )
        })
        .collect();
    txs.push(sign(
        6,
        TxBody::DatasetRegister(DatasetRegister {
            commitment: Digest::hash(b"proof data"),
            samples: 10,
            schema: "s".into(),
            policy: policy_full(),
        }),
    ));
    txs.push(sign(7, TxBody::Stake(Stake { amount: 77 })));
    let out = state.apply_block(&Block {
        height: 1,
        proposer: address(&key(2)),
        beacon: Digest::hash(b"beacon"),
        txs,
    });
    assert!(
        out.receipts.iter().all(Receipt::is_ok),
        "{:?}",
        out.receipts
    );
    let root = state.root();
    let mut keys = vec![
        StateKey::Meta,
        StateKey::Account(address(&dev)),
        StateKey::Account(address(&key(2))),
        StateKey::Dataset(1),
        StateKey::Epoch(0),
    ];
    keys.extend((0..6u8).map(|i| StateKey::Account(Address([0x40 + i; 32]))));
    let proofs: Vec<Proof> = keys
        .iter()
        .filter_map(|k| state.prove(k))
        .inspect(|p| verify_proof(&root, p).unwrap())
        .collect();
    assert!(
        proofs.len() >= 8,
        "the small state has {} entries",
        proofs.len()
    );
    let leaves = proofs[0].leaves;
    let tampered = tampered_proofs(&proofs[1]);
    for (why, p) in &tampered {
        assert!(verify_proof(&root, p).is_err(), "{why} must fail");
    }
    let entries: Vec<Value> = proofs
        .iter()
        .map(|p| match p.key {
            StateKey::Account(a) => json!({"kind": "account", "entry": state.account(&a)}),
            _ => Value::Null,
        })
        .collect();
    json!({
        "about": "Inclusion proofs of a small state; generated by crates/deai-ledger/tests/it/vectors.rs. Do not edit: run DEAI_WRITE_VECTORS=1 cargo test -p deai-ledger --test it vectors.",
        "root": root,
        "leaves": leaves,
        "proofs": proofs,
        "entries": entries,
        "tampered": tampered.iter().map(|(why, p)| json!({"why": why, "proof": p})).collect::<Vec<_>>(),
    })
}

/// Copies of `p` with one thing changed each.
fn tampered_proofs(p: &Proof) -> Vec<(&'static str, Proof)> {
    let mut value = p.clone();
    value.value[40] ^= 1;
    let mut digest = p.clone();
    digest.digests[0].0[0] ^= 0x80;
    let mut location = p.clone();
    location.location += 1;
    let mut leaves = p.clone();
    leaves.leaves += 1;
    let mut key = p.clone();
    key.key = StateKey::Account(Address([0x77; 32]));
    let mut short = p.clone();
    short.digests.pop();
    let mut long = p.clone();
    long.digests.push(Digest([0; 32]));
    vec![
        ("value", value),
        ("digest", digest),
        ("location", location),
        ("leaves", leaves),
        ("key", key),
        ("missing_digest", short),
        ("extra_digest", long),
    ]
}

/// Compares `value` with the committed file `name`, or rewrites it under `DEAI_WRITE_VECTORS=1`.
fn check_or_write(name: &str, value: &Value) {
    let path = dir().join(name);
    let text = serde_json::to_string_pretty(value).unwrap() + "\n";
    if std::env::var("DEAI_WRITE_VECTORS").as_deref() == Ok("1") {
        std::fs::create_dir_all(dir()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "{} differs from what the ledger produces now; run \
         DEAI_WRITE_VECTORS=1 cargo test -p deai-ledger --test it vectors and commit the files \
         (then run scripts/test-python.sh)",
        path.display()
    );
}

#[test]
fn every_kind_has_a_vector() {
    let mut seen = [false; KINDS];
    for (name, _, body) in bodies() {
        seen[kind_index(&body)] = true;
        assert_eq!(usize::from(body.tag()), kind_index(&body), "{name}");
    }
    let missing: Vec<usize> = (0..KINDS).filter(|&i| !seen[i]).collect();
    assert!(missing.is_empty(), "no vector for kinds {missing:?}");
}

#[test]
fn vectors_match_the_committed_files() {
    check_or_write("txs.json", &tx_vectors());
    check_or_write("payments.json", &payment_vectors());
    check_or_write("keys.json", &key_vectors());
    check_or_write("proofs.json", &proof_vectors());
    check_or_write("model.json", &model_vectors());
}
