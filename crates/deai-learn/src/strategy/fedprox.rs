//! FedProx (Li et al. 2020): FedAvg aggregation; clients add `μ/2 ‖w − w_global‖²` to their loss.

use super::fedavg::FedAvg;
use super::{Failure, Reply, Sampling, Strategy, TrainPlan};
use crate::error::Result;
use crate::rng::Rng;

/// FedAvg with a proximal term sent to clients.
#[derive(Debug, Clone)]
pub struct FedProx {
    inner: FedAvg,
    mu: f32,
}

impl FedProx {
    /// FedProx with proximal weight `mu`.
    pub fn new(sampling: Sampling, mu: f32) -> Self {
        Self {
            inner: FedAvg::new(sampling),
            mu,
        }
    }
}

impl Strategy for FedProx {
    fn name(&self) -> String {
        format!("fedprox(mu={})", self.mu)
    }

    fn sampling(&self) -> Sampling {
        self.inner.sampling()
    }

    fn configure_train(&mut self, round: u64, available: usize, rng: &mut Rng) -> TrainPlan {
        TrainPlan {
            prox_mu: Some(self.mu),
            ..self.inner.configure_train(round, available, rng)
        }
    }

    fn streaming(&self) -> bool {
        true
    }

    fn accept(&mut self, round: u64, global: &[f32], reply: Reply) -> Result<()> {
        self.inner.accept(round, global, reply)
    }

    fn finish(&mut self, round: u64, global: &[f32], failures: &[Failure]) -> Result<Vec<f32>> {
        self.inner.finish(round, global, failures)
    }
}
