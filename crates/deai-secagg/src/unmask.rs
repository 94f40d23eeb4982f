//! The unmasking arithmetic shared by the server and by public verification.
//!
//! Client `i` in `U3` (the survivors: masked input received and kept) sent
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
            // The dropped client's key is public (in the record): no need to wipe the seed.
            seed: *crypto::pairwise_seed(&StaticSecret::from(*key), &mask_pk(i), round, i, j),
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

/// BLAKE3 of a masked vector's words in big-endian order (the codec's, [`crate::wire`]): how masked inputs are stored and
/// signed. Long vectors are hashed as BLAKE3 subtrees on the rayon pool (the server hashes each
/// masked input as it arrives, one message at a time); the result is the plain BLAKE3 hash of
/// the bytes, tested against `blake3::hash` across the split points.
pub fn hash_vector(words: &[u32]) -> [u8; 32] {
    use blake3::hazmat::{Mode, left_subtree_len, merge_subtrees_root};
    if 4 * words.len() <= PARALLEL_HASH_MIN_BYTES {
        return *serial_hasher(words).finalize().as_bytes();
    }
    let left_words = (left_subtree_len(4 * words.len() as u64) / 4) as usize;
    let (left, right) = words.split_at(left_words);
    let (l, r) = rayon::join(
        || subtree_cv(left, 0),
        || subtree_cv(right, 4 * left_words as u64),
    );
    *merge_subtrees_root(&l, &r, Mode::Hash).as_bytes()
}

/// Below this many bytes a vector is hashed on one thread (BLAKE3's own advice for splitting
/// is 128 KiB); a multiple of the 1 KiB chunk, so every subtree starts on a chunk boundary.
const PARALLEL_HASH_MIN_BYTES: usize = 128 * 1024;

/// The chaining value of the BLAKE3 subtree holding `words`, which start at byte `offset` of
/// the input (a subtree boundary, as `left_subtree_len` gives).
fn subtree_cv(words: &[u32], offset: u64) -> blake3::hazmat::ChainingValue {
    use blake3::hazmat::{HasherExt, Mode, left_subtree_len, merge_subtrees_non_root};
    if 4 * words.len() <= PARALLEL_HASH_MIN_BYTES {
        let mut hasher = blake3::Hasher::new();
        hasher.set_input_offset(offset);
        update_words(&mut hasher, words);
        return hasher.finalize_non_root();
    }
    let left_words = (left_subtree_len(4 * words.len() as u64) / 4) as usize;
    let (left, right) = words.split_at(left_words);
    let (l, r) = rayon::join(
        || subtree_cv(left, offset),
        || subtree_cv(right, offset + 4 * left_words as u64),
    );
    merge_subtrees_non_root(&l, &r, Mode::Hash)
}

fn serial_hasher(words: &[u32]) -> blake3::Hasher {
    let mut hasher = blake3::Hasher::new();
    update_words(&mut hasher, words);
    hasher
}

fn update_words(hasher: &mut blake3::Hasher, words: &[u32]) {
    let mut buf = [0u8; 4 * 4096];
    for chunk in words.chunks(4096) {
        let bytes = &mut buf[..4 * chunk.len()];
        crate::wire::put_words_be(bytes, chunk);
        hasher.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The subtree split gives BLAKE3 of the big-endian bytes, at lengths around every
    /// split point up to a few subtree levels.
    #[test]
    fn hash_vector_is_blake3_of_the_bytes() {
        let chunk_words = 256;
        let split_words = PARALLEL_HASH_MIN_BYTES / 4;
        let mut lengths = vec![0, 1, 255, 256, 257, 100_000];
        for m in [1, 2, 3, 4, 5, 7, 8, 9] {
            let base = m * split_words;
            lengths.extend([
                base - 1,
                base,
                base + 1,
                base + chunk_words,
                base + 3 * chunk_words + 5,
            ]);
        }
        for len in lengths {
            let words: Vec<u32> = (0..len as u32)
                .map(|i| i.wrapping_mul(2_654_435_761))
                .collect();
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            assert_eq!(
                hash_vector(&words),
                *blake3::hash(&bytes).as_bytes(),
                "len {len}"
            );
        }
    }
}
