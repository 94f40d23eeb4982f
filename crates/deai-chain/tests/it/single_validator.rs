//! One validator finalizes alone (n = 1) over the same code path as many, applies transfers,
//! reports statuses, receipts and roots, and resumes from durable storage after a restart.
use crate::common::*;
use commonware_cryptography::Signer as _;
use commonware_runtime::{Clock as _, Metrics as _, Runner as _, Supervisor as _, deterministic};
use deai_chain::{Handle, MempoolError, TxStatus};
use deai_ledger::{Address, Genesis};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// One validator on a fresh deterministic runtime seeded with `seed`; `test` gets the context,
/// the genesis, the validator's `block_idle_wait` and its handle.
fn one_validator<F, Fut>(seed: u64, test: F)
where
    F: FnOnce(Ctx, Genesis, Duration, Handle) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let runner = deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(120))),
    );
    runner.start(|context| async move {
        let keys = validator_keys(1);
        let genesis = genesis(&keys);
        let cfg = config(&genesis, &keys, 0);
        let idle = cfg.block_idle_wait;
        // Held to the end: the simulated network lives as long as its oracle.
        let oracle = network(&context, &cfg, vec![keys[0].public_key()]).await;
        let handle = start_validator(context.child("validator"), &oracle, cfg).await;
        test(context, genesis, idle, handle).await;
        drop(oracle);
    });
}

#[test]
fn one_validator_finalizes_transfers() {
    one_validator(1, |context, genesis, _, handle| async move {
        let dev = dev_key();
        let bob = Address([9u8; 32]);
        let mut ids = Vec::new();
        for nonce in 0..20 {
            ids.push(
                handle
                    .submit(transfer(&genesis, &dev, bob, 10, nonce))
                    .await
                    .unwrap(),
            );
        }
        // A replay of an admitted transaction is refused.
        let dup = handle.submit(transfer(&genesis, &dev, bob, 10, 0)).await;
        assert!(matches!(dup, Err(MempoolError::Pool(_))), "{dup:?}");
        assert!(matches!(
            handle.tx_status(&ids[0]).await,
            TxStatus::Pending | TxStatus::Finalized { .. }
        ));

        wait_finalized(&context, &handle, &ids, LIMIT).await;
        assert_eq!(handle.read_state(|s| s.account(&bob).balance), 200);
        assert_eq!(handle.read_state(|s| s.account(&address(&dev)).nonce), 20);
        let status = handle.status();
        assert_eq!(status.mempool_size, 0);
        assert_eq!(status.chain_id, genesis.chain_id);

        // Every block links to its parent, carries the parent's root, and its receipts match.
        let mut parent_root = None;
        for h in 1..=status.height {
            let block = handle.block(h).await.unwrap();
            if let Some(root) = parent_root {
                assert_eq!(block.parent_state_root, root, "block {h} parent root");
                assert_eq!(block.parent, handle.block(h - 1).await.unwrap().digest);
            }
            assert_eq!(block.receipts.len(), block.txs.len());
            parent_root = Some(block.state_root);
        }
        assert_eq!(parent_root, Some(status.state_root));
        let TxStatus::Finalized {
            height,
            index,
            receipt,
        } = handle.tx_status(&ids[7]).await
        else {
            panic!("finalized")
        };
        assert!(receipt.result.is_ok());
        assert_eq!(
            handle.block(height).await.unwrap().txs[index as usize].id(),
            ids[7]
        );

        // A transaction finalized already is refused with its height.
        let again = handle.submit(transfer(&genesis, &dev, bob, 10, 3)).await;
        assert!(
            matches!(again, Err(MempoolError::AlreadyFinalized { .. })),
            "{again:?}"
        );
        // A bad nonce is refused at admission.
        let stale = handle.submit(transfer(&genesis, &dev, bob, 11, 3)).await;
        assert!(stale.is_err());
        let metrics = handle.metrics();
        assert_eq!(metrics.finalized_txs_total, 20);
        assert!(metrics.finality_latency_count == 20);

        // The same counts are in the runtime's registry, beside consensus's own metrics.
        let text = context.encode();
        let sample = |line: &str| text.lines().any(|l| l == line);
        assert!(sample("validator_deai_finalized_txs_total 20"), "{text}");
        assert!(
            sample("validator_deai_finality_latency_ms_count 20"),
            "{text}"
        );
        assert!(
            sample(&format!("validator_deai_height {}", handle.height())),
            "{text}"
        );
        assert!(
            sample("# TYPE validator_deai_finality_latency_ms histogram"),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("validator_deai_rejected_txs_total{reason=")),
            "{text}"
        );
        assert!(text.contains("validator_consensus_"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    });
}

#[test]
fn idle_chain_produces_empty_blocks() {
    one_validator(2, |context, _, _, handle| async move {
        wait_height(&context, &handle, 3, LIMIT).await;
        let block = handle.block(3).await.unwrap();
        assert!(block.txs.is_empty());
        assert_eq!(
            block.parent_state_root,
            handle.block(2).await.unwrap().state_root
        );
    });
}

/// A transaction that cannot run yet (its nonce is ahead of its sender's) is not work for a
/// block: the leader still waits `block_idle_wait` between empty blocks instead of proposing as
/// fast as consensus allows (which took an idle chain from 2 to ~100 blocks a second).
#[test]
fn a_gapped_nonce_does_not_make_the_leader_spin() {
    one_validator(3, |context, genesis, idle, handle| async move {
        let dev = dev_key();
        wait_height(&context, &handle, 1, LIMIT).await;
        handle
            .submit(transfer(&genesis, &dev, Address([7; 32]), 1, 5))
            .await
            .expect("a gapped nonce is admitted");
        let start = handle.height();
        let span = Duration::from_secs(10);
        context.sleep(span).await;
        let blocks = handle.height() - start;
        let at_idle_pace = (span.as_millis() / idle.as_millis()) as u64;
        assert!(
            blocks <= at_idle_pace + 2,
            "{blocks} blocks in {span:?} with only a gapped transaction pending (idle pace {at_idle_pace})"
        );
        assert!(blocks >= 2, "the chain still advances: {blocks}");
    });
}

#[test]
fn restart_resumes_at_durable_height_and_root() {
    let keys = validator_keys(1);
    let genesis = genesis(&keys);
    let runner = deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(3)
            .with_timeout(Some(Duration::from_secs(120))),
    );
    let ((height, root, ids), checkpoint) = runner.start_and_recover({
        let (keys, genesis) = (keys.clone(), genesis.clone());
        |context| async move {
            let cfg = config(&genesis, &keys, 0);
            let oracle = network(&context, &cfg, vec![keys[0].public_key()]).await;
            let handle = start_validator(context.child("validator"), &oracle, cfg).await;
            let dev = dev_key();
            let mut ids = Vec::new();
            for nonce in 0..10 {
                ids.push(
                    handle
                        .submit(transfer(&genesis, &dev, Address([5; 32]), 1, nonce))
                        .await
                        .unwrap(),
                );
            }
            wait_finalized(&context, &handle, &ids, LIMIT).await;
            let status = handle.status();
            (status.height, status.state_root, ids)
        }
    });
    assert!(height >= 1);
    // Restart over the same storage: the journal replays to at least the same height, the
    // root at that height is the same, and the finalized transactions are all still there.
    let runner = deterministic::Runner::from(checkpoint);
    runner.start(|context| async move {
        let cfg = config(&genesis, &keys, 0);
        let oracle = network(&context, &cfg, vec![keys[0].public_key()]).await;
        let handle = start_validator(context.child("validator"), &oracle, cfg).await;
        assert!(
            handle.height() >= height,
            "resumed at {} < {height}",
            handle.height()
        );
        assert_eq!(handle.block(height).await.unwrap().state_root, root);
        for id in &ids {
            assert!(matches!(
                handle.tx_status(id).await,
                TxStatus::Finalized { .. }
            ));
        }
        // And it keeps finalizing on top.
        let next = handle.height() + 2;
        wait_height(&context, &handle, next, LIMIT).await;
        assert_eq!(handle.block(height).await.unwrap().state_root, root);
    });
}
