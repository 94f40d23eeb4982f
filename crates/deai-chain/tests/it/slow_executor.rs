//! A validator whose executor is slow (as on a slow disk) falls behind the other three, who keep
//! finalizing as a quorum, and still applies every finalized block in order with the same state
//! roots. What waits for its executor stays within marshal's acknowledgement window: the
//! finalizer panics rather than queue more, or drop one.
use crate::common::*;
use commonware_runtime::{
    Clock as _, Metrics as _, Runner as _, Spawner as _, Supervisor as _, deterministic,
};
use deai_chain::Handle;
use deai_ledger::Address;
use futures::channel::oneshot;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(300);
const SLOW: usize = 3;
/// Longer than the chain's block interval, so the slow validator's backlog grows.
const SLOW_DELAY: Duration = Duration::from_secs(2);
/// Marshal's `max_pending_acks` in `deai_chain::engine`.
const WINDOW: i64 = 4;

async fn spawn_validator(
    context: &Ctx,
    oracle: &commonware_p2p::simulated::Oracle<PublicKey, Ctx>,
    cfg: deai_chain::Config,
    index: usize,
) -> Handle {
    let (tx, rx) = oneshot::channel();
    let oracle = oracle.clone();
    // One attribute per validator, so each has its own `deai_*` series.
    let ctx = context.child("validator").with_attribute("index", index);
    ctx.spawn(move |ctx| async move {
        let handle = start_validator(ctx, &oracle, cfg).await;
        let _ = tx.send(handle);
        futures::future::pending::<()>().await;
    });
    rx.await.unwrap()
}

/// The slow validator's executor queue depth in the runtime's metrics.
fn queue_depth(context: &Ctx) -> i64 {
    let index = format!("index=\"{SLOW}\"");
    context
        .encode()
        .lines()
        .find(|l| l.starts_with("validator_deai_executor_queue_blocks{") && l.contains(&index))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn slow_executor_falls_behind_and_loses_no_block() {
    let runner = deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(11)
            .with_timeout(Some(Duration::from_secs(900))),
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
            let mut cfg = config(&genesis, &keys, i);
            if i == SLOW {
                cfg.executor_delay = SLOW_DELAY;
            }
            handles.push(spawn_validator(&context, &oracle, cfg, i).await);
        }
        let dev = dev_key();
        let bob = Address([9u8; 32]);
        let mut ids = Vec::new();
        for nonce in 0..8 {
            let tx = transfer(&genesis, &dev, bob, 5, nonce);
            ids.push(handles[0].submit(tx).await.unwrap());
        }

        // The fast three reach `target` while the slow one lags; watch its queue meanwhile.
        let target = 16;
        let step = Duration::from_millis(50);
        let mut depth_max = 0;
        let mut waited = Duration::ZERO;
        while handles[0].height() < target {
            assert!(
                waited < LIMIT,
                "fast validators stuck at {}",
                handles[0].height()
            );
            depth_max = depth_max.max(queue_depth(&context));
            context.sleep(step).await;
            waited += step;
        }
        let lag = target - handles[SLOW].height();
        assert!(
            lag >= 4,
            "the slow validator kept up (lag {lag}): the test proves nothing"
        );

        // It catches up to `target` one block at a time, never holding more than the window.
        while handles[SLOW].height() < target {
            assert!(
                waited < LIMIT,
                "slow validator stuck at {}",
                handles[SLOW].height()
            );
            depth_max = depth_max.max(queue_depth(&context));
            context.sleep(step).await;
            waited += step;
        }
        assert!(depth_max <= WINDOW, "executor queue reached {depth_max}");
        assert!(
            depth_max >= 2,
            "executor queue never backed up ({depth_max})"
        );

        wait_finalized(&context, &handles[SLOW], &ids, LIMIT).await;
        for height in 1..=target {
            let fast = handles[0].block(height).await.unwrap();
            let slow = handles[SLOW].block(height).await.unwrap();
            assert_eq!(slow.digest, fast.digest, "block {height}");
            assert_eq!(slow.state_root, fast.state_root, "root {height}");
        }
        assert_eq!(handles[SLOW].read_state(|s| s.account(&bob).balance), 40);
    });
}
