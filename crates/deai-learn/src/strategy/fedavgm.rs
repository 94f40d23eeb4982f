//! FedAvgM (Hsu et al. 2019): server momentum on the pseudo-gradient `Δ = w_global − mean`,
//! `v ← β v + Δ`, `w ← w_global − η v`: FedAvg under [`ServerMomentum`] (which keeps `−v`).

use super::Sampling;
use super::fedavg::FedAvg;
use super::momentum::ServerMomentum;

/// FedAvg with server learning rate `server_lr` and momentum `momentum`, named `fedavgm`.
pub fn fedavgm(sampling: Sampling, server_lr: f32, momentum: f32) -> ServerMomentum {
    ServerMomentum::new(Box::new(FedAvg::new(sampling)), server_lr, momentum).named("fedavgm")
}
