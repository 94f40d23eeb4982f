//! Canonical encoding: round trips for every transaction kind, rejection of trailing bytes,
//! over-limit lengths, unknown tags, non-canonical varints and bad UTF-8.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use crate::common::*;
use deai_ledger::*;
use proptest::prelude::*;

fn all_bodies() -> Vec<TxBody> {
    let mut p = policy(&["health", "research"], 77);
    p.creators = Some(vec![Address([4; 32]), Address([5; 32])]);
    p.epsilon_round_max = 500_000;
    p.noise_multiplier_min = 1_100_000;
    p.royalty_bps_min = 300;
    vec![
        transfer(Address([1; 32]), u128::MAX),
        TxBody::Stake(Stake { amount: 5 }),
        TxBody::Unstake(Unstake { amount: 6 }),
        dataset_register(3, p.clone()),
        TxBody::ConsentUpdate(ConsentUpdate {
            dataset: 9,
            policy: p,
        }),
        TxBody::ConsentRevoke(ConsentRevoke { dataset: 9 }),
        task_create(vec![1, 2, 3], "health", 1_000, 1_500_000),
        TxBody::TaskCancel(TaskCancel { task: 4 }),
        model_register(4, Some(2)),
        model_register(4, None),
    ]
    .into_iter()
    .chain(lifecycle_bodies())
    .chain(market_bodies())
    .collect()
}

/// One body of each inference-market kind (issue 14), signed off-chain parts included.
fn market_bodies() -> Vec<TxBody> {
    let payer = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let voucher = Voucher {
        chain_id: CHAIN.into(),
        channel_id: 2,
        cumulative_amount: u128::MAX,
    }
    .sign(&payer);
    let receipt = QueryReceipt {
        chain_id: CHAIN.into(),
        offer_id: 1,
        channel_id: 2,
        sequence: 3,
        input_hash: Digest::hash(b"in"),
        output: vec![0, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0],
        model_hash: Digest::hash(b"blob"),
        voucher_amount: 40,
    }
    .sign(&payer);
    vec![
        TxBody::OfferCreate(OfferCreate {
            model: 1,
            quant_hash: Digest::hash(b"blob"),
            ops: 2_368,
            price_per_query: 10,
            bond: 1_000,
            endpoint: "http://127.0.0.1:7000/v1/infer/1".into(),
            royalty_bps: 250,
        }),
        TxBody::OfferUpdate(OfferUpdate {
            offer: 1,
            price_per_query: Some(12),
            endpoint: Some("http://h/".into()),
            bond_top_up: 5,
        }),
        TxBody::OfferUpdate(OfferUpdate {
            offer: 1,
            price_per_query: None,
            endpoint: None,
            bond_top_up: 0,
        }),
        TxBody::OfferWithdraw(OfferWithdraw { offer: 1 }),
        TxBody::ChannelOpen(ChannelOpen {
            offer: 1,
            deposit: 500,
            expiry_height: 90,
        }),
        TxBody::ChannelTopUp(ChannelTopUp {
            channel: 2,
            amount: 7,
            expiry_height: 95,
        }),
        TxBody::ChannelClaim(ChannelClaim {
            channel: 2,
            voucher,
        }),
        TxBody::ChannelClose(ChannelClose { channel: 2 }),
        TxBody::ReceiptDispute(ReceiptDispute {
            receipt,
            input: vec![1; 64],
            model: vec![2; 3_000],
        }),
    ]
}

#[test]
fn market_tags_are_fresh_and_a_dispute_may_exceed_the_common_bound() {
    let tags: Vec<u8> = market_bodies().iter().map(TxBody::tag).collect();
    assert_eq!(tags, vec![16, 17, 17, 18, 19, 20, 21, 22, 23]);
    let k = keys(1);
    let dispute = market_bodies().pop().unwrap();
    let tx = sign(&k[0], 0, 1, dispute);
    let params = Params {
        tx_bytes_max: 1_000,
        ..Params::default()
    };
    assert!(tx.encode().len() > 1_000);
    assert_eq!(SignedTx::decode(&tx.encode(), &params).unwrap(), tx);
    // Its carried bytes have bounds of their own.
    let tight = Params {
        dispute_model_bytes_max: 2_999,
        ..params.clone()
    };
    assert!(SignedTx::decode(&tx.encode(), &tight).is_err());
    // Any other kind of that size is refused by the decoder.
    let purposes: Vec<String> = (0..16).map(|i| format!("{i:-<60}")).collect();
    let refs: Vec<&str> = purposes.iter().map(String::as_str).collect();
    let big = sign(&k[0], 0, 1, dataset_register(1, policy(&refs, 9)));
    assert!(big.encode().len() > 1_000);
    assert!(SignedTx::decode(&big.encode(), &params).is_err());
    assert!(SignedTx::decode(&big.encode(), &Params::default()).is_ok());
}

fn lifecycle_bodies() -> Vec<TxBody> {
    vec![
        TxBody::TaskSetCoordinator(TaskSetCoordinator {
            task: 4,
            coordinator: Address([6; 32]),
        }),
        TxBody::TaskCommitValidation(TaskCommitValidation {
            task: 4,
            commitment: validation_commitment(&Digest([1; 32]), &Digest([2; 32])),
        }),
        TxBody::RoundOpen(RoundOpen {
            task: 4,
            round: 2,
            global_model: Digest([3; 32]),
            count: 3,
            secagg: SecAggParams { n: 3, k: 3, t: 2 },
            delta: 1_000,
        }),
        TxBody::RoundResult(RoundResult {
            task: 4,
            round: 2,
            masked_updates: vec![Digest([7; 32]), Digest([8; 32])],
            survivors: vec![1, 5],
            unmasking: Digest([9; 32]),
            aggregate: Digest([10; 32]),
            new_model: Digest([11; 32]),
            scores: vec![Score {
                dataset: 1,
                value: SCORE_SCALE,
            }],
        }),
        TxBody::TaskClose(TaskClose {
            task: 4,
            validation_salt: Digest([1; 32]),
            validation_data: Digest([2; 32]),
            parent: Some(3),
            metrics: vec![Metric {
                name: "accuracy".into(),
                value: 900_000,
            }],
        }),
        TxBody::RoundExpire(RoundExpire { task: 4, round: 2 }),
    ]
}

#[test]
fn lifecycle_tags_are_fresh_and_json_round_trips() {
    let tags: Vec<u8> = lifecycle_bodies().iter().map(TxBody::tag).collect();
    assert_eq!(tags, vec![9, 10, 11, 12, 13, 14]);
    for body in lifecycle_bodies() {
        let json = serde_json::to_string(&body).unwrap();
        let back: TxBody = serde_json::from_str(&json).unwrap();
        assert_eq!(back, body, "{json}");
    }
}

#[test]
fn issue_10_json_forms_and_older_documents() {
    let expire = TxBody::RoundExpire(RoundExpire { task: 4, round: 2 });
    assert_eq!(
        serde_json::to_value(&expire).unwrap(),
        serde_json::json!({"type": "round_expire", "task": 4, "round": 2})
    );
    // A policy, a round and parameters written before these fields existed still load.
    let old_policy = serde_json::json!({"purposes": ["health"], "creators": null,
        "reward_min": "0", "epsilon_max": 8_000_000, "expiry_height": 9});
    let p: ConsentPolicy = serde_json::from_value(old_policy).unwrap();
    assert_eq!((p.epsilon_round_max, p.noise_multiplier_min), (0, 0));
    let old_round = serde_json::json!({"number": 1, "opened_height": 2, "seed": Digest([1; 32]),
        "global_model": Digest([2; 32]), "selected": [1], "secagg": {"n": 1, "k": 1, "t": 1},
        "epsilon": 1, "delta": 1, "outcome": null});
    let r: Round = serde_json::from_value(old_round).unwrap();
    assert_eq!(
        (r.eligible, r.deadline_height, r.expired_height),
        (0, 0, None)
    );
    assert!(r.is_open());
    let mut params = serde_json::to_value(Params::default()).unwrap();
    params
        .as_object_mut()
        .unwrap()
        .remove("round_timeout_blocks");
    let params: Params = serde_json::from_value(params).unwrap();
    assert_eq!(params.round_timeout_blocks, ROUND_TIMEOUT_BLOCKS_DEFAULT);
    assert_eq!(NOISE_SCALE, 1_000_000);
}

fn limits() -> Params {
    Params::default()
}

#[test]
fn every_kind_round_trips_and_ids_differ() {
    let k = keys(1);
    let mut ids = std::collections::BTreeSet::new();
    for (i, body) in all_bodies().into_iter().enumerate() {
        let tx = sign(&k[0], i as u64, 7, body);
        let bytes = tx.encode();
        let back = SignedTx::decode(&bytes, &limits()).unwrap();
        assert_eq!(back, tx);
        assert_eq!(back.encode(), bytes);
        back.verify_signature().unwrap();
        assert!(ids.insert(tx.id()));
        // JSON round trip for the HTTP API.
        let json = serde_json::to_string(&tx).unwrap();
        assert_eq!(serde_json::from_str::<SignedTx>(&json).unwrap(), tx);
    }
}

#[test]
fn trailing_and_truncated_bytes_are_rejected() {
    let k = keys(1);
    let tx = sign(&k[0], 0, 1, transfer(Address([1; 32]), 5));
    let mut bytes = tx.encode();
    bytes.push(0);
    assert!(SignedTx::decode(&bytes, &limits()).is_err());
    bytes.pop();
    for cut in 0..bytes.len() {
        assert!(
            SignedTx::decode(&bytes[..cut], &limits()).is_err(),
            "prefix {cut} decoded"
        );
    }
}

#[test]
fn over_limit_lengths_are_rejected() {
    let k = keys(1);
    let many: Vec<&str> = vec!["p"; 17];
    let tx = sign(&k[0], 0, 1, dataset_register(1, policy(&many, 5)));
    let err = SignedTx::decode(&tx.encode(), &limits()).unwrap_err();
    assert!(err.to_string().contains("Length"), "{err}");
    let tight = Params {
        string_bytes_max: 5,
        ..limits()
    };
    let tx = sign(&k[0], 0, 1, dataset_register(1, policy(&["toolong"], 5)));
    assert!(SignedTx::decode(&tx.encode(), &tight).is_err());
    assert!(SignedTx::decode(&tx.encode(), &limits()).is_ok());
    // A length prefix claiming a huge list fails without allocating it.
    let mut bytes = vec![9u8]; // chain id length 9
    bytes.extend_from_slice(CHAIN.as_bytes());
    bytes.extend_from_slice(&[0; 32 + 8 + 16]);
    bytes.push(6); // TaskCreate
    bytes.extend_from_slice(&[0x01, b'x']); // purpose "x"
    bytes.extend_from_slice(&[0; 32]);
    bytes.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0x0F]); // 2^32-1 datasets
    assert!(SignedTx::decode(&bytes, &limits()).is_err());
}

#[test]
fn epsilon_schedules_round_trip_and_are_bounded_when_decoded() {
    let k = keys(1);
    let with_steps = |n: u32| {
        let mut t = task(vec![1], "health", 1_000, u64::from(n));
        t.rounds = n;
        t.epsilon_schedule = linear_schedule(n, u64::from(n));
        sign(&k[0], 0, 1, TxBody::TaskCreate(t))
    };
    let steps_max = EPSILON_SCHEDULE_STEPS_MAX as u32;
    let tx = with_steps(steps_max);
    let back = SignedTx::decode(&tx.encode(), &limits()).unwrap();
    assert_eq!(back, tx);
    let TxBody::TaskCreate(t) = &back.tx.body else {
        panic!("{back:?}")
    };
    assert_eq!(t.epsilon_schedule.len(), EPSILON_SCHEDULE_STEPS_MAX);
    // One step more is refused by the decoder, before any allocation of it.
    let tx = with_steps(steps_max + 1);
    assert!(tx.encode().len() < limits().tx_bytes_max as usize);
    let err = SignedTx::decode(&tx.encode(), &limits()).unwrap_err();
    assert!(err.to_string().contains("Length"), "{err}");
    // The schedule is encoded after ε: changing a step changes the bytes and the id.
    let a = with_steps(3);
    let mut b = a.tx.clone();
    if let TxBody::TaskCreate(t) = &mut b.body {
        t.epsilon_schedule[0].epsilon += 1;
    }
    let b = SignedTx::sign(b, &k[0]);
    assert_ne!(a.encode(), b.encode());
    assert_ne!(a.id(), b.id());
    // Its JSON form lists the steps.
    let json = serde_json::to_value(&a.tx.body).unwrap();
    assert_eq!(
        json["epsilon_schedule"],
        serde_json::json!([
            {"rounds": 1, "epsilon": 1},
            {"rounds": 2, "epsilon": 2},
            {"rounds": 3, "epsilon": 3}
        ])
    );
}

#[test]
fn unknown_tags_bad_utf8_and_non_canonical_varints_are_rejected() {
    let k = keys(1);
    let tx = sign(&k[0], 0, 1, TxBody::Stake(Stake { amount: 1 }));
    let bytes = tx.encode();
    let tag_at = 1 + CHAIN.len() + 32 + 8 + 16;
    let mut bad = bytes.clone();
    bad[tag_at] = 200;
    assert!(SignedTx::decode(&bad, &limits()).is_err());
    let mut bad = bytes.clone();
    bad[1] = 0xFF; // invalid UTF-8 in the chain id
    assert!(SignedTx::decode(&bad, &limits()).is_err());
    // Chain id length 9 written as the two-byte varint 0x89 0x00.
    let mut bad = vec![0x89, 0x00];
    bad.extend_from_slice(&bytes[1..]);
    assert!(SignedTx::decode(&bad, &limits()).is_err());
}

#[test]
fn blocks_round_trip_and_bound_their_tx_count() {
    let k = keys(2);
    let txs: Vec<_> = all_bodies()
        .into_iter()
        .enumerate()
        .map(|(i, b)| sign(&k[i % 2], i as u64, 1, b))
        .collect();
    let block = Block {
        height: 42,
        proposer: addr(&k[1]),
        beacon: Digest([0xBE; 32]),
        txs,
    };
    let bytes = block.encode();
    let back = Block::decode(&bytes, &limits()).unwrap();
    assert_eq!(back, block);
    assert_eq!(back.encode(), bytes);
    assert_eq!(back.digest(), block.digest());
    // height u64 || proposer || beacon || txs: the beacon is covered by the block's digest.
    assert_eq!(&bytes[8..40], &block.proposer.0);
    assert_eq!(&bytes[40..72], &[0xBE; 32]);
    let mut other = block.clone();
    other.beacon = Digest([0xBF; 32]);
    assert_ne!(other.digest(), block.digest());
    let empty = Block {
        txs: vec![],
        ..block.clone()
    };
    assert_eq!(empty.encode().len(), 8 + 32 + 32 + 1);
    let few = Params {
        block_txs_max: 3,
        ..limits()
    };
    assert!(Block::decode(&bytes, &few).is_err());
    let mut trailing = bytes;
    trailing.push(1);
    assert!(Block::decode(&trailing, &limits()).is_err());
}

#[test]
fn hex_types_parse_and_reject() {
    let a = Address([0xAB; 32]);
    assert_eq!(a.to_string().parse::<Address>().unwrap(), a);
    assert_eq!(format!("0x{a}").parse::<Address>().unwrap(), a);
    assert!("abc".parse::<Address>().is_err());
    assert!("zz".repeat(32).parse::<Digest>().is_err());
    assert_eq!(serde_json::to_string(&a).unwrap(), format!("\"{a}\""));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_transfers_round_trip(nonce in any::<u64>(), fee in any::<u128>(), amount in any::<u128>(), to in any::<[u8; 32]>()) {
        let k = keys(1);
        let tx = sign(&k[0], nonce, fee, transfer(Address(to), amount));
        let bytes = tx.encode();
        prop_assert_eq!(SignedTx::decode(&bytes, &limits()).unwrap(), tx);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(tx) = SignedTx::decode(&bytes, &limits()) {
            prop_assert_eq!(tx.encode(), bytes.clone());
        }
        if let Ok(b) = Block::decode(&bytes, &limits()) {
            prop_assert_eq!(b.encode(), bytes);
        }
    }
}
