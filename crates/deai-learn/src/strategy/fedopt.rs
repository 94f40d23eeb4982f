//! Adaptive server optimisers (Reddi et al. 2021, "Adaptive Federated Optimization"), shared by
//! FedAdagrad, FedAdam and FedYogi: with `Δ = mean − w_global`,
//! `m ← β₁ m + (1 − β₁) Δ`, `v ←` (per rule), `w ← w_global + η m / (√v + τ)`.

use super::fedavg::FedAvg;
use crate::error::Result;

/// Hyper-parameters of the adaptive server optimisers.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ServerOpt {
    /// Server learning rate η.
    pub eta: f32,
    /// First-moment decay β₁.
    pub beta1: f32,
    /// Second-moment decay β₂.
    pub beta2: f32,
    /// Adaptivity τ (larger = closer to FedAvgM).
    pub tau: f32,
}

impl Default for ServerOpt {
    fn default() -> Self {
        Self {
            eta: 0.01,
            beta1: 0.9,
            beta2: 0.99,
            tau: 1e-3,
        }
    }
}

/// How the second moment is updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    Adagrad,
    Adam,
    Yogi,
}

/// Shared state: the FedAvg mean plus the two moments.
#[derive(Debug, Clone)]
pub(crate) struct FedOpt {
    pub(crate) inner: FedAvg,
    opt: ServerOpt,
    rule: Rule,
    m: Vec<f32>,
    v: Vec<f32>,
}

impl FedOpt {
    pub(crate) fn new(inner: FedAvg, opt: ServerOpt, rule: Rule) -> Self {
        Self {
            inner,
            opt,
            rule,
            m: Vec::new(),
            v: Vec::new(),
        }
    }

    /// One server step from `global` toward this round's mean.
    pub(crate) fn step(&mut self, round: u64, global: &[f32]) -> Result<Vec<f32>> {
        let mean = self.inner.take_mean(round)?;
        if self.m.len() != global.len() {
            self.m = vec![0.0; global.len()];
            // Reddi et al. start v at τ² so the first step is bounded.
            self.v = vec![self.opt.tau * self.opt.tau; global.len()];
        }
        let ServerOpt {
            eta,
            beta1,
            beta2,
            tau,
        } = self.opt;
        let mut out = Vec::with_capacity(global.len());
        for (i, (&g, &a)) in global.iter().zip(&mean).enumerate() {
            let d = a - g;
            let m = beta1 * self.m[i] + (1.0 - beta1) * d;
            let d2 = d * d;
            let v = match self.rule {
                Rule::Adagrad => self.v[i] + d2,
                Rule::Adam => beta2 * self.v[i] + (1.0 - beta2) * d2,
                Rule::Yogi => self.v[i] - (1.0 - beta2) * d2 * (self.v[i] - d2).signum(),
            };
            self.m[i] = m;
            self.v[i] = v;
            out.push(g + eta * m / (v.sqrt() + tau));
        }
        Ok(out)
    }
}

/// Implements [`super::Strategy`] for a newtype around [`FedOpt`].
macro_rules! fedopt_strategy {
    ($ty:ident, $name:literal, $rule:expr) => {
        impl $ty {
            /// This optimiser with hyper-parameters `opt`.
            pub fn new(sampling: super::Sampling, opt: super::fedopt::ServerOpt) -> Self {
                Self(super::fedopt::FedOpt::new(
                    super::fedavg::FedAvg::new(sampling),
                    opt,
                    $rule,
                ))
            }
        }

        impl super::Strategy for $ty {
            fn name(&self) -> String {
                $name.into()
            }

            fn sampling(&self) -> super::Sampling {
                super::Strategy::sampling(&self.0.inner)
            }

            fn streaming(&mut self) -> Option<&mut dyn super::Streaming> {
                Some(self)
            }
        }

        impl super::Streaming for $ty {
            fn accept(
                &mut self,
                round: u64,
                global: &[f32],
                reply: super::Reply,
            ) -> crate::error::Result<()> {
                super::Streaming::accept(&mut self.0.inner, round, global, reply)
            }

            fn finish(
                &mut self,
                round: u64,
                global: &[f32],
                _failures: &[super::Failure],
            ) -> crate::error::Result<Vec<f32>> {
                self.0.step(round, global)
            }
        }
    };
}
pub(crate) use fedopt_strategy;

#[cfg(test)]
mod tests {
    use super::super::{Strategy, fedadagrad::FedAdagrad, fedadam::FedAdam, fedyogi::FedYogi};
    use super::*;
    use crate::strategy::{Sampling, tests::reply};

    #[test]
    fn server_optimisers_step_toward_the_mean() {
        let opt = ServerOpt::default();
        let mut all: Vec<Box<dyn Strategy>> = vec![
            Box::new(FedAdagrad::new(Sampling::count(1), opt)),
            Box::new(FedAdam::new(Sampling::count(1), opt)),
            Box::new(FedYogi::new(Sampling::count(1), opt)),
        ];
        for s in &mut all {
            let out = s
                .aggregate_train(1, &[0.0, 0.0], vec![reply(0, vec![1.0, -2.0], 1)], &[])
                .expect("valid");
            assert!(out[0] > 0.0 && out[1] < 0.0, "{}: {out:?}", s.name());
            assert!(
                out[0] <= opt.eta && out[1] >= -opt.eta,
                "{}: step bounded by eta",
                s.name()
            );
        }
    }
}
