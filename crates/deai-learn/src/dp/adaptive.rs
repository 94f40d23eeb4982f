//! Adaptive clipping (Andrew et al. 2021, "Differentially Private Learning with Adaptive
//! Clipping"), server-side.
//!
//! Each round, updates are clipped to the current `C`; the share `b` of updates already within
//! `C` is released with noise `N(0, σ_b²)/m`, and `C ← C · exp(−η (b̃ − γ))` moves `C` toward the
//! `γ` quantile of update norms. The update noise multiplier is raised to
//! `σ_Δ = (σ⁻² − (2σ_b)⁻²)^(−1/2)` so the pair costs what `σ` alone would.

use rand_distr::{Distribution, Normal};

use super::{add_noise, clip_reply};
use crate::error::Result;
use crate::rng::{self, Rng};
use crate::strategy::{
    Failure, Reply, Sampling, Strategy, Streaming, TrainPlan, check_reply, streaming_of,
};

/// DP wrapper with a clipping norm that tracks a quantile of update norms.
pub struct DpAdaptive {
    inner: Box<dyn Strategy>,
    clip: f64,
    noise: f64,
    target_quantile: f64,
    clip_lr: f64,
    seed: u64,
    sampled: usize,
    within: usize,
}

impl DpAdaptive {
    /// Starts at clip norm `initial_clip` with noise multiplier `noise`, tracking the median norm.
    pub fn new(inner: Box<dyn Strategy>, initial_clip: f64, noise: f64, seed: u64) -> Self {
        Self {
            inner,
            clip: initial_clip,
            noise,
            target_quantile: 0.5,
            clip_lr: 0.2,
            seed,
            sampled: 1,
            within: 0,
        }
    }

    /// The clipping norm the next round uses.
    pub fn clip(&self) -> f64 {
        self.clip
    }

    fn sigma_b(&self) -> f64 {
        self.sampled as f64 / 20.0
    }

    fn update_noise(&self) -> f64 {
        if self.noise <= 0.0 {
            return 0.0;
        }
        let rest = self.noise.powi(-2) - (2.0 * self.sigma_b()).powi(-2);
        if rest <= 0.0 {
            f64::INFINITY
        } else {
            rest.powf(-0.5)
        }
    }

    /// Noise the model, then move the clip norm.
    fn end_round(&mut self, round: u64, mut model: Vec<f32>) -> Vec<f32> {
        let m = self.sampled.max(1) as f64;
        add_noise(
            &mut model,
            self.update_noise() * self.clip / m,
            self.seed,
            round,
        );
        let mut rng = rng::stream("deai-learn/dp-adaptive", &[self.seed, round]);
        let bit_noise = if self.noise > 0.0 {
            Normal::new(0.0, self.sigma_b())
                .expect("positive")
                .sample(&mut rng)
        } else {
            0.0
        };
        let share = (self.within as f64 + bit_noise) / m;
        self.clip *= (-self.clip_lr * (share - self.target_quantile)).exp();
        self.within = 0;
        model
    }
}

impl Strategy for DpAdaptive {
    fn name(&self) -> String {
        format!("dp-adaptive(σ={})({})", self.noise, self.inner.name())
    }

    fn sampling(&self) -> Sampling {
        self.inner.sampling()
    }

    fn configure_train(&mut self, round: u64, available: usize, rng: &mut Rng) -> TrainPlan {
        let plan = self.inner.configure_train(round, available, rng);
        self.sampled = plan.clients.len();
        plan
    }

    fn aggregate_train(
        &mut self,
        round: u64,
        global: &[f32],
        mut replies: Vec<Reply>,
        failures: &[Failure],
    ) -> Result<Vec<f32>> {
        for r in &mut replies {
            check_reply(r, global.len())?;
            self.within += usize::from(clip_reply(r, global, self.clip));
        }
        let model = self
            .inner
            .aggregate_train(round, global, replies, failures)?;
        Ok(self.end_round(round, model))
    }

    fn streaming(&mut self) -> Option<&mut dyn Streaming> {
        self.inner.streaming()?;
        Some(self)
    }
}

impl Streaming for DpAdaptive {
    fn accept(&mut self, round: u64, global: &[f32], mut reply: Reply) -> Result<()> {
        self.within += usize::from(clip_reply(&mut reply, global, self.clip));
        streaming_of(self.inner.as_mut())?.accept(round, global, reply)
    }

    fn finish(&mut self, round: u64, global: &[f32], failures: &[Failure]) -> Result<Vec<f32>> {
        let model = streaming_of(self.inner.as_mut())?.finish(round, global, failures)?;
        Ok(self.end_round(round, model))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::fedavg::FedAvg;

    #[test]
    fn clip_moves_toward_the_median_norm() {
        let mut s = DpAdaptive::new(Box::new(FedAvg::new(Sampling::count(4))), 100.0, 0.0, 1);
        let mut rng = rng::stream("t", &[0]);
        for round in 1..=60 {
            s.configure_train(round, 4, &mut rng);
            let replies = (0..4)
                .map(|c| Reply {
                    client: c,
                    params: vec![1.0 + c as f32, 0.0],
                    samples: 1,
                    loss_before: None,
                })
                .collect();
            s.aggregate_train(round, &[0.0, 0.0], replies, &[])
                .expect("valid");
        }
        assert!(s.clip() > 1.0 && s.clip() < 5.0, "clip {}", s.clip());
    }
}
