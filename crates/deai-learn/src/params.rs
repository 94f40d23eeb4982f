//! Flat parameter vectors: the only model representation that crosses the federation.
//!
//! A model is a `Vec<f32>` in the fixed parameter order of its [`crate::model::ModelKind`].
//! Aggregation, robust rules, clipping, noise and hashing all work here and never see burn types.
//! Sums accumulate in `f64` in a fixed order, so results do not depend on thread count.

use crate::error::{LearnError, Result};

/// Checks that `values` has `expected` entries, all finite.
pub fn check(values: &[f32], expected: usize) -> Result<()> {
    if values.len() != expected {
        return Err(LearnError::WrongLength {
            expected,
            found: values.len(),
        });
    }
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(LearnError::NonFinite {
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// BLAKE3 of the little-endian bytes of `values`, as lowercase hex.
pub fn model_hash(values: &[f32]) -> String {
    let mut hasher = blake3::Hasher::new();
    for v in values {
        hasher.update(&v.to_le_bytes());
    }
    hasher.finalize().to_hex().to_string()
}

/// Euclidean norm, accumulated in `f64`.
pub fn l2_norm(values: &[f32]) -> f64 {
    values
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt()
}

/// `a - b`, element-wise.
pub fn sub(a: &[f32], b: &[f32]) -> Vec<f32> {
    debug_assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

/// `a + b`, element-wise.
pub fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    debug_assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// Euclidean distance squared between `a` and `b`, in `f64`.
pub fn dist2(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum()
}

/// Scales `values` in place so that its norm is at most `max_norm`; returns the factor applied.
pub fn clip_to_norm(values: &mut [f32], max_norm: f64) -> f64 {
    let norm = l2_norm(values);
    if norm <= max_norm || norm == 0.0 {
        return 1.0;
    }
    let factor = max_norm / norm;
    for v in values.iter_mut() {
        *v = (f64::from(*v) * factor) as f32;
    }
    factor
}

/// A weighted sum accumulated in `f64`, fed one vector at a time in a fixed order.
///
/// This is what lets a round aggregate as replies arrive: memory stays one accumulator, not one
/// copy per client.
#[derive(Debug, Clone)]
pub struct WeightedSum {
    sum: Vec<f64>,
    weight: f64,
}

impl WeightedSum {
    /// An empty sum over vectors of length `len`.
    pub fn new(len: usize) -> Self {
        Self {
            sum: vec![0.0; len],
            weight: 0.0,
        }
    }

    /// Adds `weight * values`.
    pub fn add(&mut self, values: &[f32], weight: f64) {
        assert_eq!(
            values.len(),
            self.sum.len(),
            "WeightedSum::add: length mismatch"
        );
        for (s, &v) in self.sum.iter_mut().zip(values) {
            *s += weight * f64::from(v);
        }
        self.weight += weight;
    }

    /// Merges another partial sum (added after everything already in `self`).
    pub fn merge(&mut self, other: &WeightedSum) {
        assert_eq!(
            other.sum.len(),
            self.sum.len(),
            "WeightedSum::merge: length mismatch"
        );
        for (s, o) in self.sum.iter_mut().zip(&other.sum) {
            *s += o;
        }
        self.weight += other.weight;
    }

    /// Total weight added so far.
    pub fn weight(&self) -> f64 {
        self.weight
    }

    /// The weighted mean `Σ wᵢ vᵢ / Σ wᵢ`, or `None` when no weight was added.
    pub fn mean(&self) -> Option<Vec<f32>> {
        (self.weight > 0.0).then(|| self.sum.iter().map(|s| (s / self.weight) as f32).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names_the_problem() {
        assert!(matches!(
            check(&[1.0], 2),
            Err(LearnError::WrongLength {
                expected: 2,
                found: 1
            })
        ));
        assert!(matches!(
            check(&[1.0, f32::NAN], 2),
            Err(LearnError::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            check(&[f32::INFINITY, 0.0], 2),
            Err(LearnError::NonFinite { index: 0, .. })
        ));
        assert!(check(&[1.0, 2.0], 2).is_ok());
    }

    #[test]
    fn hash_is_of_le_bytes() {
        let expected = blake3::hash(&[0, 0, 0x80, 0x3f, 0, 0, 0, 0x40])
            .to_hex()
            .to_string();
        assert_eq!(model_hash(&[1.0, 2.0]), expected);
    }

    #[test]
    fn clipping_bounds_the_norm() {
        let mut v = vec![3.0, 4.0];
        let f = clip_to_norm(&mut v, 1.0);
        assert!((f - 0.2).abs() < 1e-12);
        assert!((l2_norm(&v) - 1.0).abs() < 1e-6);
    }
}
