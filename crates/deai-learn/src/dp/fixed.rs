//! Fixed clipping with Gaussian noise, server-side or client-side (Flower's
//! `DifferentialPrivacy{Server,Client}SideFixedClipping`).

use super::{add_noise, clip_reply};
use crate::error::Result;
use crate::rng::Rng;
use crate::strategy::{Failure, Reply, Sampling, Strategy, Streaming, TrainPlan, streaming_of};

/// DP wrapper with a fixed clipping norm.
pub struct DpFixed {
    inner: Box<dyn Strategy>,
    clip: f64,
    noise: f64,
    client_side: bool,
    seed: u64,
    sampled: usize,
}

impl DpFixed {
    /// Clip to `clip`, noise multiplier `noise`; clipping on clients when `client_side`.
    pub fn new(
        inner: Box<dyn Strategy>,
        clip: f64,
        noise: f64,
        client_side: bool,
        seed: u64,
    ) -> Self {
        Self {
            inner,
            clip,
            noise,
            client_side,
            seed,
            sampled: 1,
        }
    }

    fn noised(&self, round: u64, mut model: Vec<f32>) -> Vec<f32> {
        add_noise(
            &mut model,
            self.noise * self.clip / self.sampled.max(1) as f64,
            self.seed,
            round,
        );
        model
    }
}

impl Strategy for DpFixed {
    fn name(&self) -> String {
        let side = if self.client_side { "client" } else { "server" };
        format!(
            "dp-fixed-{side}(C={}, σ={})({})",
            self.clip,
            self.noise,
            self.inner.name()
        )
    }

    fn sampling(&self) -> Sampling {
        self.inner.sampling()
    }

    fn configure_train(&mut self, round: u64, available: usize, rng: &mut Rng) -> TrainPlan {
        let mut plan = self.inner.configure_train(round, available, rng);
        self.sampled = plan.clients.len();
        if self.client_side {
            plan.client_clip = Some(self.clip);
        }
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
            crate::strategy::check_reply(r, global.len())?;
            clip_reply(r, global, self.clip);
        }
        let model = self
            .inner
            .aggregate_train(round, global, replies, failures)?;
        Ok(self.noised(round, model))
    }

    fn streaming(&mut self) -> Option<&mut dyn Streaming> {
        self.inner.streaming()?;
        Some(self)
    }
}

impl Streaming for DpFixed {
    fn accept(&mut self, round: u64, global: &[f32], mut reply: Reply) -> Result<()> {
        // Client-side mode re-clips too: a no-op for honest clients, a bound for the rest.
        clip_reply(&mut reply, global, self.clip);
        streaming_of(self.inner.as_mut())?.accept(round, global, reply)
    }

    fn finish(&mut self, round: u64, global: &[f32], failures: &[Failure]) -> Result<Vec<f32>> {
        let model = streaming_of(self.inner.as_mut())?.finish(round, global, failures)?;
        Ok(self.noised(round, model))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{l2_norm, sub};
    use crate::strategy::fedavg::FedAvg;

    #[test]
    fn without_noise_the_update_norm_is_bounded_by_clip() {
        let mut s = DpFixed::new(
            Box::new(FedAvg::new(Sampling::count(2))),
            0.5,
            0.0,
            false,
            1,
        );
        let replies = vec![
            Reply {
                client: 0,
                params: vec![10.0, 0.0],
                samples: 5,
                loss_before: None,
            },
            Reply {
                client: 1,
                params: vec![0.0, 10.0],
                samples: 1,
                loss_before: None,
            },
        ];
        let out = s
            .aggregate_train(1, &[0.0, 0.0], replies, &[])
            .expect("valid");
        assert!(l2_norm(&sub(&out, &[0.0, 0.0])) <= 0.5 + 1e-6);
        assert!(
            (out[0] - out[1]).abs() < 1e-6,
            "equal weights after DP: {out:?}"
        );
    }
}
