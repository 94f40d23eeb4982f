//! Rényi-DP accounting for the Poisson-subsampled Gaussian mechanism (Mironov, Talwar & Zhang
//! 2019), over the same orders as Google's `dp_accounting`, converted to (ε, δ) with the bound of
//! Canonne, Kamath & Steinke 2020 (Prop. 12).
//!
//! Integer orders use the exact binomial sum; fractional orders the two-sided series of §3.3 of
//! arXiv:1908.10530. All sums run in log space.

/// The RDP orders `dp_accounting` uses by default.
pub fn default_orders() -> Vec<f64> {
    let mut orders: Vec<f64> = (1..100).map(|x| 1.0 + f64::from(x) / 10.0).collect();
    orders.extend((11..64).map(f64::from));
    orders.extend([128.0, 256.0, 512.0, 1024.0]);
    orders
}

fn log_add(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

fn log_comb(n: f64, k: f64) -> f64 {
    ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0)
}

/// `ln(erfc(x))`, accurate far into the upper tail.
pub fn log_erfc(x: f64) -> f64 {
    let r = libm::erfc(x);
    if r > 1e-300 {
        return r.ln();
    }
    let x2 = x * x;
    -std::f64::consts::PI.ln() / 2.0 - x.ln() - x2 - 0.5 / x2 + 0.625 / (x2 * x2)
        - 37.0 / 24.0 / (x2 * x2 * x2)
        + 353.0 / 64.0 / (x2 * x2 * x2 * x2)
}

fn log_a_int(q: f64, sigma: f64, alpha: u32) -> f64 {
    let log1mq = (-q).ln_1p();
    (0..=alpha).fold(f64::NEG_INFINITY, |acc, i| {
        let i = f64::from(i);
        let a = f64::from(alpha);
        let coef = log_comb(a, i) + i * q.ln() + (a - i) * log1mq;
        log_add(acc, coef + (i * i - i) / (2.0 * sigma * sigma))
    })
}

fn log_a_frac(q: f64, sigma: f64, alpha: f64) -> f64 {
    let (mut a0, mut a1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let z0 = sigma * sigma * (1.0 / q - 1.0).ln() + 0.5;
    let log1mq = (-q).ln_1p();
    let (mut last0, mut last1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let s2 = std::f64::consts::SQRT_2 * sigma;
    for i in 0..1000 {
        let i = f64::from(i);
        let j = alpha - i;
        // |binom(alpha, i)|: the sign alternates past alpha but the series sums magnitudes.
        let coef = log_comb(alpha, i);
        let t0 = coef + i * q.ln() + j * log1mq;
        let t1 = coef + j * q.ln() + i * log1mq;
        let e0 = 0.5f64.ln() + log_erfc((i - z0) / s2);
        let e1 = 0.5f64.ln() + log_erfc((z0 - j) / s2);
        let s0 = t0 + (i * i - i) / (2.0 * sigma * sigma) + e0;
        let s1 = t1 + (j * j - j) / (2.0 * sigma * sigma) + e1;
        a0 = log_add(a0, s0);
        a1 = log_add(a1, s1);
        let total = log_add(a0, a1);
        if s0 < last0 && s1 < last1 && s0.max(s1) < total - 30.0 {
            return total;
        }
        (last0, last1) = (s0, s1);
    }
    f64::INFINITY
}

/// RDP of one step of the Poisson-subsampled Gaussian at order `alpha`.
pub fn rdp_step(q: f64, sigma: f64, alpha: f64) -> f64 {
    if q == 0.0 {
        return 0.0;
    }
    if sigma == 0.0 || alpha.is_infinite() {
        return f64::INFINITY;
    }
    if q >= 1.0 {
        return alpha / (2.0 * sigma * sigma);
    }
    let log_a = if alpha.fract() == 0.0 && alpha < 4e9 {
        log_a_int(q, sigma, alpha as u32)
    } else {
        log_a_frac(q, sigma, alpha)
    };
    log_a / (alpha - 1.0)
}

/// Smallest ε over `orders` for total RDP `rdp` at δ.
pub fn epsilon_from_rdp(orders: &[f64], rdp: &[f64], delta: f64) -> f64 {
    let eps = orders.iter().zip(rdp).map(|(&a, &r)| {
        if r < 0.0 || delta * delta + (-r).exp_m1() > 0.0 {
            0.0
        } else if a > 1.01 {
            r + (-1.0 / a).ln_1p() - (delta * a).ln() / (a - 1.0)
        } else {
            f64::INFINITY
        }
    });
    eps.fold(f64::INFINITY, f64::min).max(0.0)
}

/// ε after `steps` rounds of the Poisson-subsampled Gaussian (rate `q`, noise multiplier `sigma`).
pub fn epsilon(q: f64, sigma: f64, steps: u64, delta: f64) -> f64 {
    let orders = default_orders();
    let rdp: Vec<f64> = orders
        .iter()
        .map(|&a| steps as f64 * rdp_step(q, sigma, a))
        .collect();
    epsilon_from_rdp(&orders, &rdp, delta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// (q, σ, T, δ, ε) computed with dp_accounting 0.4's `RdpAccountant` (default orders).
    pub(crate) const REFERENCE: &[(f64, f64, u64, f64, f64)] = &[
        (0.01, 1.1, 1000, 1e-5, 1.7117701662429012),
        (0.1, 1.0, 50, 1e-5, 5.88542727658131),
        (0.001, 0.8, 10000, 1e-6, 1.7036252861577152),
        (0.05, 2.0, 200, 1e-5, 1.7213067947507872),
        (0.1, 5.0, 100, 1e-3, 0.5527496544044903),
    ];

    #[test]
    fn full_batch_gaussian_matches_closed_form() {
        // q = 1: RDP(α) = α / 2σ², T steps.
        let r = rdp_step(1.0, 2.0, 10.0);
        assert!((r - 10.0 / 8.0).abs() < 1e-12);
    }

    #[test]
    fn integer_and_fractional_series_agree_near_integers() {
        let a = rdp_step(0.01, 1.1, 8.0);
        let b = rdp_step(0.01, 1.1, 8.000_001);
        assert!((a - b).abs() / a < 1e-4, "{a} vs {b}");
    }

    #[test]
    fn matches_dp_accounting() {
        for &(q, s, t, d, want) in REFERENCE {
            let got = epsilon(q, s, t, d);
            assert!(
                (got - want).abs() / want < 1e-3,
                "q={q} σ={s} T={t} δ={d}: {got} vs {want}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn monotone_in_steps_and_noise(q in 0.001f64..0.2, s in 0.6f64..3.0, t in 1u64..500) {
            let e = epsilon(q, s, t, 1e-5);
            prop_assert!(epsilon(q, s, t + 10, 1e-5) >= e);
            prop_assert!(epsilon(q, s * 1.2, t, 1e-5) <= e);
        }
    }
}
