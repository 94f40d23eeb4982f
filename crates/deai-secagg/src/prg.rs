//! Masks expanded from 256-bit seeds by ChaCha20, added to vectors of `u32` words.
//!
//! A mask is the ChaCha20 keystream (RFC 8439, nonce 0, counter from 0) under the seed as key,
//! read as little-endian `u32` words. The 32-bit block counter bounds a mask to 2^32 blocks
//! (2^36 words), far above any vector a round accepts. RustCrypto's implementation picks
//! AVX-512, AVX2 or SSE2 at run time; it is the bulk of a client's work (`docs/secagg.md`).
//! Vectors are summed mod 2^32 here; reducing mod 2^b with `b <= 32` afterwards gives the sum
//! mod 2^b, so callers reduce once at the end.

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};

/// Whether a mask is added or subtracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    /// `acc += mask`.
    Add,
    /// `acc -= mask`.
    Sub,
}

impl Sign {
    /// The opposite sign.
    pub fn flip(self) -> Self {
        match self {
            Sign::Add => Sign::Sub,
            Sign::Sub => Sign::Add,
        }
    }
}

/// Words of keystream produced per refill: large enough to amortise the call, small enough to
/// stay in L1.
const CHUNK_WORDS: usize = 1024;

/// Adds (or subtracts) the mask expanded from `seed` to `acc`, wrapping mod 2^32.
pub fn apply_mask(acc: &mut [u32], seed: &[u8; 32], sign: Sign) {
    let mut cipher = ChaCha20::new(seed.into(), &[0u8; 12].into());
    let mut buf = [0u8; CHUNK_WORDS * 4];
    for chunk in acc.chunks_mut(CHUNK_WORDS) {
        let bytes = &mut buf[..chunk.len() * 4];
        // The keystream is what encrypting zeros gives.
        bytes.fill(0);
        cipher.apply_keystream(bytes);
        let words = bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("chunks_exact(4) yields 4 bytes")));
        match sign {
            Sign::Add => chunk
                .iter_mut()
                .zip(words)
                .for_each(|(a, m)| *a = a.wrapping_add(m)),
            Sign::Sub => chunk
                .iter_mut()
                .zip(words)
                .for_each(|(a, m)| *a = a.wrapping_sub(m)),
        }
    }
}

/// Adds `other` to `acc` word by word, wrapping mod 2^32.
pub fn add_assign(acc: &mut [u32], other: &[u32]) {
    debug_assert_eq!(acc.len(), other.len());
    acc.iter_mut()
        .zip(other)
        .for_each(|(a, b)| *a = a.wrapping_add(*b));
}

/// Reduces every word mod 2^bits.
pub fn reduce(acc: &mut [u32], bits: u32) {
    let mask = modulus_mask(bits);
    acc.iter_mut().for_each(|a| *a &= mask);
}

/// `2^bits - 1` for `1 <= bits <= 32`.
pub fn modulus_mask(bits: u32) -> u32 {
    assert!(
        (1..=32).contains(&bits),
        "modulus bits {bits} out of 1..=32"
    );
    u32::MAX >> (32 - bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_then_sub_cancels() {
        let mut v: Vec<u32> = (0..5000).collect();
        apply_mask(&mut v, &[7; 32], Sign::Add);
        assert_ne!(v[..10], (0..10).collect::<Vec<_>>()[..]);
        apply_mask(&mut v, &[7; 32], Sign::Sub);
        assert_eq!(v, (0..5000).collect::<Vec<_>>());
    }

    #[test]
    fn mask_is_chacha20_keystream() {
        // RFC 8439 §2.3.2 test vector uses a counter/nonce; with key 0 and nonce 0 the first
        // block of the ChaCha20 keystream is the RFC 7539 A.1 test vector #1.
        let mut v = vec![0u32; 4];
        apply_mask(&mut v, &[0; 32], Sign::Add);
        assert_eq!(v[0].to_le_bytes(), [0x76, 0xb8, 0xe0, 0xad]);
        assert_eq!(v[1].to_le_bytes(), [0xa0, 0xf1, 0x3d, 0x90]);
    }

    /// Whatever backend the CPU selects, the mask is the same ChaCha20 stream as an independent
    /// implementation's (rand_chacha, nonce 0), across many 64-byte blocks and chunk seams.
    #[test]
    fn mask_matches_an_independent_chacha20() {
        use rand_chacha::ChaCha20Rng;
        use rand_core::{RngCore, SeedableRng};
        let seed = [0x5a; 32];
        let mut v = vec![0u32; 3 * CHUNK_WORDS + 77];
        apply_mask(&mut v, &seed, Sign::Add);
        let mut reference = ChaCha20Rng::from_seed(seed);
        let expected: Vec<u32> = (0..v.len()).map(|_| reference.next_u32()).collect();
        assert_eq!(v, expected);
    }

    #[test]
    fn prefix_is_stable_across_lengths() {
        let mut short = vec![0u32; 1500];
        let mut long = vec![0u32; 3000];
        apply_mask(&mut short, &[3; 32], Sign::Add);
        apply_mask(&mut long, &[3; 32], Sign::Add);
        assert_eq!(short[..], long[..1500]);
    }
}
