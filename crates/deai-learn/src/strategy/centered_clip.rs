//! Clipping rules on updates `Δᵢ = wᵢ − w_global`.
//!
//! - [`NormBounded`] (Sun et al. 2019): clip every `Δᵢ` to norm `τ`, then average.
//! - [`CenteredClip`] (Karimireddy et al. 2021): starting from the coordinate-wise median `v`,
//!   repeat `v ← v + mean(clip(Δᵢ − v, τ))`.
//!
//! `τ` is a multiple of the round's median update norm (median distance to the start, for
//! CenteredClip), so it adapts to the task's scale; a majority of honest clients bounds it.

use super::median::coordinate_median;
use super::{Reply, Robust, RobustRule, Sampling, checked_params};
use crate::error::{LearnError, Result};
use crate::params::{WeightedSum, clip_to_norm, l2_norm, sub};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_unstable_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn deltas(round: u64, global: &[f32], replies: &[Reply]) -> Result<Vec<Vec<f32>>> {
    let models = checked_params(replies, global.len())?;
    if models.is_empty() {
        return Err(LearnError::NoReplies { round });
    }
    Ok(models.iter().map(|m| sub(m, global)).collect())
}

/// Norm-bounded averaging.
#[derive(Debug, Clone)]
pub struct NormBounded {
    scale: f64,
}

impl NormBounded {
    /// Clips updates to `scale ×` the round's median update norm.
    pub fn new(sampling: Sampling, scale: f64) -> Robust<Self> {
        Robust::new(sampling, Self { scale })
    }
}

impl RobustRule for NormBounded {
    fn aggregate(&mut self, round: u64, global: &[f32], replies: &[Reply]) -> Result<Vec<f32>> {
        let mut ds = deltas(round, global, replies)?;
        let tau = self.scale * median(ds.iter().map(|d| l2_norm(d)).collect());
        let mut sum = WeightedSum::new(global.len());
        for (d, r) in ds.iter_mut().zip(replies) {
            clip_to_norm(d, tau);
            sum.add(d, r.samples as f64);
        }
        let mean = sum.mean().expect("non-empty round");
        Ok(global.iter().zip(&mean).map(|(g, d)| g + d).collect())
    }

    fn name(&self) -> String {
        "norm-clip".into()
    }
}

/// Centered clipping.
#[derive(Debug, Clone)]
pub struct CenteredClip {
    scale: f64,
    iterations: usize,
}

impl CenteredClip {
    /// `iterations` rounds of clipping at `scale ×` the median distance to the start point.
    pub fn new(sampling: Sampling, scale: f64, iterations: usize) -> Robust<Self> {
        Robust::new(sampling, Self { scale, iterations })
    }
}

impl RobustRule for CenteredClip {
    fn aggregate(&mut self, round: u64, global: &[f32], replies: &[Reply]) -> Result<Vec<f32>> {
        let ds = deltas(round, global, replies)?;
        let refs: Vec<&[f32]> = ds.iter().map(Vec::as_slice).collect();
        let mut v = coordinate_median(&refs);
        let tau = self.scale * median(ds.iter().map(|d| l2_norm(&sub(d, &v))).collect());
        for _ in 0..self.iterations {
            let mut sum = WeightedSum::new(v.len());
            for d in &ds {
                let mut step = sub(d, &v);
                clip_to_norm(&mut step, tau);
                sum.add(&step, 1.0);
            }
            let mean = sum.mean().expect("non-empty round");
            v.iter_mut().zip(&mean).for_each(|(a, b)| *a += b);
        }
        Ok(global.iter().zip(&v).map(|(g, d)| g + d).collect())
    }

    fn name(&self) -> String {
        "centered-clip".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::tests::reply;

    #[test]
    fn one_huge_update_moves_the_result_little() {
        let mut replies: Vec<Reply> = (0..6)
            .map(|c| reply(c, vec![1.0 + c as f32 * 0.01, 1.0], 1))
            .collect();
        replies.push(reply(6, vec![1e6, -1e6], 1));
        for mut s in [
            Box::new(NormBounded::new(Sampling::count(7), 1.0))
                as Box<dyn crate::strategy::Strategy>,
            Box::new(CenteredClip::new(Sampling::count(7), 1.0, 3)),
        ] {
            let out = s
                .aggregate_train(1, &[0.0, 0.0], replies.clone(), &[])
                .expect("valid");
            assert!(
                l2_norm(&sub(&out, &[1.0, 1.0])) < 0.5,
                "{}: {out:?}",
                s.name()
            );
        }
    }
}
