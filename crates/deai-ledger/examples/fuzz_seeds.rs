//! Write seed inputs for the fuzz targets: one encoded transaction per kind (`tx_decode`),
//! blocks of them from funded fuzz accounts (`block_decode`), and a signed voucher and query
//! receipt (`payment_decode`).
//! Run: `cargo run -p deai-ledger --example fuzz_seeds -- fuzz/corpus`

use deai_ledger::*;
use ed25519_dalek::SigningKey;
use std::path::PathBuf;

fn bodies() -> Vec<TxBody> {
    let policy = ConsentPolicy {
        purposes: vec!["health".into()],
        creators: None,
        reward_min: 1,
        epsilon_max: 10 * EPSILON_SCALE,
        expiry_height: 1_000,
        epsilon_round_max: 2 * EPSILON_SCALE,
        noise_multiplier_min: 1_100_000,
        royalty_bps_min: 0,
    };
    vec![
        TxBody::Transfer(Transfer {
            to: Address([1; 32]),
            amount: 5,
        }),
        TxBody::Stake(Stake { amount: 5 }),
        TxBody::Unstake(Unstake { amount: 5 }),
        TxBody::DatasetRegister(DatasetRegister {
            commitment: Digest([7; 32]),
            samples: 10,
            schema: "s".into(),
            policy: policy.clone(),
        }),
        TxBody::ConsentUpdate(ConsentUpdate { dataset: 1, policy }),
        TxBody::TaskCreate(TaskCreate {
            purpose: "health".into(),
            model_spec: Digest([8; 32]),
            datasets: vec![1],
            rounds: 1,
            epsilon: EPSILON_SCALE,
            epsilon_schedule: vec![EpsilonStep {
                rounds: 1,
                epsilon: EPSILON_SCALE,
            }],
            delta: 10,
            reward: 100,
        }),
        TxBody::ModelRegister(ModelRegister {
            model_hash: Digest([9; 32]),
            task: 1,
            parent: None,
            metrics: vec![Metric {
                name: "acc".into(),
                value: 1,
            }],
        }),
        TxBody::TaskSetCoordinator(TaskSetCoordinator {
            task: 1,
            coordinator: Address([0; 32]),
        }),
        TxBody::TaskCommitValidation(TaskCommitValidation {
            task: 1,
            commitment: validation_commitment(&Digest([1; 32]), &Digest([2; 32])),
        }),
        // The ledger draws the selection from the block's beacon; one dataset of one.
        TxBody::RoundOpen(RoundOpen {
            task: 1,
            round: 1,
            global_model: Digest([3; 32]),
            count: 1,
            secagg: SecAggParams { n: 1, k: 1, t: 1 },
            delta: 5,
        }),
        TxBody::RoundResult(RoundResult {
            task: 1,
            round: 1,
            masked_updates: vec![Digest([4; 32])],
            survivors: vec![1],
            unmasking: Digest([5; 32]),
            aggregate: Digest([6; 32]),
            new_model: Digest([7; 32]),
            scores: vec![Score {
                dataset: 1,
                value: SCORE_SCALE,
            }],
        }),
        TxBody::RoundExpire(RoundExpire { task: 1, round: 1 }),
        TxBody::TaskClose(TaskClose {
            task: 1,
            validation_salt: Digest([1; 32]),
            validation_data: Digest([2; 32]),
            parent: None,
            metrics: vec![],
        }),
        TxBody::TaskCancel(TaskCancel { task: 1 }),
        TxBody::ConsentRevoke(ConsentRevoke { dataset: 1 }),
        TxBody::ValidatorDeclare(ValidatorDeclare::new(
            "fuzz",
            &Address([0; 32]),
            &SigningKey::from_bytes(&[9; 32]),
            "127.0.0.1:7651".into(),
        )),
    ]
    .into_iter()
    .chain(market_bodies())
    .collect()
}

/// A signed voucher and a signed receipt, as the fuzz chain would see them.
fn payments() -> (SignedVoucher, SignedQueryReceipt) {
    let key = SigningKey::from_bytes(&[3; 32]);
    let voucher = Voucher {
        chain_id: "fuzz".into(),
        channel_id: 1,
        cumulative_amount: 50,
    }
    .sign(&key);
    let receipt = QueryReceipt {
        chain_id: "fuzz".into(),
        offer_id: 1,
        channel_id: 1,
        sequence: 0,
        input_hash: Digest::hash(&[1; 64]),
        output: [0u32.to_le_bytes(), 1u32.to_le_bytes(), 5i32.to_le_bytes()].concat(),
        model_hash: Digest([9; 32]),
        voucher_amount: 10,
    }
    .sign(&key);
    (voucher, receipt)
}

/// One body of each inference-market kind.
fn market_bodies() -> Vec<TxBody> {
    let (voucher, receipt) = payments();
    vec![
        TxBody::OfferCreate(OfferCreate {
            model: 1,
            quant_hash: Digest([9; 32]),
            ops: 1_000,
            price_per_query: 10,
            bond: OFFER_BOND_MIN_DEFAULT,
            endpoint: "http://127.0.0.1:7000".into(),
            royalty_bps: 100,
        }),
        TxBody::OfferUpdate(OfferUpdate {
            offer: 1,
            price_per_query: Some(11),
            endpoint: None,
            bond_top_up: 1,
        }),
        TxBody::ChannelOpen(ChannelOpen {
            offer: 1,
            deposit: 100,
            expiry_height: 50,
        }),
        TxBody::ChannelTopUp(ChannelTopUp {
            channel: 1,
            amount: 1,
            expiry_height: 60,
        }),
        TxBody::ChannelClaim(ChannelClaim {
            channel: 1,
            voucher,
        }),
        TxBody::ReceiptDispute(ReceiptDispute {
            receipt,
            input: vec![1; 64],
            model: b"deai-qm1".to_vec(),
        }),
        TxBody::ChannelClose(ChannelClose { channel: 1 }),
        TxBody::OfferWithdraw(OfferWithdraw { offer: 1 }),
    ]
}

/// `seed-all` against `block_decode`'s genesis reaches the end of the task lifecycle: the
/// RoundOpen draws its dataset from the beacon and the RoundResult closes the round.
fn check_seed_all(block: &Block) {
    let mut g = Genesis::dev(Address([0; 32]), vec![Address([1; 32])]);
    g.chain_id = "fuzz".into();
    g.balances.push((Address([2; 32]), 1_000_000));
    g.params.unbonding_delay_blocks = 1;
    let mut state = State::from_genesis(&g).expect("valid genesis");
    let out = state.apply_block_verified(block, &vec![true; block.txs.len()]);
    for (tx, r) in block.txs.iter().zip(&out.receipts) {
        let reached = matches!(tx.tx.body, TxBody::RoundOpen(_) | TxBody::RoundResult(_));
        assert!(!reached || r.is_ok(), "seed-all: {:?}", r.result);
    }
    let round = &state.task(1).expect("seed-all creates task 1").round_log[0];
    assert_eq!(round.selected, vec![1]);
}

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    let key = SigningKey::from_bytes(&[3; 32]);
    let txs: Vec<SignedTx> = bodies()
        .into_iter()
        .enumerate()
        .map(|(nonce, body)| {
            // The fuzz genesis funds Address([0; 32]); block_decode assumes valid signatures.
            let tx = Tx {
                chain_id: "fuzz".into(),
                sender: Address([0; 32]),
                nonce: nonce as u64,
                fee: 1,
                body,
            };
            SignedTx::sign(tx, &key)
        })
        .collect();
    let tx_dir = root.join("tx_decode");
    let block_dir = root.join("block_decode");
    let payment_dir = root.join("payment_decode");
    std::fs::create_dir_all(&tx_dir)?;
    std::fs::create_dir_all(&block_dir)?;
    std::fs::create_dir_all(&payment_dir)?;
    let (voucher, receipt) = payments();
    std::fs::write(payment_dir.join("seed-voucher"), voucher.encode())?;
    std::fs::write(payment_dir.join("seed-receipt"), receipt.encode())?;
    for (i, tx) in txs.iter().enumerate() {
        std::fs::write(tx_dir.join(format!("seed-{i}")), tx.encode())?;
    }
    let block = Block {
        height: 1,
        proposer: Address([1; 32]),
        beacon: Digest([0x42; 32]),
        txs: txs.clone(),
    };
    std::fs::write(block_dir.join("seed-all"), block.encode())?;
    check_seed_all(&block);
    for (i, tx) in txs.iter().enumerate() {
        let block = Block {
            height: 1,
            proposer: Address([1; 32]),
            beacon: Digest::hash(&(i as u64).to_be_bytes()),
            txs: vec![tx.clone()],
        };
        std::fs::write(block_dir.join(format!("seed-{i}")), block.encode())?;
    }
    println!("seeds written under {}", root.display());
    Ok(())
}
