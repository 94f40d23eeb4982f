//! Attack models for robustness tests: a seeded set of clients misbehaves.
//!
//! Data attacks change what an attacker trains on ([`Attack::LabelFlip`]); model attacks change
//! what it sends, either from its own update alone ([`Attack::poison_own`]) or, for the
//! omniscient attacks ALIE and IPM, from the honest replies of the round
//! ([`Attack::poison_omniscient`]), which the driver applies after collecting the round.

use rand::seq::SliceRandom;
use rand_distr::{Distribution, Normal};

use crate::error::{LearnError, Result};
use crate::params::WeightedSum;
use crate::rng::{self, Rng};

/// A Byzantine behaviour.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub enum Attack {
    /// Train on labels `c − 1 − y`.
    LabelFlip,
    /// Send `w − 4Δ` instead of `w + Δ` (reversed, boosted update).
    SignFlip,
    /// Model replacement: send `w + sΔ`.
    Scaling(f32),
    /// Send `w + N(0, σ²)` per coordinate.
    Gaussian(f32),
    /// "A little is enough" (Baruch et al. 2019): `μ − z σ` of the round's updates per coordinate.
    Alie,
    /// Inner-product manipulation (Xie et al. 2020): `w − ε · mean(honest Δ)`.
    Ipm(f32),
    /// Free rider: sends the global model back, claiming its samples.
    FreeRider,
}

/// Every attack name [`Attack::from_name`] accepts.
pub const NAMES: &[&str] = &[
    "label-flip",
    "sign-flip",
    "scaling",
    "gaussian",
    "alie",
    "ipm",
    "free-rider",
];

impl Attack {
    /// Parses a name from [`NAMES`].
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "label-flip" => Self::LabelFlip,
            "sign-flip" => Self::SignFlip,
            "scaling" => Self::Scaling(10.0),
            "gaussian" => Self::Gaussian(1.0),
            "alie" => Self::Alie,
            "ipm" => Self::Ipm(0.5),
            "free-rider" => Self::FreeRider,
            other => {
                return Err(LearnError::config(
                    "attack",
                    other,
                    format!("expected one of {}", NAMES.join(", ")),
                ));
            }
        })
    }

    /// Whether the attack needs the honest replies of the round.
    pub fn is_omniscient(&self) -> bool {
        matches!(self, Self::Alie | Self::Ipm(_))
    }

    /// Label map for data attacks.
    pub fn flip_label(&self, label: u32, classes: usize) -> u32 {
        match self {
            Self::LabelFlip => classes as u32 - 1 - label,
            _ => label,
        }
    }

    /// Rewrites an attacker's trained `params` from its own update only.
    pub fn poison_own(&self, global: &[f32], params: &mut [f32], rng: &mut Rng) {
        match *self {
            Self::SignFlip => boost(global, params, -4.0),
            Self::Scaling(s) => boost(global, params, s),
            Self::Gaussian(sigma) => {
                let normal = Normal::new(0.0f32, sigma).expect("sigma is positive");
                for (p, g) in params.iter_mut().zip(global) {
                    *p = g + normal.sample(rng);
                }
            }
            Self::FreeRider => params.copy_from_slice(global),
            Self::LabelFlip | Self::Alie | Self::Ipm(_) => {}
        }
    }

    /// The model every attacker sends, given the round's honest models (omniscient attacks).
    pub fn poison_omniscient(
        &self,
        global: &[f32],
        honest: &[&[f32]],
        attackers: usize,
    ) -> Option<Vec<f32>> {
        if honest.is_empty() {
            return None;
        }
        let mut mean = WeightedSum::new(global.len());
        honest.iter().for_each(|h| mean.add(h, 1.0));
        let mean = mean.mean().expect("non-empty");
        match *self {
            Self::Ipm(eps) => Some(
                global
                    .iter()
                    .zip(&mean)
                    .map(|(g, m)| g - eps * (m - g))
                    .collect(),
            ),
            Self::Alie => {
                let n = honest.len() + attackers;
                let z = alie_z(n, attackers);
                let count = honest.len() as f64;
                Some(
                    (0..global.len())
                        .map(|j| {
                            let var = honest
                                .iter()
                                .map(|h| (f64::from(h[j]) - f64::from(mean[j])).powi(2))
                                .sum::<f64>()
                                / count;
                            (f64::from(mean[j]) - z * var.sqrt()) as f32
                        })
                        .collect(),
                )
            }
            _ => None,
        }
    }
}

fn boost(global: &[f32], params: &mut [f32], factor: f32) {
    for (p, g) in params.iter_mut().zip(global) {
        *p = g + factor * (*p - g);
    }
}

/// ALIE's `z`: with `s = ⌊n/2 + 1⌋ − f` supporters needed, `z = Φ⁻¹((n − s) / n)`.
pub fn alie_z(n: usize, f: usize) -> f64 {
    let s = (n / 2 + 1).saturating_sub(f) as f64;
    let p = ((n as f64 - s) / n as f64).clamp(0.5, 0.999);
    normal_quantile(p)
}

/// Inverse standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Which of `clients` clients are attackers: `count` of them, chosen by a seeded shuffle.
pub fn attackers(clients: usize, count: usize, seed: u64) -> Vec<bool> {
    let mut ids: Vec<usize> = (0..clients).collect();
    ids.shuffle(&mut rng::stream("deai-learn/attackers", &[seed]));
    let mut out = vec![false; clients];
    ids.iter()
        .take(count.min(clients))
        .for_each(|&i| out[i] = true);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_matches_known_values() {
        assert!((normal_quantile(0.975) - 1.959_963_985).abs() < 1e-6);
        assert!(normal_quantile(0.5).abs() < 1e-9);
        assert!((normal_quantile(0.01) + 2.326_347_874).abs() < 1e-6);
    }

    #[test]
    fn attacker_set_has_the_asked_size() {
        let a = attackers(100, 20, 7);
        assert_eq!(a.iter().filter(|&&x| x).count(), 20);
        assert_eq!(a, attackers(100, 20, 7));
    }

    #[test]
    fn model_attacks_do_what_they_say() {
        let mut rng = rng::stream("t", &[0]);
        let g = [1.0f32, 1.0];
        let mut p = [2.0f32, 0.0];
        Attack::SignFlip.poison_own(&g, &mut p, &mut rng);
        assert_eq!(p, [-3.0, 5.0]);
        let mut p = [2.0f32, 0.0];
        Attack::FreeRider.poison_own(&g, &mut p, &mut rng);
        assert_eq!(p, g);
        let honest: [&[f32]; 2] = [&[2.0, 1.0], &[4.0, 1.0]];
        let ipm = Attack::Ipm(0.5)
            .poison_omniscient(&g, &honest, 1)
            .expect("omniscient");
        assert_eq!(ipm, vec![0.0, 1.0]);
    }
}
