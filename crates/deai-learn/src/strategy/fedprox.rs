//! FedProx (Li et al. 2020): FedAvg aggregation; clients add `μ/2 ‖w − w_global‖²` to their loss.

use super::fedavg::FedAvg;
use super::{Sampling, Strategy, Streaming, TrainPlan};
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

    fn streaming(&mut self) -> Option<&mut dyn Streaming> {
        self.inner.streaming()
    }
}
