//! Differential privacy: wrapper strategies that clip and noise, and accountants.
//!
//! The wrappers implement DP-FedAvg (McMahan et al. 2018): every update `Δᵢ = wᵢ − w_global`
//! is clipped to norm `C` (by the server, or by the client), replies are weighted equally, and
//! the aggregate gets Gaussian noise of standard deviation `σ C / m` for `m` sampled clients.
//! The wrapped strategy's own aggregation runs on the clipped updates. Noise is drawn from a
//! stream keyed by (seed, round), so runs stay reproducible.
//!
//! Accounting treats client sampling as Poisson with `q = m / N` ([`rdp`], [`pld`]).

pub mod adaptive;
pub mod fixed;
pub mod pld;
pub mod rdp;

use rand_distr::{Distribution, Normal};

use crate::params;
use crate::sim::{DpConfig, DpMode};
use crate::strategy::{Reply, Strategy};

/// Wraps `inner` in the DP mechanism `cfg` names.
pub fn wrap(inner: Box<dyn Strategy>, cfg: DpConfig, seed: u64) -> Box<dyn Strategy> {
    match cfg.mode {
        DpMode::ServerFixed => {
            Box::new(fixed::DpFixed::new(inner, cfg.clip, cfg.noise, false, seed))
        }
        DpMode::ClientFixed => {
            Box::new(fixed::DpFixed::new(inner, cfg.clip, cfg.noise, true, seed))
        }
        DpMode::Adaptive => Box::new(adaptive::DpAdaptive::new(inner, cfg.clip, cfg.noise, seed)),
    }
}

/// Clips `reply`'s update to `clip` and gives it unit weight; returns whether it was within
/// `clip` already.
pub(crate) fn clip_reply(reply: &mut Reply, global: &[f32], clip: f64) -> bool {
    let mut delta = params::sub(&reply.params, global);
    let factor = params::clip_to_norm(&mut delta, clip);
    reply.params = params::add(global, &delta);
    reply.samples = 1;
    factor >= 1.0
}

/// Adds `N(0, std²)` to every coordinate of `model`, from the (seed, round) noise stream.
pub(crate) fn add_noise(model: &mut [f32], std: f64, seed: u64, round: u64) {
    if std <= 0.0 {
        return;
    }
    let mut rng = crate::rng::stream("deai-learn/dp-noise", &[seed, round]);
    let normal = Normal::new(0.0, std).expect("std is positive and finite");
    for v in model.iter_mut() {
        *v = (f64::from(*v) + normal.sample(&mut rng)) as f32;
    }
}
