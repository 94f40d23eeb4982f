//! Micro benchmark of the ledger alone: N signed transfers between many accounts through
//! `apply_block_verified` + root (signatures pre-checked), and `verify_signatures` on the same
//! transactions. Run: `cargo run --release -p deai-ledger --example apply_bench -- 20000 2000`
//! (transactions, transactions per block). The real end-to-end benchmark is `deai bench ledger`.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock; the library never does

use deai_ledger::*;
use ed25519_dalek::SigningKey;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    // Integer rates: the crate has no floats, benchmarks included.
    let per_second = |n: usize, us: u128| n as u128 * 1_000_000 / us;
    let txs_n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let per_block: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let senders_n: usize = 1_000;
    let keys: Vec<SigningKey> = (0..senders_n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            SigningKey::from_bytes(&seed)
        })
        .collect();
    let addrs: Vec<Address> = keys
        .iter()
        .map(|k| Address::from_key(&k.verifying_key()))
        .collect();
    let genesis = Genesis {
        chain_id: "bench".into(),
        balances: addrs.iter().map(|a| (*a, 1_000_000_000)).collect(),
        validators: vec![(addrs[0], 1)],
        params: Params {
            block_txs_max: per_block as u32,
            validator_stake_min: 1,
            ..Params::default()
        },
    };
    let mut state = State::from_genesis(&genesis).expect("genesis");
    let mut nonces = vec![0u64; senders_n];
    let txs: Vec<SignedTx> = (0..txs_n)
        .map(|i| {
            let s = i % senders_n;
            let to = Address(*blake3::hash(&(i as u64).to_le_bytes()).as_bytes());
            let tx = Tx {
                chain_id: "bench".into(),
                sender: addrs[s],
                nonce: nonces[s],
                fee: 1,
                body: TxBody::Transfer(Transfer { to, amount: 1 }),
            };
            nonces[s] += 1;
            SignedTx::sign(tx, &keys[s])
        })
        .collect();

    let start = Instant::now();
    let ok = verify_signatures(&txs);
    let verify_us = start.elapsed().as_micros().max(1);
    assert!(ok.iter().all(|&b| b));
    let start = Instant::now();
    for t in txs.iter().take(2_000) {
        t.verify_signature().expect("valid");
    }
    let single_us_per_2k = start.elapsed().as_micros().max(1);

    let start = Instant::now();
    for (h, chunk) in txs.chunks(per_block).enumerate() {
        let height = h as u64 + 1;
        let block = Block {
            height,
            proposer: addrs[0],
            beacon: Digest::hash(&height.to_be_bytes()),
            txs: chunk.to_vec(),
        };
        let out = state.apply_block_verified(&block, &vec![true; chunk.len()]);
        assert!(out.receipts.iter().all(Receipt::is_ok));
    }
    let apply_us = start.elapsed().as_micros().max(1);
    println!(
        "{{\"txs\": {txs_n}, \"txs_per_block\": {per_block}, \"accounts\": {}, \
         \"apply_tps\": {}, \"verify_batch_parallel_per_s\": {}, \"verify_single_per_s\": {}, \
         \"root\": \"{}\"}}",
        state.accounts().count(),
        per_second(txs_n, apply_us),
        per_second(txs_n, verify_us),
        per_second(2_000, single_us_per_2k),
        state.root()
    );
}
