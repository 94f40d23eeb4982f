//! The validator set changes by stake at epoch boundaries, as five validator processes would see
//! it on Commonware's deterministic runtime: four genesis validators, one of which unbonds; a
//! fifth node that follows the chain from genesis, gets staked and declared, and becomes a
//! validator at the next boundary, proposes blocks there, and the one that left keeps following.
//! A light client that knows only genesis follows the set change and then accepts the new set's
//! certificates, and refuses them before.
use crate::common::*;
use commonware_codec::DecodeExt as _;
use commonware_cryptography::{Signer as _, ed25519};
use commonware_runtime::{Runner as _, Storage as _, deterministic};
use deai_chain::{Handle, light::LightError, light::Verifier};
use deai_ledger::{
    Address, Digest, Genesis, SignedTx, Stake, TOKEN, Tx, TxBody, Unstake, ValidatorDeclare,
};
use ed25519_dalek::SigningKey;
use std::time::Duration;

/// Blocks per epoch: the set of epoch 1 is chosen at height 10, epoch 1 spans heights 12..=23.
const E: u64 = 12;
const LIMIT: Duration = Duration::from_secs(300);

fn signed(genesis: &Genesis, from: &SigningKey, nonce: u64, body: TxBody) -> SignedTx {
    SignedTx::sign(
        Tx {
            chain_id: genesis.chain_id.clone(),
            sender: address(from),
            nonce,
            fee: genesis.params.fee_min.max(1),
            body,
        },
        from,
    )
}

/// Validator 0's key as an account key (its genesis stake is on its consensus key's address).
fn as_account(k: &ed25519::PrivateKey) -> SigningKey {
    use commonware_codec::Encode as _;
    let raw: [u8; 32] = k.encode()[..].try_into().expect("32-byte key");
    let key = SigningKey::from_bytes(&raw);
    assert_eq!(key.verifying_key().as_bytes(), k.public_key().as_ref());
    key
}

struct Outcome {
    chain: Vec<(u64, Digest, Digest)>,
    joined_proposed: usize,
}

fn scenario(seed: u64) -> Outcome {
    let runner = deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(900))),
    );
    runner.start(|context| async move {
        let mut keys = validator_keys(4);
        let joiner = SigningKey::from_bytes(&[44; 32]);
        keys.push(ed25519::PrivateKey::decode(joiner.to_bytes().to_vec()).expect("key"));
        let mut genesis = genesis(&keys[..4]);
        genesis.params.epoch_blocks = E;
        let peers: Vec<PublicKey> = keys.iter().map(|k| k.public_key()).collect();
        let oracle = network(&context, &config(&genesis, &keys, 0), peers.clone()).await;
        link_all(&oracle, &peers, RELIABLE).await;

        // Every node is configured with the genesis validators; the fifth is not one of them.
        let node_config = |i: usize| {
            let mut cfg = config(&genesis, &keys[..4], i.min(3));
            cfg.signer = keys[i].clone();
            cfg.partition_prefix = format!("validator{i}");
            cfg
        };
        let mut handles: Vec<Handle> = Vec::new();
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (handle, task) = spawn_validator(&context, &oracle, node_config(i)).await;
            handles.push(handle);
            tasks.push(task);
        }

        // The dev account stakes and declares the fifth node's key; validator 0 unbonds.
        let dev = dev_key();
        let v0 = as_account(&keys[0]);
        let declare = ValidatorDeclare::new(
            &genesis.chain_id,
            &address(&dev),
            &joiner,
            "127.0.0.1:3000".into(),
        );
        let ids = vec![
            handles[1]
                .submit(signed(
                    &genesis,
                    &dev,
                    0,
                    TxBody::Stake(Stake {
                        amount: 2_000 * TOKEN,
                    }),
                ))
                .await
                .unwrap(),
            handles[2]
                .submit(signed(&genesis, &dev, 1, TxBody::ValidatorDeclare(declare)))
                .await
                .unwrap(),
            handles[3]
                .submit(transfer(&genesis, &dev, address(&v0), TOKEN, 2))
                .await
                .unwrap(),
        ];
        wait_finalized(&context, &handles[0], &ids, LIMIT).await;
        let unstake = handles[0]
            .submit(signed(
                &genesis,
                &v0,
                0,
                TxBody::Unstake(Unstake {
                    amount: 1_000 * TOKEN,
                }),
            ))
            .await
            .unwrap();
        wait_finalized(&context, &handles[0], &[unstake], LIMIT).await;
        let at = handles[0].height();
        assert!(
            at < E - 2,
            "set-up finished at height {at}, after the set of epoch 1 was chosen"
        );

        // Into epoch 2: every node, the one that left and the one that joined included.
        for h in &handles {
            wait_height(&context, h, 2 * E + 4, LIMIT).await;
        }
        // Entering epoch 2 deleted each signer's epoch-0 vote journal; epoch 1's, one epoch
        // behind, is kept until the next boundary.
        for i in 0..4 {
            let epoch0 = context.scan(&format!("validator{i}-consensus")).await;
            assert!(
                epoch0.as_ref().map_or(true, Vec::is_empty),
                "validator {i} kept its epoch-0 journal: {epoch0:?}"
            );
        }
        for i in 1..5 {
            let epoch1 = context.scan(&format!("validator{i}-consensus-1")).await;
            assert!(
                epoch1.as_ref().is_ok_and(|blobs| !blobs.is_empty()),
                "validator {i} has no epoch-1 journal: {epoch1:?}"
            );
        }
        let set1: Vec<Address> = handles[0].read_state(|s| {
            s.validator_set(1)
                .expect("chosen")
                .keys()
                .copied()
                .collect()
        });
        let mut want: Vec<Address> = keys[1..]
            .iter()
            .map(|k| Address(k.public_key().as_ref().try_into().unwrap()))
            .collect();
        want.sort();
        let mut got = set1.clone();
        got.sort();
        assert_eq!(
            got, want,
            "epoch 1: validators 1-3 and the joiner, not validator 0"
        );
        assert_eq!(set1[0], address(&joiner), "the joiner has the most stake");

        // The joiner led blocks of epochs 1 and 2, and their fees went to the dev account.
        let joined = address(&joiner);
        let mut joined_proposed = 0;
        for h in E..=2 * E + 4 {
            let b = handles[0].block(h).await.unwrap();
            if b.proposer == joined {
                joined_proposed += 1;
            }
            assert_ne!(
                b.proposer,
                address(&v0),
                "validator 0 proposed block {h} after leaving"
            );
        }
        assert_eq!(handles[4].read_state(|s| s.account(&joined).balance), 0);

        // Every node holds the same chain.
        let chain = same_chain(&handles).await;

        // A light client that knows genesis refuses epoch 1's certificates until it follows
        // the change, then accepts them; a change proven for another epoch is refused.
        let mut rng = commonware_utils::test_rng();
        let mut verifier = Verifier::new(&genesis).unwrap();
        let fin = handles[2].finality(E + 2).await.unwrap();
        assert!(matches!(
            verifier.certified_root(&mut rng, E + 1, &fin.blocks, &fin.finalization),
            Err(LightError::UnknownEpoch {
                epoch: 1,
                newest: 0
            })
        ));
        let change = handles[2].set_change(1).await.unwrap();
        let change2 = handles[2].set_change(2).await.unwrap();
        assert!(matches!(
            verifier.follow(
                &mut rng,
                &change2.set,
                &change2.proof,
                &change2.finality.blocks,
                &change2.finality.finalization
            ),
            Err(LightError::BadSetChange { epoch: 1, .. })
        ));
        let mut forged = change.set.clone();
        forged.members.pop();
        assert!(
            verifier
                .follow(
                    &mut rng,
                    &forged,
                    &change.proof,
                    &change.finality.blocks,
                    &change.finality.finalization
                )
                .is_err()
        );
        assert_eq!(
            verifier
                .follow(
                    &mut rng,
                    &change.set,
                    &change.proof,
                    &change.finality.blocks,
                    &change.finality.finalization
                )
                .unwrap(),
            1
        );
        let root = verifier
            .certified_root(&mut rng, E + 1, &fin.blocks, &fin.finalization)
            .unwrap();
        assert_eq!(root, handles[0].block(E + 1).await.unwrap().state_root);
        assert_eq!(
            verifier
                .follow(
                    &mut rng,
                    &change2.set,
                    &change2.proof,
                    &change2.finality.blocks,
                    &change2.finality.finalization
                )
                .unwrap(),
            2
        );

        Outcome {
            chain,
            joined_proposed,
        }
    })
}

#[test]
fn a_staked_declared_node_joins_and_an_unbonded_validator_leaves_at_the_boundary() {
    let outcome = scenario(11);
    assert!(outcome.chain.len() as u64 >= 2 * E + 4);
    assert!(
        outcome.joined_proposed > 0,
        "the joiner never led a block in epochs 1-2"
    );
    // Epoch changes replay exactly from the seed.
    assert_eq!(scenario(11).chain, outcome.chain);
}
