//! Shamir secret sharing of 32-byte secrets over the prime field of curve25519 scalars.
//!
//! The field has order `ℓ ≈ 2^252`, too small for a full 256-bit secret, so a secret is split
//! into two 128-bit halves, each shared with its own polynomial of degree `t - 1`. A share is the
//! pair of evaluations at `x = holder index + 1` (never 0, which holds the secret). Any `t`
//! shares with distinct `x` reconstruct; fewer reveal nothing. A reconstructed half must fit in
//! 128 bits: a share replaced by random garbage yields a random field element, caught here with
//! probability `1 - 2^-124` (a crafted share can pass, so this is a sanity check, not a
//! defence against malicious share holders).
//!
//! Shares, polynomial coefficients and the byte buffers they pass through are wiped when
//! dropped: a share is a secret until its owner's fate is known, and `t` of them are the secret.

use curve25519_dalek::scalar::Scalar;
use rand_core::{CryptoRng, RngCore};
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Bytes of an encoded [`Share`] value (two canonical scalars).
pub const SHARE_BYTES: usize = 64;

/// One holder's share of a 32-byte secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Share {
    /// The evaluation point: holder index + 1.
    pub x: u32,
    halves: [Scalar; 2],
}

impl Drop for Share {
    fn drop(&mut self) {
        self.halves.zeroize();
    }
}

impl ZeroizeOnDrop for Share {}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Share")
            .field("x", &self.x)
            .finish_non_exhaustive()
    }
}

/// Why shares did not reconstruct.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ShamirError {
    /// Fewer shares than the threshold.
    #[error("{got} shares, {need} needed")]
    TooFew {
        /// Shares given.
        got: usize,
        /// Threshold.
        need: usize,
    },
    /// Two shares have the same evaluation point, or one has `x = 0`.
    #[error("bad or repeated evaluation point {0}")]
    BadPoint(u32),
    /// The shares do not lie on one polynomial of a 128-bit-halved secret.
    #[error("shares are inconsistent")]
    Inconsistent,
    /// Share bytes are not two canonical scalars.
    #[error("share bytes are not canonical scalars")]
    NotCanonical,
}

impl Share {
    /// The 64-byte encoding of the share's value (its `x` travels separately), wiped when
    /// dropped.
    pub fn value_bytes(&self) -> Zeroizing<[u8; SHARE_BYTES]> {
        let mut out = Zeroizing::new([0u8; SHARE_BYTES]);
        out[..32].copy_from_slice(self.halves[0].as_bytes());
        out[32..].copy_from_slice(self.halves[1].as_bytes());
        out
    }

    /// Decodes a share value at point `x`; rejects non-canonical scalars.
    pub fn from_value_bytes(x: u32, bytes: &[u8; SHARE_BYTES]) -> Result<Self, ShamirError> {
        let half = |range: std::ops::Range<usize>| {
            let arr = Zeroizing::new(<[u8; 32]>::try_from(&bytes[range]).expect("32-byte range"));
            Option::<Scalar>::from(Scalar::from_canonical_bytes(*arr))
                .ok_or(ShamirError::NotCanonical)
        };
        Ok(Share {
            x,
            halves: [half(0..32)?, half(32..64)?],
        })
    }
}

/// Splits `secret` into shares for the points `xs` (distinct, nonzero) with threshold `t`.
pub fn split<R: RngCore + CryptoRng>(
    secret: &[u8; 32],
    t: usize,
    xs: &[u32],
    rng: &mut R,
) -> Vec<Share> {
    assert!(
        t >= 1 && t <= xs.len(),
        "threshold {t} out of 1..={}",
        xs.len()
    );
    // The coefficients are the secret and its blinding: wiped on return.
    let polys: [Zeroizing<Vec<Scalar>>; 2] = [0, 1].map(|h| {
        let mut coeffs = Zeroizing::new(Vec::with_capacity(t));
        coeffs.push(half_to_scalar(&secret[h * 16..h * 16 + 16]));
        coeffs.extend((1..t).map(|_| random_scalar(rng)));
        coeffs
    });
    xs.iter()
        .map(|&x| {
            assert_ne!(x, 0, "x = 0 would reveal the secret");
            let at = Scalar::from(x);
            Share {
                x,
                halves: [eval(&polys[0], at), eval(&polys[1], at)],
            }
        })
        .collect()
}

/// Reconstructs the secret from the first `t` of `shares`.
pub fn reconstruct(shares: &[Share], t: usize) -> Result<[u8; 32], ShamirError> {
    if shares.len() < t || t == 0 {
        return Err(ShamirError::TooFew {
            got: shares.len(),
            need: t,
        });
    }
    let used = &shares[..t];
    let xs: Vec<Scalar> = used.iter().map(|s| Scalar::from(s.x)).collect();
    for (i, s) in used.iter().enumerate() {
        if s.x == 0 || used[..i].iter().any(|o| o.x == s.x) {
            return Err(ShamirError::BadPoint(s.x));
        }
    }
    // Lagrange basis at 0: λ_i = Π_{j≠i} x_j / (x_j - x_i).
    let mut denominators: Vec<Scalar> = (0..t)
        .map(|i| (0..t).filter(|&j| j != i).map(|j| xs[j] - xs[i]).product())
        .collect();
    Scalar::batch_invert(&mut denominators);
    let all: Scalar = xs.iter().product();
    let mut halves = Zeroizing::new([Scalar::ZERO; 2]);
    for (i, share) in used.iter().enumerate() {
        let lambda = all * xs[i].invert() * denominators[i];
        for (h, acc) in halves.iter_mut().enumerate() {
            *acc += lambda * share.halves[h];
        }
    }
    let mut secret = [0u8; 32];
    for (h, half) in halves.iter().enumerate() {
        let bytes = half.as_bytes();
        if bytes[16..].iter().any(|&b| b != 0) {
            return Err(ShamirError::Inconsistent);
        }
        secret[h * 16..h * 16 + 16].copy_from_slice(&bytes[..16]);
    }
    Ok(secret)
}

fn half_to_scalar(half: &[u8]) -> Scalar {
    let mut bytes = Zeroizing::new([0u8; 32]);
    bytes[..16].copy_from_slice(half);
    Scalar::from_bytes_mod_order(*bytes)
}

fn random_scalar<R: RngCore + CryptoRng>(rng: &mut R) -> Scalar {
    let mut wide = Zeroizing::new([0u8; 64]);
    rng.fill_bytes(wide.as_mut());
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// Horner evaluation of `coeffs[0] + coeffs[1] x + …`.
fn eval(coeffs: &[Scalar], x: Scalar) -> Scalar {
    coeffs.iter().rev().fold(Scalar::ZERO, |acc, c| acc * x + c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any `t` of the shares reconstruct; the order does not matter.
        #[test]
        fn any_t_shares_reconstruct(secret in any::<[u8; 32]>(), t in 1usize..8, extra in 0usize..6, seed in any::<u64>(), rot in 0usize..16) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let xs: Vec<u32> = (1..=(t + extra) as u32).map(|x| x * 7).collect();
            let mut shares = split(&secret, t, &xs, &mut rng);
            let len = shares.len();
            shares.rotate_left(rot % len);
            prop_assert_eq!(reconstruct(&shares, t), Ok(secret));
        }

        /// `t - 1` shares carry no information: they are consistent with every secret, so the
        /// interpolation of `t - 1` shares (as if the threshold were `t - 1`) is a random value.
        #[test]
        fn fewer_than_t_fail(secret in any::<[u8; 32]>(), t in 2usize..8, seed in any::<u64>()) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let xs: Vec<u32> = (1..=t as u32).collect();
            let shares = split(&secret, t, &xs, &mut rng);
            prop_assert_eq!(reconstruct(&shares[..t - 1], t), Err(ShamirError::TooFew { got: t - 1, need: t }));
            prop_assert_ne!(reconstruct(&shares[..t - 1], t - 1), Ok(secret));
        }
    }

    /// The secret-bearing types wipe themselves on drop: shares here, and the key types the
    /// client holds (which needs the `zeroize` features of x25519-dalek and ed25519-dalek;
    /// x25519-dalek 2 derives `Zeroize` with a wiping `Drop` but not the marker trait).
    #[test]
    fn secret_types_wipe_on_drop() {
        fn wipes_on_drop<T: ZeroizeOnDrop>() {}
        fn zeroize_with_drop<T: Zeroize>() -> bool {
            std::mem::needs_drop::<T>()
        }
        wipes_on_drop::<Share>();
        wipes_on_drop::<ed25519_dalek::SigningKey>();
        wipes_on_drop::<Zeroizing<[u8; 32]>>();
        assert!(zeroize_with_drop::<x25519_dalek::StaticSecret>());
    }

    #[test]
    fn tampered_share_is_detected() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut shares = split(&[9; 32], 3, &[1, 2, 3, 4], &mut rng);
        // A share replaced by garbage (here: shifted by a random field element) is caught; a
        // deliberately small shift is not, which is why the server checks mask keys against
        // their public keys.
        shares[1].halves[0] += random_scalar(&mut rng);
        assert_eq!(reconstruct(&shares, 3), Err(ShamirError::Inconsistent));
        let honest = [shares[0].clone(), shares[2].clone(), shares[3].clone()];
        assert_eq!(reconstruct(&honest, 3), Ok([9; 32]));
    }

    #[test]
    fn encoding_round_trips_and_rejects_non_canonical() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let share = split(&[5; 32], 2, &[3, 4], &mut rng).remove(0);
        let bytes = share.value_bytes();
        assert_eq!(Share::from_value_bytes(3, &bytes), Ok(share));

        assert_eq!(
            Share::from_value_bytes(3, &[0xff; SHARE_BYTES]),
            Err(ShamirError::NotCanonical)
        );
    }
}
