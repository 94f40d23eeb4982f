//! Four validators on Commonware's deterministic runtime and simulated network, with lossy
//! links and one validator crashed then restarted, finalize the same blocks with the same state
//! roots; the same seed gives the same chain.
use crate::common::*;
use commonware_p2p::simulated::Link;
use commonware_runtime::{Clock as _, Runner as _, deterministic};
use commonware_utils::probability;
use deai_ledger::{Address, Digest};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

const LOSSY: Link = Link {
    latency: Duration::from_millis(20),
    jitter: Duration::from_millis(5),
    success_rate: probability!(0.9),
};

/// Runs the scenario; returns (height, digest, state root) of every block up to the common
/// height, as seen by validator 0.
fn scenario(seed: u64) -> Vec<(u64, Digest, Digest)> {
    let runner = deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(600))),
    );
    runner.start(|context| async move {
        let Linked {
            keys,
            genesis,
            oracle,
            ..
        } = linked_network(&context, 4, LOSSY).await;

        let mut handles = Vec::new();
        let mut tasks = Vec::new();
        for i in 0..4 {
            let (h, t) = spawn_validator(&context, &oracle, config(&genesis, &keys, i)).await;
            handles.push(h);
            tasks.push(t);
        }

        // Transactions go to two different validators' mempools.
        let dev = dev_key();
        let bob = Address([9u8; 32]);
        let mut ids = Vec::new();
        for nonce in 0..6 {
            let target = &handles[(nonce % 2) as usize];
            ids.push(
                target
                    .submit(transfer(&genesis, &dev, bob, 5, nonce))
                    .await
                    .unwrap(),
            );
        }
        wait_height(&context, &handles[0], 4, LIMIT).await;

        // Crash validator 3; the other three (a quorum) keep finalizing.
        tasks.pop().unwrap().abort();
        handles.pop();
        let crashed_at = handles[0].height();
        wait_height(&context, &handles[0], crashed_at + 6, LIMIT).await;

        // Restart it from its durable storage; it replays, then catches up by backfill.
        context.sleep(Duration::from_millis(200)).await;
        let (h3, _t3) = spawn_validator(&context, &oracle, config(&genesis, &keys, 3)).await;
        assert!(h3.height() >= 1, "restarted validator replayed its journal");
        handles.push(h3);
        let target = handles[0].height() + 4;
        for h in &handles {
            wait_height(&context, h, target, LIMIT).await;
        }
        wait_finalized(&context, &handles[0], &ids, LIMIT).await;
        assert_eq!(handles[0].read_state(|s| s.account(&bob).balance), 30);

        same_chain(&handles).await
    })
}

#[test]
fn four_validators_lossy_links_crash_restart_agree() {
    let chain = scenario(42);
    assert!(chain.len() >= 10, "only {} blocks", chain.len());
}

#[test]
fn same_seed_same_chain() {
    let a = scenario(7);
    let b = scenario(7);
    assert!(a.len() >= 10);
    assert_eq!(a, b);
}

/// Any validator is an entry point: transactions sent only to validator 0 are gossiped, so the
/// other leaders propose them too, and every validator answers for each one.
#[test]
fn transactions_sent_to_one_validator_are_proposed_by_the_others() {
    let runner = deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(5)
            .with_timeout(Some(Duration::from_secs(600))),
    );
    runner.start(|context| async move {
        let Linked {
            keys,
            genesis,
            peers,
            oracle,
        } = linked_network(&context, 4, RELIABLE).await;
        let mut handles = Vec::new();
        for i in 0..4 {
            handles.push(
                spawn_validator(&context, &oracle, config(&genesis, &keys, i))
                    .await
                    .0,
            );
        }
        let entry = Address(peers[0].as_ref().try_into().unwrap());
        let dev = dev_key();
        let mut proposers = std::collections::BTreeSet::new();
        for nonce in 0..8 {
            let id = handles[0]
                .submit(transfer(&genesis, &dev, Address([9u8; 32]), 1, nonce))
                .await
                .unwrap();
            wait_finalized(&context, &handles[0], &[id], LIMIT).await;
            let mut heights = std::collections::BTreeSet::new();
            for h in &handles {
                wait_finalized(&context, h, &[id], LIMIT).await;
                match h.tx_status(&id).await {
                    deai_chain::TxStatus::Finalized { height, .. } => heights.insert(height),
                    other => panic!("{id} is {other:?} on a validator"),
                };
            }
            assert_eq!(heights.len(), 1, "validators disagree where {id} is");
            let height = *heights.first().unwrap();
            proposers.insert(handles[0].block(height).await.unwrap().proposer);
        }
        assert!(
            proposers.iter().any(|p| *p != entry),
            "every transaction sent to validator 0 was proposed by validator 0: no gossip"
        );
    });
}
