//! Server momentum around any rule: `v ← β v + (rule(replies) − w)`, `w ← w + η v`.
//!
//! Karimireddy, He & Jaggi (ICML 2021) show momentum is what makes a robust rule robust over
//! time: an attacker's bias that survives one round's filter is averaged against many rounds of
//! honest updates, and the variance the robust rule adds is damped. With sampled, stateless
//! clients the momentum lives on the server (as in FedAvgM).

use super::{Failure, Reply, Sampling, Strategy, Streaming, streaming_of};
use crate::error::Result;

/// A rule followed by server momentum.
pub struct ServerMomentum {
    inner: Box<dyn Strategy>,
    name: String,
    server_lr: f32,
    beta: f32,
    velocity: Vec<f32>,
}

impl ServerMomentum {
    /// Momentum `beta` in `[0, 1)` on the steps `inner` takes, scaled by `server_lr`; named
    /// `RULE+momentum(β)`.
    pub fn new(inner: Box<dyn Strategy>, server_lr: f32, beta: f32) -> Self {
        Self {
            name: format!("{}+momentum({beta})", inner.name()),
            inner,
            server_lr,
            beta,
            velocity: Vec::new(),
        }
    }

    /// The same, reported under `name` (a rule with a name of its own, such as FedAvgM).
    pub fn named(self, name: &str) -> Self {
        Self {
            name: name.into(),
            ..self
        }
    }

    fn step(&mut self, global: &[f32], next: &[f32]) -> Vec<f32> {
        if self.velocity.len() != global.len() {
            self.velocity = vec![0.0; global.len()];
        }
        global
            .iter()
            .zip(next)
            .zip(self.velocity.iter_mut())
            .map(|((g, n), v)| {
                *v = self.beta * *v + (n - g);
                g + self.server_lr * *v
            })
            .collect()
    }
}

impl Strategy for ServerMomentum {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn sampling(&self) -> Sampling {
        self.inner.sampling()
    }

    fn aggregate_train(
        &mut self,
        round: u64,
        global: &[f32],
        replies: Vec<Reply>,
        failures: &[Failure],
    ) -> Result<Vec<f32>> {
        let next = self
            .inner
            .aggregate_train(round, global, replies, failures)?;
        Ok(self.step(global, &next))
    }

    fn streaming(&mut self) -> Option<&mut dyn Streaming> {
        self.inner.streaming()?;
        Some(self)
    }
}

impl Streaming for ServerMomentum {
    fn accept(&mut self, round: u64, global: &[f32], reply: Reply) -> Result<()> {
        streaming_of(self.inner.as_mut())?.accept(round, global, reply)
    }

    fn finish(&mut self, round: u64, global: &[f32], failures: &[Failure]) -> Result<Vec<f32>> {
        let next = streaming_of(self.inner.as_mut())?.finish(round, global, failures)?;
        Ok(self.step(global, &next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::{fedavg::FedAvg, tests::reply};

    #[test]
    fn a_constant_step_accumulates_toward_step_over_one_minus_beta() {
        let mut s = ServerMomentum::new(Box::new(FedAvg::new(Sampling::count(1))), 1.0, 0.5);
        let mut w = vec![0.0f32];
        let mut steps = Vec::new();
        for round in 1..=20 {
            let replies = vec![reply(0, vec![w[0] + 1.0], 1)];
            let next = s.aggregate_train(round, &w, replies, &[]).expect("valid");
            steps.push(next[0] - w[0]);
            w = next;
        }
        assert!((steps[0] - 1.0).abs() < 1e-6);
        assert!((steps[1] - 1.5).abs() < 1e-6);
        assert!((steps[19] - 2.0).abs() < 1e-4, "{steps:?}");
    }
}
