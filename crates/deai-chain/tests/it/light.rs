//! Light clients: the finality a validator serves for a height certifies that height's state root
//! against the genesis validator set, and every forgery a lying validator could build from real
//! parts (another block under a real certificate, a rewritten root, a certificate of another chain
//! or set, a block of another height, a chain with a gap) is refused by name.
use crate::common::*;
use commonware_codec::Encode as _;
use commonware_cryptography::Signer as _;
use commonware_runtime::{Runner as _, Supervisor as _, deterministic};
use deai_chain::{
    Block, Finality,
    light::{LightError, Verifier},
};
use deai_ledger::{Address, Genesis};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

/// What four validators served: (height, finality, state root after that height), for the first
/// heights, and the genesis.
fn served() -> (Genesis, Vec<(u64, Finality, deai_ledger::Digest)>) {
    let runner = deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(11)
            .with_timeout(Some(Duration::from_secs(600))),
    );
    runner.start(|context| async move {
        let Linked {
            keys,
            genesis,
            oracle,
            ..
        } = linked_network(&context, 4, RELIABLE).await;
        let mut handles = Vec::new();
        for i in 0..4 {
            handles.push(
                start_validator(
                    context.child("validator"),
                    &oracle,
                    config(&genesis, &keys, i),
                )
                .await,
            );
        }
        let dev = dev_key();
        for nonce in 0..3 {
            let id = handles[0]
                .submit(transfer(&genesis, &dev, Address([9; 32]), 1, nonce))
                .await
                .unwrap();
            wait_finalized(&context, &handles[0], &[id], LIMIT).await;
        }
        wait_height(&context, &handles[3], 6, LIMIT).await;
        let mut served = Vec::new();
        for height in 1..=5 {
            // Any validator serves finality; the root is the one validator 0 applied.
            let finality = handles[3].finality(height).await.expect("finalized");
            let root = handles[0].block(height - 1).await.map_or_else(
                || deai_ledger::State::from_genesis(&genesis).unwrap().root(),
                |b| b.state_root,
            );
            served.push((height, finality, root));
        }
        assert!(
            handles[0].finality(0).await.is_none(),
            "genesis has no certificate"
        );
        assert!(
            handles[0].finality(10_000).await.is_none(),
            "a height not reached"
        );
        (genesis, served)
    })
}

/// Batch verification's coefficients (a test may seed them; a client draws them from the OS).
fn rng() -> commonware_utils::TestRng {
    commonware_utils::test_rng()
}

fn decode(bytes: &[u8], genesis: &Genesis) -> Block {
    use commonware_codec::Decode as _;
    let cfg = deai_chain::BlockCfg::from_params(&genesis.params);
    Block::decode_cfg(bytes.to_vec(), &cfg).expect("a block")
}

#[test]
fn a_served_finality_certifies_the_root_and_forgeries_are_refused() {
    let (genesis, served) = served();
    let verifier = Verifier::new(&genesis).unwrap();
    for (height, f, root_before) in &served {
        // Finality of block h certifies the root after h - 1.
        let certified = verifier
            .certified_root(&mut rng(), height - 1, &f.blocks, &f.finalization)
            .unwrap_or_else(|e| panic!("height {height}: {e}"));
        assert_eq!(certified, *root_before, "height {height}");
    }

    let (h, f, _) = &served[1];
    let block = decode(&f.blocks[0], &genesis);

    // The same block with another parent state root: a new digest the certificate does not name.
    let forged = Block::new(
        block.parent,
        block.height,
        block.proposer,
        deai_ledger::Digest([7; 32]),
        block.timestamp_ms,
        block.entropy,
        block.txs().to_vec(),
    );
    let err = verifier
        .certified_root(
            &mut rng(),
            h - 1,
            &[forged.encode().to_vec()],
            &f.finalization,
        )
        .unwrap_err();
    assert!(matches!(err, LightError::OtherBlock { .. }), "{err}");

    // Another real block under this certificate.
    let (_, other, _) = &served[2];
    let err = verifier
        .certified_root(&mut rng(), h - 1, &other.blocks, &f.finalization)
        .unwrap_err();
    assert!(matches!(err, LightError::OtherBlock { .. }), "{err}");

    // A real block and its certificate, offered for another height.
    let err = verifier
        .certified_root(&mut rng(), h + 3, &f.blocks, &f.finalization)
        .unwrap_err();
    assert_eq!(
        err,
        LightError::WrongHeight {
            want: h + 4,
            got: *h
        }
    );

    // The certificate, checked against another chain or another validator set.
    let mut other_chain = genesis.clone();
    other_chain.chain_id = "another-chain".into();
    let mut other_set = genesis.clone();
    other_set.validators = validator_keys(8)[4..]
        .iter()
        .map(|k| {
            (
                Address(k.public_key().as_ref().try_into().unwrap()),
                1_000 * deai_ledger::TOKEN,
            )
        })
        .collect();
    for genesis in [other_chain, other_set] {
        let err = Verifier::new(&genesis)
            .unwrap()
            .certified_root(&mut rng(), h - 1, &f.blocks, &f.finalization)
            .unwrap_err();
        assert!(matches!(err, LightError::BadSignatures { .. }), "{err}");
    }

    // A signature byte flipped.
    let mut bent = f.finalization.clone();
    let last = bent.len() - 1;
    bent[last] ^= 1;
    let err = verifier
        .certified_root(&mut rng(), h - 1, &f.blocks, &bent)
        .unwrap_err();
    assert!(
        matches!(
            err,
            LightError::BadSignatures { .. } | LightError::BadCertificate(_)
        ),
        "{err}"
    );

    // A chain up to a later certificate is followed; one with a gap is not.
    let (h4, f4, _) = &served[3];
    let (_, f2, _) = &served[2];
    let chain = [
        f.blocks[0].clone(),
        f2.blocks[0].clone(),
        f4.blocks[0].clone(),
    ];
    assert_eq!(
        verifier
            .certified_root(&mut rng(), h - 1, &chain, &f4.finalization)
            .unwrap(),
        served[1].2,
        "block {h} certified through block {h4}"
    );
    let gapped = [f.blocks[0].clone(), f4.blocks[0].clone()];
    let err = verifier
        .certified_root(&mut rng(), h - 1, &gapped, &f4.finalization)
        .unwrap_err();
    assert!(matches!(err, LightError::BrokenChain { .. }), "{err}");
    assert!(matches!(
        verifier
            .certified_root(&mut rng(), 0, &[], &f.finalization)
            .unwrap_err(),
        LightError::BadBlock(_)
    ));
    assert!(matches!(
        verifier
            .certified_root(&mut rng(), h - 1, &[vec![1, 2, 3]], &f.finalization)
            .unwrap_err(),
        LightError::BadBlock(_)
    ));
}
