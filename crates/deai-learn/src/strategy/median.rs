//! FedMedian (Yin et al. 2018): the coordinate-wise median of the clients' models.
//! Unweighted; with an even count, the mean of the two middle values. Tolerates up to
//! ⌈n/2⌉ − 1 arbitrary replies per coordinate.

use super::{Reply, Robust, RobustRule, Sampling, checked_params};
use crate::error::{LearnError, Result};

/// Coordinate-wise median aggregation.
#[derive(Debug, Clone)]
pub struct FedMedian;

impl FedMedian {
    /// FedMedian sampling as `sampling` says.
    pub fn new(sampling: Sampling) -> Robust<Self> {
        Robust::new(sampling, Self)
    }
}

/// Median of each coordinate over `models` (non-empty, equal lengths).
pub fn coordinate_median(models: &[&[f32]]) -> Vec<f32> {
    let n = models.len();
    let mut column = vec![0.0f32; n];
    (0..models[0].len())
        .map(|j| {
            for (c, m) in column.iter_mut().zip(models) {
                *c = m[j];
            }
            column.sort_unstable_by(f32::total_cmp);
            if n % 2 == 1 {
                column[n / 2]
            } else {
                (column[n / 2 - 1] + column[n / 2]) / 2.0
            }
        })
        .collect()
}

impl RobustRule for FedMedian {
    fn aggregate(&mut self, round: u64, global: &[f32], replies: &[Reply]) -> Result<Vec<f32>> {
        let models = checked_params(replies, global.len())?;
        if models.is_empty() {
            return Err(LearnError::NoReplies { round });
        }
        Ok(coordinate_median(&models))
    }

    fn name(&self) -> String {
        "median".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// With f < n/2 outliers, the median stays within the honest values' range.
        #[test]
        fn ignores_a_minority_of_outliers(
            honest in proptest::collection::vec(-1.0f32..1.0, 3..10),
            outlier in prop_oneof![Just(1e6f32), Just(-1e6f32)],
        ) {
            let f = (honest.len() - 1) / 2;
            let mut rows: Vec<Vec<f32>> = honest.iter().map(|&v| vec![v]).collect();
            rows.extend(std::iter::repeat_n(vec![outlier], f));
            let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
            let m = coordinate_median(&refs)[0];
            let (lo, hi) = honest.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
            prop_assert!(m >= lo && m <= hi, "{m} outside [{lo}, {hi}]");
        }
    }
}
