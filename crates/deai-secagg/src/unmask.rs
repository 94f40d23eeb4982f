//! The unmasking arithmetic shared by the server and by public verification.
//!
//! Client `i` in `U3` (masked input received) sent
//! `y_i = x_i + PRG(b_i) + Σ_{j ∈ N(i) ∩ U2} ±PRG(s_ij)` (the lower id adds, the higher
//! subtracts). Summing over `U3`, the pairwise masks between two members of `U3` cancel; what
//! remains is every `PRG(b_i)` for `i ∈ U3` and, for each `j ∈ U2 \ U3` (shared, then dropped),
//! the masks `±PRG(s_ij)` of its neighbours in `U3`, recomputed from `j`'s reconstructed
//! mask key and their public keys.

use rayon::prelude::*;
use x25519_dalek::{PublicKey, StaticSecret};

use crate::client::pair_sign;
use crate::crypto;
use crate::graph::Graph;
use crate::prg::{self, Sign};

/// One mask to take off the sum.
#[derive(Clone)]
pub(crate) struct Removal {
    pub(crate) seed: [u8; 32],
    pub(crate) sign: Sign,
}

/// Masks to remove: the survivors' self masks and the dropped clients' pairwise masks with the
/// survivors. `dropped_keys` are `(j, mask secret key of j)` for `j ∈ U2 \ U3`;
/// `mask_pk(i)` is the advertised mask public key of `i`.
pub(crate) fn removals(
    graph: &Graph,
    round: u64,
    survivors: &[u32],
    self_seeds: &[[u8; 32]],
    dropped_keys: &[(u32, [u8; 32])],
    mask_pk: impl Fn(u32) -> PublicKey + Sync,
) -> Vec<Removal> {
    let pairs: Vec<(u32, u32, &[u8; 32])> = dropped_keys
        .iter()
        .flat_map(|(j, key)| {
            graph
                .neighbours(*j)
                .into_iter()
                .filter(|i| survivors.binary_search(i).is_ok())
                .map(move |i| (i, *j, key))
        })
        .collect();
    // One X25519 agreement per (survivor, dropped) pair: spread over the pool.
    let pairwise: Vec<Removal> = pairs
        .par_iter()
        .map(|&(i, j, key)| Removal {
            seed: crypto::pairwise_seed(&StaticSecret::from(*key), &mask_pk(i), round, i, j),
            sign: pair_sign(i, j).flip(),
        })
        .collect();
    self_seeds
        .iter()
        .map(|s| Removal {
            seed: *s,
            sign: Sign::Sub,
        })
        .chain(pairwise)
        .collect()
}

/// `Σ inputs - masks mod 2^bits`, spread over the rayon pool; the result does not depend on
/// the split because addition mod 2^32 is associative and commutative.
pub(crate) fn unmasked_sum(
    len: usize,
    inputs: &[&[u32]],
    removals: &[Removal],
    bits: u32,
) -> Vec<u32> {
    enum Job<'a> {
        Add(&'a [u32]),
        Mask(&'a Removal),
    }
    let jobs: Vec<Job<'_>> = inputs
        .iter()
        .map(|v| Job::Add(v))
        .chain(removals.iter().map(Job::Mask))
        .collect();
    let mut sum = jobs
        .par_iter()
        .with_min_len(4)
        .fold(
            || vec![0u32; len],
            |mut acc, job| {
                match job {
                    Job::Add(v) => prg::add_assign(&mut acc, v),
                    Job::Mask(r) => prg::apply_mask(&mut acc, &r.seed, r.sign),
                }
                acc
            },
        )
        .reduce(
            || vec![0u32; len],
            |mut a, b| {
                prg::add_assign(&mut a, &b);
                a
            },
        );
    prg::reduce(&mut sum, bits);
    sum
}

/// BLAKE3 of a masked vector's words in little-endian order: how masked inputs are stored.
pub fn hash_vector(words: &[u32]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    let mut buf = [0u8; 4 * 4096];
    for chunk in words.chunks(4096) {
        let bytes = &mut buf[..4 * chunk.len()];
        crate::wire::write_words(bytes, chunk);
        hasher.update(bytes);
    }
    *hasher.finalize().as_bytes()
}
