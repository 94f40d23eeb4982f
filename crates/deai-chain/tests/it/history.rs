//! Snapshots and the history on disk: a restart replays only the blocks after the newest good
//! snapshot, every old block and transaction stays readable from disk, and a damaged snapshot costs
//! time, never correctness.

use crate::common::{
    Ctx, config, dev_key, genesis, network, start_validator, transfer, try_start_validator,
    validator_keys, wait_finalized,
};
use commonware_cryptography::Signer as _;
use commonware_runtime::{
    Blob as _, Runner as _, Storage as _, Supervisor as _, WriteOptions, deterministic,
};
use deai_chain::{Config, Handle, SnapshotPolicy, TxStatus};
use deai_ledger::{Address, Genesis, TxId};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
const TXS: u64 = 60;
const BATCH: u64 = 3;

fn snapshotting(
    genesis: &Genesis,
    keys: &[commonware_cryptography::ed25519::PrivateKey],
) -> Config {
    let mut cfg = config(genesis, keys, 0);
    cfg.snapshots = SnapshotPolicy {
        every_blocks: 1_000,
        every_txs: 10,
    };
    cfg
}

/// What the first run saw: the tip, its root, every transaction with its height, and the digest
/// of block 1.
struct Seen {
    height: u64,
    root: deai_ledger::Digest,
    txs: Vec<(TxId, u64)>,
    first_digest: deai_ledger::Digest,
    snapshot_height: u64,
}

async fn height_of(handle: &Handle, id: &TxId) -> u64 {
    match handle.tx_status(id).await {
        TxStatus::Finalized { height, .. } => height,
        other => panic!("transaction {id} is {other:?}"),
    }
}

/// Starts a validator, finalizes `TXS` transfers a few at a time (so they spread over many
/// blocks), and reports what it saw.
async fn first_run(context: Ctx, genesis: Genesis, cfg: Config) -> Seen {
    let oracle = network(&context, &cfg, vec![cfg.signer.public_key()]).await;
    let handle = start_validator(context.child("validator"), &oracle, cfg).await;
    let dev = dev_key();
    let mut ids = Vec::new();
    for start in (0..TXS).step_by(BATCH as usize) {
        let mut batch = Vec::new();
        for nonce in start..start + BATCH {
            batch.push(
                handle
                    .submit(transfer(&genesis, &dev, Address([5; 32]), 1, nonce))
                    .await
                    .unwrap(),
            );
        }
        wait_finalized(&context, &handle, &batch, LIMIT).await;
        ids.extend(batch);
    }
    let mut txs = Vec::new();
    for id in ids {
        txs.push((id, height_of(&handle, &id).await));
    }
    let status = handle.status();
    Seen {
        height: status.height,
        root: status.state_root,
        txs,
        first_digest: handle.block(1).await.unwrap().digest,
        snapshot_height: handle.metrics().snapshot_height,
    }
}

/// Restarts over the same storage and checks everything the first run saw is still there.
async fn check_restart(context: &Ctx, handle: &Handle, seen: &Seen) {
    assert!(
        handle.height() >= seen.height,
        "resumed below the first run's tip"
    );
    assert_eq!(
        handle.block(seen.height).await.unwrap().state_root,
        seen.root
    );
    assert_eq!(handle.block(1).await.unwrap().digest, seen.first_digest);
    for (id, height) in &seen.txs {
        assert_eq!(
            height_of(handle, id).await,
            *height,
            "transaction {id} moved"
        );
    }
    // And it keeps finalizing on top.
    let dev = dev_key();
    let genesis = genesis(&validator_keys(1));
    let id = handle
        .submit(transfer(&genesis, &dev, Address([6; 32]), 1, TXS))
        .await
        .unwrap();
    wait_finalized(context, handle, &[id], LIMIT).await;
}

fn runner(seed: u64) -> deterministic::Runner {
    deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(300))),
    )
}

#[test]
fn a_restart_replays_only_the_blocks_after_the_newest_snapshot() {
    let keys = validator_keys(1);
    let genesis = genesis(&keys);
    let cfg = snapshotting(&genesis, &keys);
    let (seen, checkpoint) =
        runner(11).start_and_recover(|context| first_run(context, genesis.clone(), cfg.clone()));
    assert!(
        seen.height > 12,
        "the transfers spread over {} blocks",
        seen.height
    );
    assert!(
        seen.snapshot_height > 0,
        "{} transfers at one snapshot per 10 wrote none",
        TXS
    );
    deterministic::Runner::from(checkpoint).start(|context| async move {
        let oracle = network(&context, &cfg, vec![keys[0].public_key()]).await;
        let handle = start_validator(context.child("validator"), &oracle, cfg).await;
        let m = handle.metrics();
        assert!(m.snapshot_height >= seen.snapshot_height);
        assert_eq!(
            m.replayed_blocks_at_start,
            seen.height - m.snapshot_height,
            "replayed more than the blocks after the snapshot"
        );
        assert!(
            m.replayed_blocks_at_start < seen.height,
            "replayed from genesis"
        );
        check_restart(&context, &handle, &seen).await;
    });
}

#[test]
fn damaged_snapshots_are_ignored_and_the_journal_replays_from_genesis() {
    let keys = validator_keys(1);
    let genesis = genesis(&keys);
    let cfg = snapshotting(&genesis, &keys);
    let (seen, checkpoint) =
        runner(12).start_and_recover(|context| first_run(context, genesis.clone(), cfg.clone()));
    assert!(seen.snapshot_height > 0);
    deterministic::Runner::from(checkpoint).start(|context| async move {
        // Flip one byte in the middle of each slot: checksums fail, so neither restores.
        for slot in [&b"a"[..], b"b"] {
            let (blob, len) = context.open("validator0-snapshot", slot).await.unwrap();
            if len > 0 {
                let mid = len / 2;
                let byte = blob
                    .read_at(mid, 1, Default::default())
                    .await
                    .unwrap()
                    .coalesce();
                let flipped = vec![byte.as_ref()[0] ^ 0xff];
                blob.write_at(mid, flipped, WriteOptions::default())
                    .await
                    .unwrap();
                blob.sync().await.unwrap();
            }
        }
        let oracle = network(&context, &cfg, vec![keys[0].public_key()]).await;
        let handle = start_validator(context.child("validator"), &oracle, cfg).await;
        let m = handle.metrics();
        assert_eq!(m.snapshot_height, 0, "a damaged snapshot was restored");
        assert_eq!(m.replayed_blocks_at_start, handle.height());
        check_restart(&context, &handle, &seen).await;
    });
}

#[test]
fn a_data_directory_with_the_old_block_journal_is_refused_by_name() {
    let keys = validator_keys(1);
    let genesis = genesis(&keys);
    let cfg = config(&genesis, &keys, 0);
    runner(13).start(|context| async move {
        // What the variable-journal layout left: a section blob under `<prefix>-blocks`.
        let (blob, _) = context
            .open("validator0-blocks", &0u64.to_be_bytes())
            .await
            .unwrap();
        blob.write_at(0, vec![1u8; 64], WriteOptions::default())
            .await
            .unwrap();
        blob.sync().await.unwrap();
        let oracle = network(&context, &cfg, vec![keys[0].public_key()]).await;
        let err = match try_start_validator(context.child("validator"), &oracle, cfg).await {
            Ok(_) => panic!("a node started over a block journal it cannot read"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("validator0-blocks") && err.contains("older deai"),
            "{err}"
        );
    });
}
