//! Privacy-loss-distribution (PLD) accounting for the Poisson-subsampled Gaussian, add and
//! remove adjacency, as in Google's `dp_accounting` `PLDAccountant`.
//!
//! One step's PLD is discretised on the grid `ε_k = kΔ` by "connecting the dots" (Doroshenko et
//! al. 2022): the discrete distribution whose hockey-stick curve `δ(ε)` equals the mechanism's
//! exact `δ(ε)` at every grid point. With `A_k` the mass above `ε_k`, that curve gives
//! `A_{k−1} = (δ(ε_{k−1}) − e^{−Δ} δ(ε_k)) / (1 − e^{−Δ})`; since the exact curve is convex in
//! `e^ε` this distribution dominates the mechanism (pessimistic). The mass past the top grid
//! point goes to `+∞`. `T` steps compose by FFT convolution and repeated squaring; after every
//! convolution tails below [`TAIL`] are moved pessimistically (lower tail up to the first kept
//! point, upper tail to `+∞`).

use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

/// Grid step `Δ` (dp_accounting's default).
pub const DISCRETIZATION: f64 = 1e-4;
/// Tail mass truncated per convolution.
pub const TAIL: f64 = 1e-15;
/// Most grid points a PLD may hold (8 MiB of masses; a convolution of two such needs an FFT of
/// 4 Mi points). A tiny σ for its q (the loss range grows like `1/σ²`) or a huge step count needs
/// more: the accountant refuses then, rather than allocating and computing without bound.
pub const GRID_MAX: usize = 1 << 20;

/// Why ε was not computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PldError {
    /// The distribution outgrew [`GRID_MAX`].
    #[error(
        "the privacy-loss distribution needs {needed} grid points, more than {max}: the noise is \
         too small for this sampling rate, or the steps too many (the RDP bound still applies)"
    )]
    GridTooLarge {
        /// Points needed.
        needed: u64,
        /// The bound.
        max: usize,
    },
}

/// A discrete PLD: `mass[i]` at loss `(offset + i) Δ`, plus `infinity` at `+∞`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pld {
    offset: i64,
    mass: Vec<f64>,
    infinity: f64,
}

/// Upper tail of the standard normal, `P(Z > z)`.
fn normal_sf(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// Exact `δ(ε)` of one step, remove adjacency: `P = (1−q)N(0,σ²) + qN(1,σ²)`, `Q = N(0,σ²)`.
fn delta_remove(q: f64, sigma: f64, eps: f64) -> f64 {
    if eps <= (-q).ln_1p() {
        return 1.0 - eps.exp();
    }
    let x = sigma * sigma * ((eps.exp() - (1.0 - q)) / q).ln() + 0.5;
    let p = (1.0 - q) * normal_sf(x / sigma) + q * normal_sf((x - 1.0) / sigma);
    (p - eps.exp() * normal_sf(x / sigma)).max(0.0)
}

/// Exact `δ(ε)` of one step, add adjacency: `P = N(0,σ²)`, `Q = (1−q)N(0,σ²) + qN(1,σ²)`.
fn delta_add(q: f64, sigma: f64, eps: f64) -> f64 {
    if eps >= -(-q).ln_1p() {
        return 0.0;
    }
    let x = sigma * sigma * (((-eps).exp() - (1.0 - q)) / q).ln() + 0.5;
    let p = normal_sf(-x / sigma);
    let qm = (1.0 - q) * normal_sf(-x / sigma) + q * normal_sf((1.0 - x) / sigma);
    (p - eps.exp() * qm).max(0.0)
}

impl Pld {
    /// One step of the Poisson-subsampled Gaussian (`remove` or add adjacency).
    pub fn subsampled_gaussian(q: f64, sigma: f64, remove: bool) -> Result<Self, PldError> {
        let delta = |e: f64| {
            if remove {
                delta_remove(q, sigma, e)
            } else {
                delta_add(q, sigma, e)
            }
        };
        // Losses of samples within ±9σ of both means (tail mass < 1e-18).
        let loss = |x: f64| (1.0 - q + q * ((2.0 * x - 1.0) / (2.0 * sigma * sigma)).exp()).ln();
        let (lo_x, hi_x) = (-9.0 * sigma, 1.0 + 9.0 * sigma);
        let (lo, hi) = if remove {
            (loss(lo_x), loss(hi_x))
        } else {
            (-loss(hi_x), -loss(lo_x))
        };
        let (kmin, kmax) = ((lo / DISCRETIZATION).floor(), (hi / DISCRETIZATION).ceil());
        // Checked before anything is allocated (NaN, from a degenerate q or σ, fails too).
        let needed = kmax - kmin + 1.0;
        if needed.is_nan() || needed > GRID_MAX as f64 {
            return Err(PldError::GridTooLarge {
                needed: if needed.is_finite() {
                    needed as u64
                } else {
                    u64::MAX
                },
                max: GRID_MAX,
            });
        }
        let (kmin, kmax) = (kmin as i64, kmax as i64);
        let f: Vec<f64> = (kmin..=kmax)
            .map(|k| delta(k as f64 * DISCRETIZATION))
            .collect();
        let infinity = f[f.len() - 1];
        let shrink = (-DISCRETIZATION).exp();
        // above[j]: finite mass strictly above grid point j.
        let n = f.len();
        let mut above = vec![0.0; n];
        for j in (1..n).rev() {
            let a = ((f[j - 1] - infinity) - shrink * (f[j] - infinity)) / (1.0 - shrink);
            above[j - 1] = a.max(above[j]);
        }
        let mut mass: Vec<f64> = (1..n).map(|j| above[j - 1] - above[j]).collect();
        mass.insert(0, (1.0 - infinity - above[0]).max(0.0));
        Ok(Self {
            offset: kmin,
            mass,
            infinity,
        })
    }

    /// The PLD of running `self` then `other` (each within [`GRID_MAX`], so the convolution is
    /// bounded too).
    pub fn compose(&self, other: &Self) -> Result<Self, PldError> {
        let mut out = Self {
            offset: self.offset + other.offset,
            mass: convolve(&self.mass, &other.mass),
            infinity: 1.0 - (1.0 - self.infinity) * (1.0 - other.infinity),
        };
        out.truncate();
        if out.mass.len() > GRID_MAX {
            return Err(PldError::GridTooLarge {
                needed: out.mass.len() as u64,
                max: GRID_MAX,
            });
        }
        Ok(out)
    }

    /// `self` composed with itself `times` times (`times ≥ 1`).
    pub fn self_compose(&self, times: u64) -> Result<Self, PldError> {
        assert!(times >= 1, "compose at least once");
        let mut result: Option<Self> = None;
        let mut base = self.clone();
        let mut t = times;
        loop {
            if t & 1 == 1 {
                result = Some(match result {
                    Some(r) => r.compose(&base)?,
                    None => base.clone(),
                });
            }
            t >>= 1;
            if t == 0 {
                break;
            }
            base = base.compose(&base)?;
        }
        Ok(result.expect("times ≥ 1"))
    }

    fn truncate(&mut self) {
        for m in &mut self.mass {
            *m = m.max(0.0);
        }
        let (mut low, mut start) = (0.0, 0);
        while start + 1 < self.mass.len() && low + self.mass[start] < TAIL {
            low += self.mass[start];
            start += 1;
        }
        let (mut high, mut end) = (0.0, self.mass.len());
        while end > start + 1 && high + self.mass[end - 1] < TAIL {
            high += self.mass[end - 1];
            end -= 1;
        }
        self.mass.truncate(end);
        self.mass.drain(..start);
        self.mass[0] += low;
        self.offset += start as i64;
        self.infinity += high;
    }

    /// `δ(ε) = P(∞) + Σ_k m_k (1 − e^{ε − ε_k})⁺`.
    pub fn delta(&self, eps: f64) -> f64 {
        let mut d = self.infinity;
        for (i, &m) in self.mass.iter().enumerate() {
            let e = (self.offset + i as i64) as f64 * DISCRETIZATION;
            if e > eps {
                d += m * (1.0 - (eps - e).exp());
            }
        }
        d
    }

    /// The smallest ε with `δ(ε) ≤ delta` (∞ when the mass at `+∞` exceeds `delta`).
    pub fn epsilon(&self, delta: f64) -> f64 {
        if self.infinity > delta {
            return f64::INFINITY;
        }
        // Scan down from the top keeping A = mass above, B = Σ m e^{−ε_k} above.
        let (mut a, mut b) = (0.0f64, 0.0f64);
        for i in (0..self.mass.len()).rev() {
            let e = (self.offset + i as i64) as f64 * DISCRETIZATION;
            let below = e - DISCRETIZATION;
            a += self.mass[i];
            b += self.mass[i] * (-e).exp();
            // On (ε_{i−1}, ε_i], δ(ε) = ∞-mass + A − e^ε B.
            if self.infinity + a - below.exp() * b > delta {
                return ((self.infinity + a - delta) / b).ln().max(0.0);
            }
        }
        0.0
    }
}

fn convolve(a: &[f64], b: &[f64]) -> Vec<f64> {
    let len = a.len() + b.len() - 1;
    if a.len().min(b.len()) < 64 {
        let mut out = vec![0.0; len];
        for (i, x) in a.iter().enumerate() {
            for (j, y) in b.iter().enumerate() {
                out[i + j] += x * y;
            }
        }
        return out;
    }
    let n = len.next_power_of_two();
    let mut planner = FftPlanner::<f64>::new();
    let (fwd, inv) = (planner.plan_fft_forward(n), planner.plan_fft_inverse(n));
    let pad = |v: &[f64]| {
        let mut c: Vec<Complex<f64>> = v.iter().map(|&x| Complex::new(x, 0.0)).collect();
        c.resize(n, Complex::new(0.0, 0.0));
        c
    };
    let (mut fa, mut fb) = (pad(a), pad(b));
    fwd.process(&mut fa);
    fwd.process(&mut fb);
    for (x, y) in fa.iter_mut().zip(&fb) {
        *x *= y;
    }
    inv.process(&mut fa);
    fa.iter().take(len).map(|c| c.re / n as f64).collect()
}

/// ε after `steps` rounds of the Poisson-subsampled Gaussian: the worse of add and remove.
/// Memory and time are bounded by [`GRID_MAX`]: a distribution that would outgrow it is an error.
pub fn epsilon(q: f64, sigma: f64, steps: u64, delta: f64) -> Result<f64, PldError> {
    if q == 0.0 || steps == 0 {
        return Ok(0.0);
    }
    if sigma == 0.0 {
        return Ok(f64::INFINITY);
    }
    let mut worst = 0.0f64;
    for remove in [true, false] {
        let pld = Pld::subsampled_gaussian(q, sigma, remove)?.self_compose(steps)?;
        worst = worst.max(pld.epsilon(delta));
    }
    Ok(worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (q, σ, T, δ, ε) computed with dp_accounting 0.4's `PLDAccountant` (defaults).
    const REFERENCE: &[(f64, f64, u64, f64, f64)] = &[
        (0.01, 1.1, 1000, 1e-5, 1.5153702481094293),
        (0.1, 1.0, 50, 1e-5, 5.1482625932668755),
        (0.05, 2.0, 200, 1e-5, 1.560605474833409),
        (0.1, 5.0, 100, 1e-3, 0.4692737383241001),
    ];

    #[test]
    fn matches_dp_accounting() {
        for &(q, s, t, d, want) in REFERENCE {
            let got = epsilon(q, s, t, d).expect("within the grid");
            assert!(
                (got - want).abs() / want < 1e-3,
                "q={q} σ={s} T={t} δ={d}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn one_step_is_a_distribution_matching_the_exact_curve() {
        let p = Pld::subsampled_gaussian(0.1, 1.0, true).expect("small grid");
        let total: f64 = p.mass.iter().sum::<f64>() + p.infinity;
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        for eps in [0.01, 0.1, 0.5] {
            let exact = delta_remove(0.1, 1.0, eps);
            assert!(p.delta(eps) >= exact - 1e-12 && p.delta(eps) < exact * 1.01 + 1e-12);
        }
    }

    #[test]
    fn monotone_in_steps_and_noise() {
        let eps = |q, s, t, d| epsilon(q, s, t, d).expect("within the grid");
        let e = eps(0.05, 1.0, 20, 1e-5);
        assert!(eps(0.05, 1.0, 40, 1e-5) > e);
        assert!(eps(0.05, 1.5, 20, 1e-5) < e);
        assert!(
            e < crate::dp::rdp::epsilon(0.05, 1.0, 20, 1e-5),
            "PLD is tighter than RDP"
        );
    }

    /// Inputs whose distribution would not fit are refused before the big allocation, and huge
    /// step counts stop once the composed distribution outgrows the grid (no panic, no hours).
    #[test]
    fn uncomputable_inputs_are_refused_not_attempted() {
        assert!(matches!(
            epsilon(0.5, 0.01, 10, 1e-5),
            Err(PldError::GridTooLarge { needed, .. }) if needed > 50_000_000
        ));
        assert!(matches!(
            epsilon(0.5, 0.05, 1, 1e-5),
            Err(PldError::GridTooLarge { .. })
        ));
        assert!(matches!(
            epsilon(0.01, 1.1, 100_000_000, 1e-5),
            Err(PldError::GridTooLarge { .. })
        ));
    }
}
