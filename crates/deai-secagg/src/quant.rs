//! Clipping, unbiased stochastic quantization to integers, weighting and dequantization.
//!
//! A value `x` is clipped to `[-clip, clip]`, mapped affinely to `v ∈ [0, L]` with
//! `L = 2^level_bits - 1`, and rounded to `⌊v⌋ + 1` with probability `v - ⌊v⌋`, else `⌊v⌋`:
//! `E[q] = v`, so the quantized value is an unbiased estimate of the clipped one. A client with
//! integer weight `w` sends `w·q` per coordinate plus one last coordinate holding `w`, so the
//! aggregate carries its own total weight `W = Σ w`.
//!
//! **Error bound.** Per coordinate, each client's rounding error is `|q - v| < 1` level, i.e.
//! less than `Δ = 2·clip / L` in value. The dequantized weighted sum therefore differs from
//! `Σ w·clip(x)` by less than `W·Δ` (deterministically), and the weighted mean from the mean of
//! the clipped values by less than `Δ`; the error has mean 0 and standard deviation at most
//! `Δ·sqrt(Σ w²)/2` for the sum. No overflow: with `b` = [`Quantizer::modulus_bits`] bits,
//! `n·w_max·L < 2^b`, so the sum mod `2^b` is the true sum.

use rand_core::RngCore;
use thiserror::Error;

/// Quantization settings shared by all clients of a round.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Quantizer {
    /// Values are clipped to `[-clip, clip]`.
    pub clip: f32,
    /// Levels per coordinate are `0..=2^level_bits - 1`.
    pub level_bits: u32,
}

/// Why quantization failed.
#[derive(Debug, Error, PartialEq)]
pub enum QuantError {
    /// A value is NaN or infinite.
    #[error("value at index {index} is not finite: {value}")]
    NotFinite {
        /// Coordinate.
        index: usize,
        /// The value.
        value: f32,
    },
    /// Weight zero or above the maximum.
    #[error("weight {weight} out of 1..={max}")]
    Weight {
        /// Weight given.
        weight: u32,
        /// Maximum weight.
        max: u32,
    },
    /// The clip bound or level bits are unusable.
    #[error("clip {clip} must be finite and > 0, level bits {level_bits} in 1..=24")]
    Settings {
        /// Clip bound.
        clip: f32,
        /// Level bits.
        level_bits: u32,
    },
    /// The sum would not fit in 32 bits.
    #[error("{clients} clients × weight {weight_max} × 2^{level_bits} levels overflow 32 bits")]
    Overflow {
        /// Clients.
        clients: u32,
        /// Largest weight.
        weight_max: u32,
        /// Level bits.
        level_bits: u32,
    },
    /// The aggregate has no weight coordinate or zero total weight.
    #[error("aggregate of length {len} has total weight {weight}")]
    EmptyAggregate {
        /// Aggregate length.
        len: usize,
        /// Total weight found.
        weight: u64,
    },
}

impl Quantizer {
    /// Checks the settings.
    pub fn new(clip: f32, level_bits: u32) -> Result<Self, QuantError> {
        if !(clip.is_finite() && clip > 0.0 && (1..=24).contains(&level_bits)) {
            return Err(QuantError::Settings { clip, level_bits });
        }
        Ok(Self { clip, level_bits })
    }

    /// Largest level `L`.
    pub fn levels(&self) -> u32 {
        (1u32 << self.level_bits) - 1
    }

    /// Width of one level in value units: the bound on one client's rounding error.
    pub fn step(&self) -> f64 {
        2.0 * f64::from(self.clip) / f64::from(self.levels())
    }

    /// The smallest `b` with `clients · weight_max · L < 2^b`; at most 32.
    pub fn modulus_bits(&self, clients: u32, weight_max: u32) -> Result<u32, QuantError> {
        let max_sum = u128::from(clients) * u128::from(weight_max) * u128::from(self.levels());
        let bits = 128 - max_sum.leading_zeros();
        if bits > 32 || weight_max == 0 || clients == 0 {
            return Err(QuantError::Overflow {
                clients,
                weight_max,
                level_bits: self.level_bits,
            });
        }
        Ok(bits.max(1))
    }

    /// Quantizes `x` with weight `weight` (at most `weight_max`): `x.len() + 1` words.
    pub fn quantize<R: RngCore>(
        &self,
        x: &[f32],
        weight: u32,
        weight_max: u32,
        rng: &mut R,
    ) -> Result<Vec<u32>, QuantError> {
        if weight == 0 || weight > weight_max {
            return Err(QuantError::Weight {
                weight,
                max: weight_max,
            });
        }
        if let Some((index, &value)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(QuantError::NotFinite { index, value });
        }
        let clip = f64::from(self.clip);
        let scale = f64::from(self.levels()) / (2.0 * clip);
        let mut out: Vec<u32> = x
            .iter()
            .map(|&v| {
                let level = (f64::from(v).clamp(-clip, clip) + clip) * scale;
                let floor = level.floor();
                let up = uniform(rng) < level - floor;
                let q = (floor as u32 + u32::from(up)).min(self.levels());
                q * weight
            })
            .collect();
        out.push(weight);
        Ok(out)
    }

    /// The weighted sum `Σ w·x` and total weight `W` from an unmasked aggregate.
    pub fn dequantize_sum(&self, aggregate: &[u32]) -> Result<(Vec<f64>, u64), QuantError> {
        let (weight, coords) = match aggregate.split_last() {
            Some((&w, c)) if w > 0 => (u64::from(w), c),
            _ => {
                return Err(QuantError::EmptyAggregate {
                    len: aggregate.len(),
                    weight: aggregate.last().copied().map_or(0, u64::from),
                });
            }
        };
        let step = self.step();
        let offset = f64::from(self.clip) * weight as f64;
        let sum = coords
            .iter()
            .map(|&q| f64::from(q) * step - offset)
            .collect();
        Ok((sum, weight))
    }

    /// The weighted mean `Σ w·x / W` from an unmasked aggregate.
    pub fn dequantize_mean(&self, aggregate: &[u32]) -> Result<Vec<f32>, QuantError> {
        let (sum, weight) = self.dequantize_sum(aggregate)?;
        Ok(sum.iter().map(|s| (s / weight as f64) as f32).collect())
    }
}

/// A uniform draw in `[0, 1)` with 53 bits of precision.
fn uniform<R: RngCore>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The dequantized weighted sum is within `W·Δ` of the weighted sum of clipped values.
        #[test]
        fn error_is_within_documented_bound(
            xs in proptest::collection::vec(proptest::collection::vec(-3.0f32..3.0, 5), 1..6),
            weights in proptest::collection::vec(1u32..10, 6),
            bits in 4u32..16,
            seed in any::<u64>(),
        ) {
            let q = Quantizer::new(2.0, bits).expect("valid");
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let mut agg = vec![0u32; 6];
            let mut exact = [0f64; 5];
            for (x, &w) in xs.iter().zip(&weights) {
                let v = q.quantize(x, w, 10, &mut rng).expect("finite");
                agg.iter_mut().zip(&v).for_each(|(a, b)| *a += b);
                for (e, &xi) in exact.iter_mut().zip(x) {
                    *e += f64::from(w) * f64::from(xi.clamp(-2.0, 2.0));
                }
            }
            let (sum, total) = q.dequantize_sum(&agg).expect("weight");
            prop_assert_eq!(total, weights[..xs.len()].iter().map(|&w| u64::from(w)).sum::<u64>());
            for (s, e) in sum.iter().zip(exact) {
                prop_assert!((s - e).abs() <= total as f64 * q.step() + 1e-9, "{s} vs {e}");
            }
        }
    }

    /// Stochastic rounding is unbiased: a value a third of the way between two levels averages
    /// to it; deterministic rounding to nearest would give the lower level.
    #[test]
    fn rounding_is_unbiased() {
        let q = Quantizer::new(1.0, 2).expect("valid"); // levels 0..=3, step 2/3
        let x = -1.0 + (2.0 / 3.0) * (1.0 + 1.0 / 3.0);
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let n = 20_000;
        let total: u64 = (0..n)
            .map(|_| u64::from(q.quantize(&[x as f32], 1, 1, &mut rng).expect("ok")[0]))
            .sum();
        let mean = total as f64 / f64::from(n);
        assert!((mean - 4.0 / 3.0).abs() < 0.02, "mean level {mean}");
    }

    #[test]
    fn modulus_bits_prevent_overflow() {
        let q = Quantizer::new(1.0, 16).expect("valid");
        let b = q.modulus_bits(1000, 1).expect("fits");
        assert_eq!(b, 26);
        assert!(1000u64 * 65535 < 1 << b && 1000u64 * 65535 >= 1 << (b - 1));
        assert!(q.modulus_bits(100_000, 1000).is_err());
    }

    #[test]
    fn rejects_bad_input() {
        let q = Quantizer::new(1.0, 8).expect("valid");
        let mut rng = ChaCha20Rng::seed_from_u64(0);
        assert!(matches!(
            q.quantize(&[0.0, f32::NAN], 1, 1, &mut rng),
            Err(QuantError::NotFinite { index: 1, .. })
        ));
        assert!(matches!(
            q.quantize(&[0.0, f32::INFINITY], 1, 1, &mut rng),
            Err(QuantError::NotFinite { index: 1, .. })
        ));
        assert_eq!(
            q.quantize(&[0.0], 3, 2, &mut rng),
            Err(QuantError::Weight { weight: 3, max: 2 })
        );
        assert!(Quantizer::new(f32::NAN, 8).is_err());
    }
}
