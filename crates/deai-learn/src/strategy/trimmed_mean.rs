//! Coordinate-wise trimmed mean (Yin et al. 2018): per coordinate, drop the `f` largest and `f`
//! smallest values and average the rest. Needs `n > 2f`; unweighted.

use super::{Reply, Robust, RobustRule, Sampling, checked_params};
use crate::error::{LearnError, Result};

/// Trimmed-mean aggregation.
#[derive(Debug, Clone)]
pub struct TrimmedMean {
    trim: usize,
}

impl TrimmedMean {
    /// Drops `trim` values at each end of every coordinate.
    pub fn new(sampling: Sampling, trim: usize) -> Robust<Self> {
        Robust::new(sampling, Self { trim })
    }
}

/// The trimmed mean of each coordinate; `models.len() > 2 * trim`.
pub fn trimmed_mean(models: &[&[f32]], trim: usize) -> Vec<f32> {
    let n = models.len();
    assert!(
        n > 2 * trim,
        "trimmed_mean: {n} values cannot lose {trim} at each end"
    );
    let mut column = vec![0.0f32; n];
    (0..models[0].len())
        .map(|j| {
            for (c, m) in column.iter_mut().zip(models) {
                *c = m[j];
            }
            column.sort_unstable_by(f32::total_cmp);
            let kept = &column[trim..n - trim];
            (kept.iter().map(|&v| f64::from(v)).sum::<f64>() / kept.len() as f64) as f32
        })
        .collect()
}

impl RobustRule for TrimmedMean {
    fn aggregate(&mut self, _round: u64, global: &[f32], replies: &[Reply]) -> Result<Vec<f32>> {
        let models = checked_params(replies, global.len())?;
        if models.len() <= 2 * self.trim {
            return Err(LearnError::TooFewReplies {
                rule: "trimmed-mean",
                needed: 2 * self.trim + 1,
                got: models.len(),
            });
        }
        Ok(trimmed_mean(&models, self.trim))
    }

    fn name(&self) -> String {
        format!("trimmed-mean(f={})", self.trim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// f outliers at any magnitude cannot drag the result outside the honest range.
        #[test]
        fn ignores_f_outliers(
            honest in proptest::collection::vec(-1.0f32..1.0, 3..10),
            f in 1usize..3,
            big in 1e3f32..1e9,
        ) {
            let mut rows: Vec<Vec<f32>> = honest.iter().map(|&v| vec![v]).collect();
            rows.extend((0..f).map(|i| vec![if i % 2 == 0 { big } else { -big }]));
            let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
            let m = trimmed_mean(&refs, f)[0];
            let (lo, hi) = honest.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
            prop_assert!(m >= lo - 1e-6 && m <= hi + 1e-6, "{m} outside [{lo}, {hi}]");
        }
    }
}
