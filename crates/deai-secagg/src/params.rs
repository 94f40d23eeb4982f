//! Graph degree `k` and Shamir threshold `t` from a threat model (the SecAgg+ analysis).
//!
//! SecAgg+ (Bell et al., CCS 2020) replaces the complete graph of SecAgg by a random `k`-regular
//! graph: a Harary graph `H(n, k)` (nodes on a ring, each joined to the `k/2` nearest on either
//! side) whose node labels are permuted at random. Each client secret-shares its seeds among its
//! `k` neighbours and itself with threshold `t`. For `n` clients of which at most a fraction
//! `γ` is corrupt (colluding with the server) and at most a fraction `δ` drop out, we search the
//! smallest even `k` such that:
//!
//! 1. **security:** the graph of honest survivors stays connected except with probability
//!    `< 2^-(σ+1)` (union bound over the pairs of ring gaps of `k/2` consecutive bad nodes), and
//!    no client has `t` or more corrupt neighbours except with probability `< 2^-(σ+1)/n`
//!    (hypergeometric tail: this fixes `t1`, the largest tolerable count plus one, and `t = t1+1`);
//! 2. **correctness:** every client keeps at least `t` surviving share holders except with
//!    probability `< 2^-η/n`.
//!
//! Against a semi-malicious server, which may lie about who dropped, `t` must also exceed
//! `(k + corrupt neighbours)/2`, so that the server cannot collect `t` shares of both kinds of
//! one client's secrets from honest holders. This is the analysis behind the production
//! parameter finder of Google's SecAgg implementation; `docs/secagg.md` tabulates our values
//! against its published ones.
//!
//! Invariants of a returned [`Params`]: `degree` is even, `2 <= threshold <= degree + 1`
//! (the holders are the `degree` neighbours and the client itself), `degree < clients - 1`.

use thiserror::Error;

/// Who attacks the protocol besides the corrupt clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Adversary {
    /// The server follows the protocol but colludes with the corrupt clients.
    SemiHonest,
    /// The server may also lie about which clients dropped (it cannot forge clients' messages).
    SemiMalicious,
}

/// Degree of the neighbour graph and Shamir threshold for one round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Params {
    /// Number of clients `n` the round starts with.
    pub clients: u32,
    /// Neighbours of each client (even; the graph is `degree`-regular).
    pub degree: u32,
    /// Shares needed to reconstruct a secret, out of `degree + 1` holders.
    pub threshold: u32,
}

/// Why no parameters were found.
#[derive(Debug, Error, PartialEq)]
pub enum ParamsError {
    /// The number of clients is out of the supported range.
    #[error("number of clients {0} must be in 4..=1000000")]
    Clients(u32),
    /// A fraction is out of `[0, 1)`.
    #[error("{name} fraction {value} must be in [0, 1)")]
    Fraction {
        /// Which fraction.
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// Corrupt plus dropouts (twice the dropouts against a semi-malicious server) exceeds 0.9.
    #[error("threat model infeasible: corrupt {corrupt} + {factor}×dropout {dropout} > 0.9")]
    Infeasible {
        /// Corrupt fraction.
        corrupt: f64,
        /// Dropout fraction.
        dropout: f64,
        /// 1 against a semi-honest server, 2 against a semi-malicious one.
        factor: u32,
    },
    /// A statistical parameter is out of range.
    #[error("security bits {security} and correctness bits {correctness} must be in 1..=128")]
    Bits {
        /// Security parameter σ.
        security: u32,
        /// Correctness parameter η.
        correctness: u32,
    },
    /// No even degree below `n - 1` satisfies the threat model.
    #[error("no degree below {clients} clients meets the threat model")]
    NoDegree {
        /// Number of clients.
        clients: u32,
    },
}

/// Guards `floor`/`ceil` of `fraction × n` against the rounding of the product.
const EPSILON: f64 = 1e-14;

impl Params {
    /// The smallest even degree and its threshold meeting the threat model: at most
    /// `corrupt_fraction` of the clients collude with the server, at most `dropout_fraction`
    /// drop out; security fails with probability `< 2^-security_bits`, the round fails with
    /// probability `< 2^-correctness_bits` (40 and 20 are the customary values).
    pub fn for_threat_model(
        clients: u32,
        corrupt_fraction: f64,
        dropout_fraction: f64,
        security_bits: u32,
        correctness_bits: u32,
        adversary: Adversary,
    ) -> Result<Self, ParamsError> {
        check_inputs(clients, corrupt_fraction, dropout_fraction, adversary)?;
        if !(1..=128).contains(&security_bits) || !(1..=128).contains(&correctness_bits) {
            return Err(ParamsError::Bits {
                security: security_bits,
                correctness: correctness_bits,
            });
        }
        let n = u64::from(clients);
        let corrupt = ((corrupt_fraction + EPSILON) * n as f64).floor() as u64;
        let dropped = ((dropout_fraction + EPSILON) * n as f64).floor() as u64;
        let surviving = ((1.0 - dropout_fraction - EPSILON) * n as f64).ceil() as u64;
        let model = Model {
            n,
            corrupt,
            bad: corrupt + dropped,
            surviving,
            security_bits: f64::from(security_bits) + 1.0,
            correctness_bits: f64::from(correctness_bits),
            adversary,
        };
        (2..n.saturating_sub(1))
            .step_by(2)
            .find_map(|k| model.threshold_for(k).map(|t| (k, t)))
            .map(|(k, t)| Params {
                clients,
                degree: k as u32,
                threshold: t as u32,
            })
            .ok_or(ParamsError::NoDegree { clients })
    }
}

fn check_inputs(
    clients: u32,
    corrupt: f64,
    dropout: f64,
    adversary: Adversary,
) -> Result<(), ParamsError> {
    if !(4..=1_000_000).contains(&clients) {
        return Err(ParamsError::Clients(clients));
    }
    for (name, value) in [("corrupt", corrupt), ("dropout", dropout)] {
        if !(0.0..1.0).contains(&value) {
            return Err(ParamsError::Fraction { name, value });
        }
    }
    let factor = match adversary {
        Adversary::SemiHonest => 1,
        Adversary::SemiMalicious => 2,
    };
    if corrupt + f64::from(factor) * dropout > 0.9 {
        return Err(ParamsError::Infeasible {
            corrupt,
            dropout,
            factor,
        });
    }
    Ok(())
}

/// The threat model in counts.
struct Model {
    n: u64,
    corrupt: u64,
    /// Corrupt plus dropped clients: the nodes removed from the honest-survivor graph.
    bad: u64,
    surviving: u64,
    /// Bits per bad event (the security budget is split over two events).
    security_bits: f64,
    correctness_bits: f64,
    adversary: Adversary,
}

impl Model {
    /// The threshold that makes degree `k` secure and correct, if any.
    fn threshold_for(&self, k: u64) -> Option<u64> {
        let ln2 = std::f64::consts::LN_2;
        if self.ln_prob_disconnected(k) >= -self.security_bits * ln2 {
            return None;
        }
        let n = self.n as f64;
        let security_q = (-self.security_bits * ln2).exp() / n;
        let correctness_q = (-self.correctness_bits * ln2).exp() / n;
        let corrupt_neighbours = Hypergeometric::new(self.n, self.corrupt, k);
        let surviving_neighbours = Hypergeometric::new(self.n, self.surviving, k);
        let mut t1 = corrupt_neighbours.upper_quantile(security_q) as f64;
        let t2 = surviving_neighbours.lower_quantile(correctness_q) as f64;
        if self.adversary == Adversary::SemiMalicious {
            // 2t > k + corrupt neighbours, with a small margin below the integer.
            t1 = ((t1 + k as f64 - 1.25) / 2.0).ceil();
        }
        (t2 > t1).then(|| (t1 as u64 + 1).max(2))
    }

    /// ln of a union bound on the probability that removing the bad nodes disconnects a random
    /// Harary graph: that needs two disjoint runs of `k/2` consecutive bad nodes on the ring.
    fn ln_prob_disconnected(&self, k: u64) -> f64 {
        if k > self.bad {
            return f64::NEG_INFINITY;
        }
        let n = self.n;
        let ln_gap_pairs = (n as f64).ln() + ((n - k - 1) as f64).ln() - std::f64::consts::LN_2;
        ln_gap_pairs + ln_factorial(self.bad) + ln_factorial(n - k)
            - ln_factorial(n)
            - ln_factorial(self.bad - k)
    }
}

/// Draws of `sample` out of `total` of which `marked` are marked, without replacement.
struct Hypergeometric {
    total: u64,
    marked: u64,
    sample: u64,
}

impl Hypergeometric {
    fn new(total: u64, marked: u64, sample: u64) -> Self {
        debug_assert!(marked <= total && sample <= total);
        Self {
            total,
            marked,
            sample,
        }
    }

    fn ln_pmf(&self, x: u64) -> f64 {
        let (n, m, s) = (self.total, self.marked, self.sample);
        ln_choose(m, x) + ln_choose(n - m, s - x) - ln_choose(n, s)
    }

    fn support(&self) -> (u64, u64) {
        let low = (self.sample + self.marked).saturating_sub(self.total);
        (low, self.sample.min(self.marked))
    }

    /// The smallest `x` with `P(X > x) < q`.
    fn upper_quantile(&self, q: f64) -> u64 {
        let (low, high) = self.support();
        let (n, m, s) = (self.total as f64, self.marked as f64, self.sample as f64);
        let mut x = high;
        let mut ln_p = self.ln_pmf(high);
        let mut tail = 0.0;
        while x > low {
            tail += ln_p.exp();
            if tail >= q {
                return x;
            }
            // pmf(x-1) from pmf(x).
            let y = x as f64;
            ln_p += (y * (n - m - s + y)).ln() - ((m - y + 1.0) * (s - y + 1.0)).ln();
            x -= 1;
        }
        low
    }

    /// The smallest `x` with `P(X <= x) >= q`.
    fn lower_quantile(&self, q: f64) -> u64 {
        let (low, high) = self.support();
        let (n, m, s) = (self.total as f64, self.marked as f64, self.sample as f64);
        let mut x = low;
        let mut ln_p = self.ln_pmf(low);
        let mut cdf = 0.0;
        while x < high {
            cdf += ln_p.exp();
            if cdf >= q {
                return x;
            }
            let y = x as f64;
            ln_p += ((m - y) * (s - y)).ln() - ((y + 1.0) * (n - m - s + y + 1.0)).ln();
            x += 1;
        }
        high
    }
}

fn ln_choose(n: u64, k: u64) -> f64 {
    ln_factorial(n) - ln_factorial(k) - ln_factorial(n - k)
}

/// `ln(m!)`: exact sum below 256, Stirling's series (error < 1e-17 relative) above.
fn ln_factorial(m: u64) -> f64 {
    if m < 256 {
        return (2..=m).map(|i| (i as f64).ln()).sum();
    }
    let x = m as f64;
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    x * x.ln() - x
        + 0.5 * (2.0 * std::f64::consts::PI * x).ln()
        + inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 / 1260.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(n: u32, c: f64, d: f64, adversary: Adversary) -> (u32, u32) {
        let p = Params::for_threat_model(n, c, d, 40, 20, adversary).expect("feasible");
        (p.degree, p.threshold)
    }

    /// Published values of Google's production parameter finder (`fcp/secagg/server/
    /// graph_parameter_finder_test.cc`, σ = 40, η = 20): (n, corrupt, dropout, k, t).
    const PUBLISHED_SEMI_HONEST: &[(u32, f64, f64, u32, u32)] = &[
        (100, 0.33, 0.33, 68, 34),
        (1000, 0.33, 0.33, 286, 150),
        (10000, 0.33, 0.33, 422, 221),
        (100, 0.05, 0.33, 28, 6),
        (1000, 0.05, 0.33, 72, 24),
        (100, 0.05, 0.05, 12, 6),
        (1000, 0.05, 0.05, 30, 17),
        (10000, 0.05, 0.05, 34, 20),
        (1000, 0.33, 0.05, 78, 60),
        (1000, 0.0, 0.33, 38, 2),
    ];
    const PUBLISHED_SEMI_MALICIOUS: &[(u32, f64, f64, u32, u32)] = &[
        (100, 0.3, 0.3, 92, 62),
        (1000, 0.05, 0.33, 398, 223),
        (100, 0.05, 0.05, 16, 11),
        (1000, 0.05, 0.05, 52, 37),
        (1000, 0.33, 0.05, 132, 109),
    ];

    fn within_10_percent(ours: u32, published: u32) -> bool {
        (f64::from(ours) - f64::from(published)).abs() <= 0.1 * f64::from(published)
    }

    #[test]
    fn matches_published_tables_within_10_percent() {
        for (table, adversary) in [
            (PUBLISHED_SEMI_HONEST, Adversary::SemiHonest),
            (PUBLISHED_SEMI_MALICIOUS, Adversary::SemiMalicious),
        ] {
            for &(n, c, d, k, t) in table {
                let (ours_k, ours_t) = params(n, c, d, adversary);
                assert!(
                    within_10_percent(ours_k, k) && within_10_percent(ours_t, t),
                    "{adversary:?} n={n} c={c} d={d}: ours k={ours_k} t={ours_t}, published k={k} t={t}"
                );
            }
        }
    }

    #[test]
    fn semi_malicious_needs_majority_threshold() {
        for n in [100, 300, 1000] {
            let (k, t) = params(n, 0.05, 0.1, Adversary::SemiMalicious);
            assert!(2 * t > k, "n={n}: 2t={} must exceed k={k}", 2 * t);
        }
    }

    #[test]
    fn degree_grows_like_log_n() {
        let k100 = params(100, 0.05, 0.2, Adversary::SemiHonest).0;
        let k1000 = params(1000, 0.05, 0.2, Adversary::SemiHonest).0;
        let k10000 = params(10000, 0.05, 0.2, Adversary::SemiHonest).0;
        assert!(
            k1000 < 3 * k100 && k10000 < 2 * k1000,
            "{k100} {k1000} {k10000}"
        );
    }

    #[test]
    fn rejects_infeasible_models() {
        assert_eq!(
            Params::for_threat_model(100, 0.5, 0.5, 40, 20, Adversary::SemiHonest),
            Err(ParamsError::Infeasible {
                corrupt: 0.5,
                dropout: 0.5,
                factor: 1
            })
        );
        assert!(matches!(
            Params::for_threat_model(100, 1.5, 0.0, 40, 20, Adversary::SemiHonest),
            Err(ParamsError::Fraction {
                name: "corrupt",
                ..
            })
        ));
        assert_eq!(
            Params::for_threat_model(2, 0.0, 0.0, 40, 20, Adversary::SemiHonest),
            Err(ParamsError::Clients(2))
        );
    }

    #[test]
    fn ln_factorial_is_continuous_at_the_switch() {
        let exact: f64 = (2..=300u64).map(|i| (i as f64).ln()).sum();
        assert!((ln_factorial(300) - exact).abs() < 1e-9);
    }
}
