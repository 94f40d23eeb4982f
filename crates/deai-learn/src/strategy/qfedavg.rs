//! q-FedAvg (Li et al. 2020, "Fair Resource Allocation in Federated Learning").
//!
//! With `L = 1/η_local`, `Δₖ = L (w − wₖ)`, `hₖ = q Fₖ^{q−1} ‖Δₖ‖² + L Fₖ^q` where `Fₖ` is client
//! k's loss at the global model: `w ← w − Σ Fₖ^q Δₖ / Σ hₖ`. `q = 0` is the unweighted mean;
//! larger `q` favours clients with high loss. Streaming: two running sums.

use super::{Failure, Reply, Sampling, Strategy, Streaming, TrainPlan, check_reply};
use crate::error::{LearnError, Result};
use crate::rng::Rng;

/// Fairness-weighted averaging.
#[derive(Debug, Clone)]
pub struct QFedAvg {
    sampling: Sampling,
    q: f64,
    lipschitz: f64,
    num: Vec<f64>,
    den: f64,
}

impl QFedAvg {
    /// q-FedAvg with fairness `q` for clients training with learning rate `local_lr`.
    pub fn new(sampling: Sampling, q: f64, local_lr: f64) -> Self {
        Self {
            sampling,
            q,
            lipschitz: 1.0 / local_lr,
            num: Vec::new(),
            den: 0.0,
        }
    }
}

impl Strategy for QFedAvg {
    fn name(&self) -> String {
        format!("qfedavg(q={})", self.q)
    }

    fn sampling(&self) -> Sampling {
        self.sampling
    }

    fn configure_train(&mut self, _round: u64, available: usize, rng: &mut Rng) -> TrainPlan {
        TrainPlan {
            clients: self.sampling.sample(available, rng),
            prox_mu: None,
            want_loss_before: true,
            client_clip: None,
        }
    }

    fn streaming(&mut self) -> Option<&mut dyn Streaming> {
        Some(self)
    }
}

impl Streaming for QFedAvg {
    fn accept(&mut self, _round: u64, global: &[f32], reply: Reply) -> Result<()> {
        check_reply(&reply, global.len())?;
        let loss = match reply.loss_before {
            Some(l) if l.is_finite() && l >= 0.0 => l.max(1e-10),
            other => {
                let reason = format!("client {} sent loss_before {other:?}", reply.client);
                return Err(LearnError::config(
                    "loss_before",
                    format!("{other:?}"),
                    reason,
                ));
            }
        };
        if self.num.len() != global.len() {
            self.num = vec![0.0; global.len()];
            self.den = 0.0;
        }
        let fq = loss.powf(self.q);
        let mut norm2 = 0.0;
        for ((n, &g), &w) in self.num.iter_mut().zip(global).zip(&reply.params) {
            let delta = self.lipschitz * (f64::from(g) - f64::from(w));
            norm2 += delta * delta;
            *n += fq * delta;
        }
        self.den += self.q * loss.powf(self.q - 1.0) * norm2 + self.lipschitz * fq;
        Ok(())
    }

    fn finish(&mut self, round: u64, global: &[f32], _failures: &[Failure]) -> Result<Vec<f32>> {
        if self.den <= 0.0 || self.num.len() != global.len() {
            return Err(LearnError::NoReplies { round });
        }
        let out = global
            .iter()
            .zip(&self.num)
            .map(|(&g, n)| (f64::from(g) - n / self.den) as f32)
            .collect();
        self.num.clear();
        self.den = 0.0;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::tests::reply;

    #[test]
    fn q_zero_is_the_unweighted_mean() {
        let mut s = QFedAvg::new(Sampling::count(2), 0.0, 0.1);
        let replies = vec![reply(0, vec![1.0], 1), reply(1, vec![3.0], 100)];
        let out = s.aggregate_train(1, &[0.0], replies, &[]).expect("valid");
        assert!((out[0] - 2.0).abs() < 1e-6, "{out:?}");
    }

    #[test]
    fn high_q_favours_the_worse_client() {
        let mut s = QFedAvg::new(Sampling::count(2), 5.0, 0.1);
        let mut a = reply(0, vec![1.0], 1);
        a.loss_before = Some(0.1);
        let mut b = reply(1, vec![-1.0], 1);
        b.loss_before = Some(2.0);
        let out = s
            .aggregate_train(1, &[0.0], vec![a, b], &[])
            .expect("valid");
        assert!(out[0] < 0.0, "moves toward the high-loss client: {out:?}");
    }
}
