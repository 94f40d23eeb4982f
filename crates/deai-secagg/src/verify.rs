//! Public re-computation of an aggregate from the stored masked inputs and the unmask record.
//!
//! The masked inputs alone are uniformly random vectors (each carries its self mask, known to
//! nobody until it is reconstructed from `t` shares); with the record, anyone obtains exactly
//! the sum over the survivors, and checks it against the announced aggregate.
//!
//! Everything the server could change is checked against what the clients signed, under the
//! configuration's identities, so a server cannot swap a survivor's input or report a wrong
//! mask without the check naming it ([`VerifyError`]):
//! - each advert's signature (keys and self-seed commitment);
//! - each masked input's hash against the record, and its signature by its client;
//! - each reconstructed self seed against its advert's commitment, each dropped client's mask
//!   key against its advertised public key;
//! - the consistency signatures: each valid on the survivor list, by a survivor, and at least
//!   `t` of them.

use rayon::prelude::*;
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
    /// A masked input's signature by its client does not verify: the input was swapped.
    #[error("masked input of client {0} is not the one it signed")]
    BadMaskedSignature(u32),
    /// A reconstructed self seed does not match its client's advertised commitment.
    #[error("self seed of client {0} does not match its commitment")]
    BadSelfSeed(u32),
    /// A consistency signature does not verify on the survivor list.
    #[error("consistency signature of client {0} does not verify on the survivors")]
    BadConsistencySignature(u32),
    /// Fewer than `t` survivors signed the survivor list.
    #[error("{have} consistency signatures, threshold {need}")]
    TooFewConsistencySignatures {
        /// Signatures in the record.
        have: usize,
        /// Threshold.
        need: usize,
    },
}

/// Re-computes the aggregate from `masked` (aligned with `record.survivors`) and the record.
pub fn verify_aggregate(
    config: &RoundConfig,
    record: &UnmaskRecord,
    masked: &[Vec<u32>],
) -> Result<Vec<u32>, VerifyError> {
    check_shape(config, record, masked)?;
    let identity = |c: u32| &config.identities[c as usize];
    let shared: Vec<u32> = record.adverts.iter().map(|a| a.from).collect();
    crypto::verify_adverts(config.round, &record.adverts, identity)
        .map_err(VerifyError::BadAdvert)?;
    let advert = |c: u32| {
        let at = shared
            .binary_search(&c)
            .expect("checked: every client used here shared");
        &record.adverts[at]
    };
    let mask_pk = |c: u32| PublicKey::from(advert(c).mask_pk);
    for (c, key) in &record.dropped_keys {
        if PublicKey::from(&StaticSecret::from(*key)) != mask_pk(*c) {
            return Err(VerifyError::BadKey(*c));
        }
    }
    for (c, seed) in record.survivors.iter().zip(&record.self_seeds) {
        if crypto::seed_commitment(config.round, *c, seed) != advert(*c).seed_commitment {
            return Err(VerifyError::BadSelfSeed(*c));
        }
    }
    let hashes: Vec<[u8; 32]> = masked.par_iter().map(|v| hash_vector(v)).collect();
    for ((c, v), (h, stored)) in record
        .survivors
        .iter()
        .zip(masked)
        .zip(hashes.iter().zip(&record.masked_hashes))
    {
        if v.len() != config.vector_len as usize || h != stored {
            return Err(VerifyError::BadInput(*c));
        }
    }
    let signed: Vec<(u32, [u8; 32], [u8; 64])> = record
        .survivors
        .iter()
        .zip(hashes)
        .zip(&record.masked_signatures)
        .map(|((c, h), s)| (*c, h, *s))
        .collect();
    crypto::verify_masked_all(config.round, &signed, identity)
        .map_err(VerifyError::BadMaskedSignature)?;
    check_consistency(config, record)?;
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

/// Round, list lengths and orders, and that survivors and dropped keys partition the sharers.
fn check_shape(
    config: &RoundConfig,
    record: &UnmaskRecord,
    masked: &[Vec<u32>],
) -> Result<(), VerifyError> {
    if record.round != config.round {
        return Err(VerifyError::Round {
            got: record.round,
            expected: config.round,
        });
    }
    let n = record.survivors.len();
    if masked.len() != n
        || record.masked_hashes.len() != n
        || record.masked_signatures.len() != n
        || record.self_seeds.len() != n
    {
        return Err(VerifyError::Malformed("survivor lists differ in length"));
    }
    let shared: Vec<u32> = record.adverts.iter().map(|a| a.from).collect();
    check_ascending("adverts", shared.iter().copied())
        .map_err(|_| VerifyError::Malformed("adverts order"))?;
    check_ascending("survivors", record.survivors.iter().copied())
        .map_err(|_| VerifyError::Malformed("survivors order"))?;
    check_ascending("consistency", record.consistency.iter().map(|(c, _)| *c))
        .map_err(|_| VerifyError::Malformed("consistency signers order"))?;
    if shared.last().is_some_and(|&c| c >= config.clients()) {
        return Err(VerifyError::Malformed("unknown client"));
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
    if record
        .consistency
        .iter()
        .any(|(c, _)| record.survivors.binary_search(c).is_err())
    {
        return Err(VerifyError::Malformed(
            "a consistency signer is not a survivor",
        ));
    }
    Ok(())
}

/// At least `t` survivors signed the survivor list, every signature valid.
fn check_consistency(config: &RoundConfig, record: &UnmaskRecord) -> Result<(), VerifyError> {
    let need = config.threshold();
    if record.consistency.len() < need {
        return Err(VerifyError::TooFewConsistencySignatures {
            have: record.consistency.len(),
            need,
        });
    }
    crypto::verify_consistency_all(config.round, &record.survivors, &record.consistency, |c| {
        &config.identities[c as usize]
    })
    .map_err(VerifyError::BadConsistencySignature)
}
