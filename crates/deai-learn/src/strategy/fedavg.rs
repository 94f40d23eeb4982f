//! FedAvg (McMahan et al. 2017): the new global model is `Σ nᵢ wᵢ / Σ nᵢ`.
//!
//! Streaming: one `f64` accumulator per round, fed in client-id order.

use super::{Failure, Reply, Sampling, Strategy, Streaming, check_reply};
use crate::error::{LearnError, Result};
use crate::params::WeightedSum;

/// Sample-weighted model averaging.
#[derive(Debug, Clone)]
pub struct FedAvg {
    sampling: Sampling,
    sum: Option<WeightedSum>,
}

impl FedAvg {
    /// FedAvg sampling clients as `sampling` says.
    pub fn new(sampling: Sampling) -> Self {
        Self {
            sampling,
            sum: None,
        }
    }

    /// The running weighted mean of this round, consumed.
    pub(crate) fn take_mean(&mut self, round: u64) -> Result<Vec<f32>> {
        self.sum
            .take()
            .and_then(|s| s.mean())
            .ok_or(LearnError::NoReplies { round })
    }
}

impl Strategy for FedAvg {
    fn name(&self) -> String {
        "fedavg".into()
    }

    fn sampling(&self) -> Sampling {
        self.sampling
    }

    fn streaming(&mut self) -> Option<&mut dyn Streaming> {
        Some(self)
    }
}

impl Streaming for FedAvg {
    fn accept(&mut self, _round: u64, global: &[f32], reply: Reply) -> Result<()> {
        check_reply(&reply, global.len())?;
        self.sum
            .get_or_insert_with(|| WeightedSum::new(global.len()))
            .add(&reply.params, reply.samples as f64);
        Ok(())
    }

    fn finish(&mut self, round: u64, _global: &[f32], _failures: &[Failure]) -> Result<Vec<f32>> {
        self.take_mean(round)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::tests::reply;

    #[test]
    fn weights_by_samples() {
        let mut s = FedAvg::new(Sampling::count(2));
        let out = s
            .aggregate_train(
                1,
                &[0.0],
                vec![reply(0, vec![1.0], 1), reply(1, vec![4.0], 3)],
                &[],
            )
            .expect("valid");
        assert_eq!(out, vec![3.25]);
    }
}
