//! Mempool admission that costs the sender (issue 12, findings 2 and 3), on a running validator:
//! keys that cannot pay do not hold the pool, and what cannot run leaves it.
use crate::common::*;
use commonware_cryptography::Signer as _;
use commonware_runtime::{Clock as _, Runner as _, Supervisor as _, deterministic};
use deai_chain::{Config, Handle, TxStatus};
use deai_ledger::{
    Address, ConsentPolicy, DatasetRegister, Digest, Genesis, SignedTx, Tx, TxBody, TxId,
};
use ed25519_dalek::SigningKey;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// One validator whose genesis and config `tweak` adjusts, on a runtime seeded with `seed`.
fn one_validator_with<F, Fut>(seed: u64, tweak: impl FnOnce(&mut Genesis, &mut Config), test: F)
where
    F: FnOnce(Ctx, Genesis, Handle) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let runner = deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(300))),
    );
    runner.start(|context| async move {
        let keys = validator_keys(1);
        let mut genesis = genesis(&keys);
        let mut cfg = config(&genesis, &keys, 0);
        tweak(&mut genesis, &mut cfg);
        cfg.genesis = genesis.clone();
        let oracle = network(&context, &cfg, vec![keys[0].public_key()]).await;
        let handle = start_validator(context.child("validator"), &oracle, cfg).await;
        test(context, genesis, handle).await;
        drop(oracle);
    });
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn signed(genesis: &Genesis, from: &SigningKey, nonce: u64, fee: u128, body: TxBody) -> SignedTx {
    let tx = Tx {
        chain_id: genesis.chain_id.clone(),
        sender: address(from),
        nonce,
        fee,
        body,
    };
    SignedTx::sign(tx, from)
}

/// Waits until `id` is no longer pending; returns its status.
async fn settled(context: &Ctx, handle: &Handle, id: &TxId, limit: Duration) -> TxStatus {
    let step = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    loop {
        let status = handle.tx_status(id).await;
        if !matches!(status, TxStatus::Pending) {
            return status;
        }
        assert!(waited < limit, "{id} still pending after {limit:?}");
        context.sleep(step).await;
        waited += step;
    }
}

/// The attack at a small scale: never-funded keys send gapped nonces at a fee of 2^127
/// until the pool holds `mempool_txs_max` by the old rules (only stateless checks for a gapped
/// nonce). Then every honest transfer got `mempool_full`; now the attackers get nothing in and
/// the honest transfer is admitted and finalized.
#[test]
fn unfunded_keys_cannot_crowd_out_an_honest_transfer() {
    const POOL: usize = 40;
    one_validator_with(
        21,
        |_, cfg| cfg.mempool_txs_max = POOL,
        |context, genesis, handle| async move {
            let victim = Address([3; 32]);
            let mut refused = 0;
            for k in 0..(POOL / 4) as u8 {
                let attacker = key(100 + k);
                for nonce in 1..=4 {
                    let body = TxBody::Transfer(deai_ledger::Transfer {
                        to: victim,
                        amount: 1,
                    });
                    let tx = signed(&genesis, &attacker, nonce, 1 << 127, body);
                    if let Err(e) = handle.submit(tx).await {
                        assert_eq!(e.code(), "pending_unaffordable", "{e}");
                        refused += 1;
                    }
                }
            }
            // By the old rules the pool is now full of fees of 2^127.
            let honest = transfer(&genesis, &dev_key(), victim, 5, 0);
            let id = handle
                .submit(honest)
                .await
                .expect("an honest transfer is admitted");
            assert_eq!(refused, POOL, "every unfunded submission is refused");
            assert_eq!(handle.status().mempool_size, 1);
            wait_finalized(&context, &handle, &[id], LIMIT).await;
            assert_eq!(handle.read_state(|s| s.account(&victim).balance), 5);
            let rejected = handle.metrics().rejected_txs_by_code;
            assert_eq!(rejected.get("pending_unaffordable"), Some(&(POOL as u64)));
        },
    );
}

fn register(genesis: &Genesis, from: &SigningKey, nonce: u64, fee: u128) -> SignedTx {
    let body = TxBody::DatasetRegister(DatasetRegister {
        commitment: Digest([42; 32]),
        samples: 10,
        schema: "csv".into(),
        policy: ConsentPolicy {
            purposes: vec!["research".into()],
            creators: None,
            reward_min: 0,
            epsilon_max: 1,
            expiry_height: 1 << 40,
            epsilon_round_max: 0,
            noise_multiplier_min: 0,
            royalty_bps_min: 0,
        },
    });
    signed(genesis, from, nonce, fee, body)
}

/// A transaction that fails inside a block leaves its nonce unused (the ledger changes nothing
/// for it), so its sender's later nonces could never run: they stayed pending for ever (467 in
/// the run). Now they leave with `predecessor_failed` as soon as the block finalizes.
///
/// Two funded senders register the same dataset commitment at nonce 0; both pass admission,
/// and whichever runs second fails (`duplicate_commitment`). Blocks of one transaction each
/// keep every nonce 1 out of its sender's nonce-0 block.
#[test]
fn a_failed_transaction_does_not_strand_later_nonces() {
    let (alice, bob) = (dev_key(), key(50));
    one_validator_with(
        22,
        |genesis, _| {
            genesis.params.block_txs_max = 1;
            genesis
                .balances
                .push((address(&key(50)), 1_000_000_000_000));
        },
        |context, genesis, handle| async move {
            let fee = genesis.params.fee_min.max(1);
            let to = Address([4; 32]);
            let ids: Vec<TxId> = [
                register(&genesis, &alice, 0, fee + 2),
                register(&genesis, &bob, 0, fee + 1),
                transfer(&genesis, &alice, to, 1, 1),
                transfer(&genesis, &bob, to, 1, 1),
            ]
            .into_iter()
            .map(|tx| handle.submit_blocking(tx).unwrap())
            .collect();
            let mut failed_sender = None;
            for (i, id) in ids[..2].iter().enumerate() {
                let TxStatus::Finalized { receipt, .. } =
                    settled(&context, &handle, id, LIMIT).await
                else {
                    panic!("registration {i} was not finalized");
                };
                if let Err(e) = &receipt.result {
                    assert_eq!(e.code(), "duplicate_commitment");
                    assert!(failed_sender.replace(i).is_none(), "only one fails");
                }
            }
            let failed = failed_sender.expect("the second registration fails");
            let stranded = settled(&context, &handle, &ids[2 + failed], LIMIT).await;
            assert!(
                matches!(&stranded, TxStatus::Rejected { code, .. } if code == "predecessor_failed"),
                "{stranded:?}"
            );
            let other = settled(&context, &handle, &ids[3 - failed], LIMIT).await;
            assert!(matches!(other, TxStatus::Finalized { .. }), "{other:?}");
            assert_eq!(handle.status().mempool_size, 0);
            // The sender resubmits from its next nonce, and that runs.
            let sender = [&alice, &bob][failed];
            let again = transfer(&genesis, sender, to, 1, 0);
            let id = handle.submit(again).await.expect("resubmitted");
            wait_finalized(&context, &handle, &[id], LIMIT).await;
        },
    );
}

/// A gapped nonce that is never filled leaves after `mempool_expiry_blocks`, with a status that
/// says so.
#[test]
fn a_transaction_that_cannot_run_expires() {
    const EXPIRY: u64 = 4;
    one_validator_with(
        23,
        |_, cfg| cfg.mempool_expiry_blocks = EXPIRY,
        |context, genesis, handle| async move {
            let dev = dev_key();
            let to = Address([5; 32]);
            let gapped = handle
                .submit(transfer(&genesis, &dev, to, 1, 3))
                .await
                .expect("a funded gapped nonce is admitted");
            let at = handle.height();
            let status = settled(&context, &handle, &gapped, LIMIT).await;
            assert!(
                matches!(&status, TxStatus::Rejected { code, .. } if code == "expired"),
                "{status:?}"
            );
            assert!(handle.height() >= at + EXPIRY, "not before its expiry");
            assert_eq!(handle.status().mempool_size, 0);
        },
    );
}
