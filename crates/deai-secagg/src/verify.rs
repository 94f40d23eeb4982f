//! Public re-computation of an aggregate from the stored masked inputs and the unmask record.
//!
//! The masked inputs alone are uniformly random vectors (each carries its self mask, known to
//! nobody until it is reconstructed from `t` shares); with the record, anyone obtains exactly
//! the sum over the survivors, and checks it against the announced aggregate.

use thiserror::Error;
use x25519_dalek::{PublicKey, StaticSecret};

use crate::config::RoundConfig;
use crate::crypto;
use crate::server::UnmaskRecord;
use crate::unmask::{self, hash_vector};
use crate::wire::check_ascending;

/// Why an aggregate could not be re-computed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The record is for another round.
    #[error("record of round {got}, expected {expected}")]
    Round {
        /// Round in the record.
        got: u64,
        /// Round of the configuration.
        expected: u64,
    },
    /// Lists of the record are unsorted, misaligned or name unknown clients.
    #[error("malformed record: {0}")]
    Malformed(&'static str),
    /// An advert's signature fails.
    #[error("advert of client {0} does not verify")]
    BadAdvert(u32),
    /// A masked input does not match its stored hash or length.
    #[error("masked input of client {0} does not match the record")]
    BadInput(u32),
    /// A revealed mask key does not match the client's advertised public key.
    #[error("mask key of client {0} does not match its advert")]
    BadKey(u32),
}

/// Re-computes the aggregate from `masked` (aligned with `record.survivors`) and the record.
pub fn verify_aggregate(
    config: &RoundConfig,
    record: &UnmaskRecord,
    masked: &[Vec<u32>],
) -> Result<Vec<u32>, VerifyError> {
    if record.round != config.round {
        return Err(VerifyError::Round {
            got: record.round,
            expected: config.round,
        });
    }
    let n = record.survivors.len();
    if masked.len() != n || record.masked_hashes.len() != n || record.self_seeds.len() != n {
        return Err(VerifyError::Malformed("survivor lists differ in length"));
    }
    let shared: Vec<u32> = record.adverts.iter().map(|a| a.from).collect();
    check_ascending("adverts", shared.iter().copied())
        .map_err(|_| VerifyError::Malformed("adverts order"))?;
    check_ascending("survivors", record.survivors.iter().copied())
        .map_err(|_| VerifyError::Malformed("survivors order"))?;
    if shared.last().is_some_and(|&c| c >= config.clients()) {
        return Err(VerifyError::Malformed("unknown client"));
    }
    for a in &record.adverts {
        let id = &config.identities[a.from as usize];
        if !crypto::verify_advert(
            id,
            config.round,
            a.from,
            &a.cipher_pk,
            &a.mask_pk,
            &a.signature,
        ) {
            return Err(VerifyError::BadAdvert(a.from));
        }
    }
    let dropped: Vec<u32> = shared
        .iter()
        .copied()
        .filter(|c| record.survivors.binary_search(c).is_err())
        .collect();
    let keyed: Vec<u32> = record.dropped_keys.iter().map(|(c, _)| *c).collect();
    if dropped != keyed
        || record
            .survivors
            .iter()
            .any(|c| shared.binary_search(c).is_err())
    {
        return Err(VerifyError::Malformed(
            "survivors and dropped keys do not partition the sharers",
        ));
    }
    let mask_pk = |c: u32| {
        let at = shared
            .binary_search(&c)
            .expect("checked: every client used here shared");
        PublicKey::from(record.adverts[at].mask_pk)
    };
    for (c, key) in &record.dropped_keys {
        if PublicKey::from(&StaticSecret::from(*key)) != mask_pk(*c) {
            return Err(VerifyError::BadKey(*c));
        }
    }
    for ((c, v), h) in record
        .survivors
        .iter()
        .zip(masked)
        .zip(&record.masked_hashes)
    {
        if v.len() != config.vector_len as usize || hash_vector(v) != *h {
            return Err(VerifyError::BadInput(*c));
        }
    }
    let removals = unmask::removals(
        &config.graph(),
        config.round,
        &record.survivors,
        &record.self_seeds,
        &record.dropped_keys,
        mask_pk,
    );
    let inputs: Vec<&[u32]> = masked.iter().map(Vec::as_slice).collect();
    Ok(unmask::unmasked_sum(
        config.vector_len as usize,
        &inputs,
        &removals,
        config.modulus_bits,
    ))
}
