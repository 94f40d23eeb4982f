//! Local training on flat parameters: SGD (momentum, weight decay), Adam, and FedProx's
//! proximal term, over shuffled mini-batches.
//!
//! The sample order of each epoch is a Fisher–Yates shuffle drawn from the client's own
//! generator; batches are consecutive slices of that order, the last one smaller.

use rand::seq::SliceRandom;

use super::{ModelKind, loss_and_grad};
use crate::data::Dataset;
use crate::error::{LearnError, Result};
use crate::rng::Rng;

/// The optimiser a client runs locally.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub enum Optimizer {
    /// `v ← μ v + g + λ w; w ← w − η v` (plain SGD when μ = λ = 0).
    Sgd {
        /// Momentum μ.
        momentum: f32,
        /// Weight decay λ (L2, added to the gradient).
        weight_decay: f32,
    },
    /// Adam (Kingma & Ba) with bias correction; weight decay added to the gradient.
    Adam {
        /// β₁.
        beta1: f32,
        /// β₂.
        beta2: f32,
        /// ε.
        eps: f32,
        /// Weight decay λ.
        weight_decay: f32,
    },
}

impl Optimizer {
    /// Plain SGD: no momentum, no weight decay.
    pub const SGD: Self = Self::Sgd {
        momentum: 0.0,
        weight_decay: 0.0,
    };
    /// Adam with the usual defaults.
    pub const ADAM: Self = Self::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
    };
}

/// What one client does with the global model in one round.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LocalTrain {
    /// Learning rate η.
    pub lr: f32,
    /// Passes over the client's samples.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch: usize,
    /// The optimiser.
    pub optimizer: Optimizer,
    /// FedProx proximal weight μ: adds `μ (w − w_global)` to every gradient (0 = off).
    pub prox_mu: f32,
}

impl LocalTrain {
    /// Checks the values are usable.
    pub fn validate(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(LearnError::config("lr", self.lr, "must be positive"));
        }
        if self.epochs == 0 {
            return Err(LearnError::config("epochs", 0, "must be at least 1"));
        }
        if self.batch == 0 {
            return Err(LearnError::config("batch", 0, "must be at least 1"));
        }
        if !(self.prox_mu.is_finite() && self.prox_mu >= 0.0) {
            return Err(LearnError::config("prox_mu", self.prox_mu, "must be ≥ 0"));
        }
        Ok(())
    }
}

/// A client's locally trained weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Trained {
    /// The new weights.
    pub params: Vec<f32>,
    /// Number of samples trained on (per epoch).
    pub samples: usize,
    /// Mean batch loss over the last epoch.
    pub loss: f64,
}

/// Optimiser state living for one local training call.
struct State {
    first: Vec<f32>,
    second: Vec<f32>,
    step: i32,
}

/// Trains `global` on `data` with `cfg`, drawing batch orders from `rng`.
pub fn train(
    kind: &ModelKind,
    global: &[f32],
    data: &Dataset,
    cfg: &LocalTrain,
    rng: &mut Rng,
) -> Result<Trained> {
    if data.is_empty() {
        return Err(LearnError::EmptyClient { client: usize::MAX });
    }
    let mut w = global.to_vec();
    let mut state = State {
        first: vec![0.0; w.len()],
        second: Vec::new(),
        step: 0,
    };
    let mut order: Vec<usize> = (0..data.len()).collect();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let mut loss = 0.0;
    for _ in 0..cfg.epochs {
        order.shuffle(rng);
        let mut epoch_loss = 0.0;
        for batch in order.chunks(cfg.batch) {
            x.clear();
            y.clear();
            for &i in batch {
                x.extend_from_slice(data.sample(i));
                y.push(data.labels[i]);
            }
            let (l, mut g) = loss_and_grad(kind, &w, &x, &y);
            epoch_loss += l;
            if cfg.prox_mu > 0.0 {
                for ((gi, wi), gl) in g.iter_mut().zip(&w).zip(global) {
                    *gi += cfg.prox_mu * (wi - gl);
                }
            }
            step(&mut w, &g, cfg, &mut state);
        }
        loss = epoch_loss / order.len().div_ceil(cfg.batch) as f64;
    }
    Ok(Trained {
        params: w,
        samples: data.len(),
        loss,
    })
}

fn step(w: &mut [f32], g: &[f32], cfg: &LocalTrain, s: &mut State) {
    match cfg.optimizer {
        Optimizer::Sgd {
            momentum,
            weight_decay,
        } if momentum == 0.0 && weight_decay == 0.0 => {
            for (wi, gi) in w.iter_mut().zip(g) {
                *wi -= cfg.lr * gi;
            }
        }
        Optimizer::Sgd {
            momentum,
            weight_decay,
        } => {
            for ((wi, gi), vi) in w.iter_mut().zip(g).zip(s.first.iter_mut()) {
                *vi = momentum * *vi + gi + weight_decay * *wi;
                *wi -= cfg.lr * *vi;
            }
        }
        Optimizer::Adam {
            beta1,
            beta2,
            eps,
            weight_decay,
        } => {
            if s.second.is_empty() {
                s.second = vec![0.0; w.len()];
            }
            s.step += 1;
            let c1 = 1.0 - beta1.powi(s.step);
            let c2 = 1.0 - beta2.powi(s.step);
            for (((wi, gi), m), v) in w
                .iter_mut()
                .zip(g)
                .zip(s.first.iter_mut())
                .zip(s.second.iter_mut())
            {
                let gi = gi + weight_decay * *wi;
                *m = beta1 * *m + (1.0 - beta1) * gi;
                *v = beta2 * *v + (1.0 - beta2) * gi * gi;
                *wi -= cfg.lr * (*m / c1) / ((*v / c2).sqrt() + eps);
            }
        }
    }
}
