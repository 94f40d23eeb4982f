//! Batch signature verification: ed25519 batches in fixed-size chunks across rayon threads.
//!
//! The chunking is fixed (not tied to the thread count) and a failing chunk is re-checked one
//! signature at a time, so the answer for each transaction is the one-by-one answer for every
//! honestly produced signature. (Batch verification uses random linear combinations; a signature
//! crafted with small-order components can in principle pass a batch it would fail alone, with
//! negligible probability per chunk. The ledger's verdict is whatever this function returns, on
//! every replica alike.)

use crate::tx::SignedTx;
use rayon::prelude::*;

/// Signatures per batch.
const CHUNK: usize = 64;

/// `out[i]` says whether `txs[i]`'s signature verifies.
pub fn verify_signatures(txs: &[SignedTx]) -> Vec<bool> {
    if txs.len() <= CHUNK {
        return verify_chunk(txs);
    }
    txs.par_chunks(CHUNK)
        .map(verify_chunk)
        .collect::<Vec<_>>()
        .concat()
}

fn verify_chunk(txs: &[SignedTx]) -> Vec<bool> {
    if batch_ok(txs) {
        return vec![true; txs.len()];
    }
    txs.iter().map(|t| t.verify_signature().is_ok()).collect()
}

fn batch_ok(txs: &[SignedTx]) -> bool {
    let mut keys = Vec::with_capacity(txs.len());
    for t in txs {
        match ed25519_dalek::VerifyingKey::from_bytes(&t.tx.sender.0) {
            Ok(k) => keys.push(k),
            Err(_) => return false,
        }
    }
    let messages: Vec<Vec<u8>> = txs.iter().map(|t| t.tx.signing_bytes()).collect();
    let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let sigs: Vec<ed25519_dalek::Signature> = txs
        .iter()
        .map(|t| ed25519_dalek::Signature::from_bytes(&t.signature))
        .collect();
    ed25519_dalek::verify_batch(&message_refs, &sigs, &keys).is_ok()
}
