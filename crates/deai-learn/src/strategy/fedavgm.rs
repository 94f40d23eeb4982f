//! FedAvgM (Hsu et al. 2019): server momentum on the pseudo-gradient `Δ = w_global − mean`:
//! `v ← β v + Δ`, `w ← w_global − η v`.

use super::fedavg::FedAvg;
use super::{Failure, Reply, Sampling, Strategy};
use crate::error::Result;

/// FedAvg with server-side momentum.
#[derive(Debug, Clone)]
pub struct FedAvgM {
    inner: FedAvg,
    server_lr: f32,
    momentum: f32,
    velocity: Vec<f32>,
}

impl FedAvgM {
    /// FedAvgM with server learning rate `server_lr` and momentum `momentum`.
    pub fn new(sampling: Sampling, server_lr: f32, momentum: f32) -> Self {
        Self {
            inner: FedAvg::new(sampling),
            server_lr,
            momentum,
            velocity: Vec::new(),
        }
    }
}

impl Strategy for FedAvgM {
    fn name(&self) -> String {
        "fedavgm".into()
    }

    fn sampling(&self) -> Sampling {
        self.inner.sampling()
    }

    fn streaming(&self) -> bool {
        true
    }

    fn accept(&mut self, round: u64, global: &[f32], reply: Reply) -> Result<()> {
        self.inner.accept(round, global, reply)
    }

    fn finish(&mut self, round: u64, global: &[f32], _failures: &[Failure]) -> Result<Vec<f32>> {
        let mean = self.inner.take_mean(round)?;
        if self.velocity.len() != global.len() {
            self.velocity = vec![0.0; global.len()];
        }
        Ok(global
            .iter()
            .zip(&mean)
            .zip(self.velocity.iter_mut())
            .map(|((g, m), v)| {
                *v = self.momentum * *v + (g - m);
                g - self.server_lr * *v
            })
            .collect())
    }
}
