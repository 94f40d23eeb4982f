//! Krum and Multi-Krum (Blanchard et al. 2017).
//!
//! Each model's score is the sum of squared distances to its `n − f − 2` nearest others; Krum
//! returns the lowest-scoring model, Multi-Krum the mean of the `m` lowest. Needs `n ≥ 2f + 3`.
//! Ties break toward the lower client id (replies are sorted), so results are deterministic.

use super::{Reply, Robust, RobustRule, Sampling, checked_params};
use crate::error::{LearnError, Result};
use crate::params::{WeightedSum, dist2};

/// Krum (`select = 1`) or Multi-Krum (`select = m`, or `0` for `n − f`).
#[derive(Debug, Clone)]
pub struct Krum {
    f: usize,
    select: usize,
}

impl Krum {
    /// Krum assuming `f` Byzantine clients, averaging the `select` best (0 = `n − f`).
    pub fn new(sampling: Sampling, f: usize, select: usize) -> Robust<Self> {
        Robust::new(sampling, Self { f, select })
    }
}

/// Krum scores of `models` for `f` Byzantine ones.
pub fn scores(models: &[&[f32]], f: usize) -> Vec<f64> {
    let n = models.len();
    let mut d = vec![0.0f64; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let v = dist2(models[i], models[j]);
            d[i * n + j] = v;
            d[j * n + i] = v;
        }
    }
    let neighbours = n.saturating_sub(f + 2).max(1);
    (0..n)
        .map(|i| {
            let mut row: Vec<f64> = (0..n).filter(|&j| j != i).map(|j| d[i * n + j]).collect();
            row.sort_unstable_by(f64::total_cmp);
            row.iter().take(neighbours).sum()
        })
        .collect()
}

/// Indices of the `m` lowest Krum scores, best first (stable on ties).
pub fn select(models: &[&[f32]], f: usize, m: usize) -> Vec<usize> {
    let s = scores(models, f);
    let mut order: Vec<usize> = (0..models.len()).collect();
    order.sort_by(|&a, &b| s[a].total_cmp(&s[b]));
    order.truncate(m);
    order
}

/// Checks `n ≥ 2f + 3`.
pub(crate) fn need(rule: &'static str, n: usize, needed: usize) -> Result<()> {
    if n < needed {
        return Err(LearnError::TooFewReplies {
            rule,
            needed,
            got: n,
        });
    }
    Ok(())
}

impl RobustRule for Krum {
    fn aggregate(&mut self, _round: u64, global: &[f32], replies: &[Reply]) -> Result<Vec<f32>> {
        let models = checked_params(replies, global.len())?;
        need("krum", models.len(), 2 * self.f + 3)?;
        let m = if self.select == 0 {
            models.len() - self.f
        } else {
            self.select
        };
        let mut sum = WeightedSum::new(global.len());
        for i in select(&models, self.f, m) {
            sum.add(models[i], 1.0);
        }
        Ok(sum.mean().expect("at least one model selected"))
    }

    fn name(&self) -> String {
        if self.select == 1 {
            format!("krum(f={})", self.f)
        } else {
            format!("multi-krum(f={})", self.f)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn krum_never_picks_the_outlier() {
        let rows = [
            vec![0.0f32, 0.1],
            vec![0.1, 0.0],
            vec![0.05, 0.05],
            vec![0.0, 0.0],
            vec![50.0, -50.0],
        ];
        let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        let picked = select(&refs, 1, 4);
        assert!(!picked.contains(&4), "{picked:?}");
    }
}
