//! Finalized-transaction throughput of one validator on the tokio runtime (real storage, fsync
//! on), compared with single-core ed25519 verification of the same transactions.
//!
//! `cargo run --release -p deai-chain --example throughput -- [txs] [senders]`

#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark measures wall time; the chain itself reads the runtime's clock"
)]
#![allow(clippy::unwrap_used, missing_docs)] // a measurement tool: failures should be loud

use commonware_cryptography::{Signer as _, ed25519};
use commonware_runtime::{Runner as _, tokio};
use deai_chain::{Config, TxStatus};
use deai_ledger::{Address, Genesis, SignedTx, Transfer, Tx, TxBody};
use ed25519_dalek::SigningKey;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let txs: u64 = args.next().map_or(20_000, |a| a.parse().unwrap());
    let senders: u64 = args.next().map_or(200, |a| a.parse().unwrap());
    let per_sender = txs.div_ceil(senders);
    let dir = tempfile::tempdir().unwrap();

    let signer = ed25519::PrivateKey::from_seed(1);
    let mut validator = [0u8; 32];
    validator.copy_from_slice(signer.public_key().as_ref());
    let keys: Vec<SigningKey> = (0..senders)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i + 1).to_le_bytes());
            SigningKey::from_bytes(&seed)
        })
        .collect();
    let mut genesis = Genesis::dev(
        Address(keys[0].verifying_key().to_bytes()),
        vec![Address(validator)],
    );
    for k in &keys[1..] {
        genesis
            .balances
            .push((Address(k.verifying_key().to_bytes()), 1_000_000_000_000));
    }
    let fee = genesis.params.fee_min.max(1);
    let signed: Vec<SignedTx> = (0..per_sender)
        .flat_map(|nonce| keys.iter().map(move |k| (k, nonce)))
        .take(txs as usize)
        .map(|(k, nonce)| {
            let tx = Tx {
                chain_id: genesis.chain_id.clone(),
                sender: Address(k.verifying_key().to_bytes()),
                nonce,
                fee,
                body: TxBody::Transfer(Transfer {
                    to: Address([9; 32]),
                    amount: 1,
                }),
            };
            SignedTx::sign(tx, k)
        })
        .collect();

    let start = Instant::now();
    for tx in &signed {
        tx.verify_signature().unwrap();
    }
    let verify_per_s = signed.len() as f64 / start.elapsed().as_secs_f64();

    let mut cfg = Config::single(genesis, signer);
    // Everything is submitted before anything finalizes: each sender's whole run is pending.
    cfg.mempool_sender_txs_max = cfg.mempool_sender_txs_max.max(per_sender as usize);
    cfg.mempool_nonce_window = cfg.mempool_nonce_window.max(per_sender);
    let runner = tokio::Runner::new(tokio::Config::new().with_storage_directory(dir.path()));
    let (tps, p50, p99, height) = runner.start(|context| async move {
        let handle = deai_chain::start(context, cfg).await.unwrap();
        let ids: Vec<_> = signed.iter().map(SignedTx::id).collect();
        let start = Instant::now();
        for tx in signed {
            handle.submit(tx).await.unwrap();
        }
        let mut rx = handle.subscribe_finalized();
        for id in &ids {
            while !matches!(handle.tx_status(id).await, TxStatus::Finalized { .. }) {
                rx.changed().await.unwrap();
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        let m = handle.metrics();
        (
            ids.len() as f64 / elapsed,
            m.finality_latency_p50_ms,
            m.finality_latency_p99_ms,
            m.height,
        )
    });
    println!(
        "{{\"txs\": {txs}, \"blocks\": {height}, \"finalized_tps\": {tps:.0}, \"p50_finality_ms\": {}, \"p99_finality_ms\": {}, \"ed25519_verify_per_s\": {verify_per_s:.0}, \"ratio\": {:.3}}}",
        p50.unwrap_or(0),
        p99.unwrap_or(0),
        tps / verify_per_s
    );
}
