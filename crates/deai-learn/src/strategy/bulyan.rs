//! Bulyan (El Mhamdi et al. 2018): pick `θ = n − 2f` models by repeated Krum, then per
//! coordinate average the `β = θ − 2f` values closest to their median. Needs `n ≥ 4f + 3`.

use super::krum::{need, select};
use super::{Reply, Robust, RobustRule, Sampling, checked_params};
use crate::error::Result;

/// Bulyan aggregation for `f` Byzantine clients.
#[derive(Debug, Clone)]
pub struct Bulyan {
    f: usize,
}

impl Bulyan {
    /// Bulyan assuming `f` Byzantine clients.
    pub fn new(sampling: Sampling, f: usize) -> Robust<Self> {
        Robust::new(sampling, Self { f })
    }
}

/// Bulyan of `models` (`n ≥ 4f + 3`).
pub fn bulyan(models: &[&[f32]], f: usize) -> Vec<f32> {
    let theta = models.len() - 2 * f;
    let mut left: Vec<usize> = (0..models.len()).collect();
    let mut chosen = Vec::with_capacity(theta);
    while chosen.len() < theta {
        let pool: Vec<&[f32]> = left.iter().map(|&i| models[i]).collect();
        let best = select(&pool, f, 1)[0];
        chosen.push(models[left.remove(best)]);
    }
    let beta = theta - 2 * f;
    let mut column = vec![0.0f32; theta];
    (0..models[0].len())
        .map(|j| {
            for (c, m) in column.iter_mut().zip(&chosen) {
                *c = m[j];
            }
            column.sort_unstable_by(f32::total_cmp);
            let median = if theta % 2 == 1 {
                column[theta / 2]
            } else {
                (column[theta / 2 - 1] + column[theta / 2]) / 2.0
            };
            let mut by_distance = column.clone();
            by_distance.sort_by(|a, b| {
                (a - median)
                    .abs()
                    .total_cmp(&(b - median).abs())
                    .then(a.total_cmp(b))
            });
            let kept = &by_distance[..beta];
            (kept.iter().map(|&v| f64::from(v)).sum::<f64>() / beta as f64) as f32
        })
        .collect()
}

impl RobustRule for Bulyan {
    fn aggregate(&mut self, _round: u64, global: &[f32], replies: &[Reply]) -> Result<Vec<f32>> {
        let models = checked_params(replies, global.len())?;
        need("bulyan", models.len(), 4 * self.f + 3)?;
        Ok(bulyan(&models, self.f))
    }

    fn name(&self) -> String {
        format!("bulyan(f={})", self.f)
    }
}
