//! Graph degree `k` and Shamir threshold `t` from a threat model (the SecAgg+ analysis).
//!
//! SecAgg+ (Bell et al., CCS 2020) replaces the complete graph of SecAgg by a random `k`-regular
//! graph: a Harary graph `H(n, k)` (nodes on a ring, each joined to the `k/2` nearest on either
//! side) whose node labels are permuted at random. Each client secret-shares its seeds among its
//! `k` neighbours and itself (`k + 1` holders) with threshold `t`. For `n` clients of which at
//! most a fraction `γ` is corrupt (colluding with the server) and at most a fraction `δ` drop
//! out, we search the smallest even `k` such that:
//!
//! 1. **security:** the graph of honest survivors stays connected except with probability
//!    `< 2^-(σ+1)` (union bound over the pairs of ring gaps of `k/2` consecutive bad nodes), and
//!    no client has more than `c` corrupt neighbours except with probability `< 2^-(σ+1)/n`
//!    (hypergeometric upper tail: `c` is [`Params::corrupt_neighbours_max`]); `t = c + 1`;
//! 2. **correctness:** every client keeps at least `t` surviving neighbours (its secrets can be
//!    rebuilt even if it drops itself) except with probability `< 2^-η/n`.
//!
//! Against a semi-malicious server, which may tell different holders different stories about
//! who dropped, `t` must also satisfy `2t > k + 1 + c`: one client's `k + 1` holders are `c`
//! corrupt ones, which reveal shares of both its self-mask seed and its mask key, and
//! `k + 1 - c` honest ones (the owner among them), which each reveal one kind, once; reaching
//! `t` of both kinds needs `2(t - c) <= k + 1 - c`. So `t = floor((k + 1 + c)/2) + 1` (or
//! `c + 1` if larger). Google's production parameter finder, whose published outputs
//! `docs/secagg.md` tabulates, enforces `2t > k + c`, one short: it leaves out the owner's own
//! share, which a server that reports the owner alive obtains from the owner itself.
//!
//! Invariants of a returned [`Params`]: `degree` is even, `degree < clients - 1` (so `clients`
//! starts at 4: at 3 the only even degree below 2 would be 0), `2 <= threshold <= degree + 1`,
//! `threshold > corrupt_neighbours_max`, and against a semi-malicious server
//! `2 threshold > degree + 1 + corrupt_neighbours_max`.

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
    /// The most corrupt neighbours any client is assumed to have (`c`): the threshold was chosen
    /// against it. 0 for hand-made parameters with no corrupt clients in the threat model.
    #[serde(default)]
    pub corrupt_neighbours_max: u32,
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
            .find_map(|k| model.threshold_for(k).map(|(t, c)| (k, t, c)))
            .map(|(k, t, c)| Params {
                clients,
                degree: k as u32,
                threshold: t as u32,
                corrupt_neighbours_max: c as u32,
            })
            .ok_or(ParamsError::NoDegree { clients })
    }
}

/// The most corrupt neighbours (`c`) a client of a round of `clients` with degree `degree` has,
/// when `corrupt_fraction` of the clients are corrupt, except with probability
/// `< 2^-(security_bits+1)/clients` (the bound [`Params::for_threat_model`] uses). Lets a caller
/// check hand-made or published parameters against `2t > k + 1 + c`.
pub fn corrupt_neighbours_bound(
    clients: u32,
    corrupt_fraction: f64,
    degree: u32,
    security_bits: u32,
) -> u32 {
    let n = u64::from(clients);
    let corrupt = ((corrupt_fraction.clamp(0.0, 1.0) + EPSILON) * n as f64).floor() as u64;
    let q = (-(f64::from(security_bits) + 1.0) * std::f64::consts::LN_2).exp() / n as f64;
    let k = u64::from(degree).min(n.saturating_sub(1));
    Hypergeometric::new(n, corrupt.min(n), k).upper_quantile(q) as u32
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
    /// The threshold that makes degree `k` secure and correct, if any, with the corrupt
    /// neighbour bound `c` it was chosen against.
    fn threshold_for(&self, k: u64) -> Option<(u64, u64)> {
        let ln2 = std::f64::consts::LN_2;
        if self.ln_prob_disconnected(k) >= -self.security_bits * ln2 {
            return None;
        }
        let n = self.n as f64;
        let security_q = (-self.security_bits * ln2).exp() / n;
        let correctness_q = (-self.correctness_bits * ln2).exp() / n;
        let corrupt_neighbours = Hypergeometric::new(self.n, self.corrupt, k);
        let surviving_neighbours = Hypergeometric::new(self.n, self.surviving, k);
        let c = corrupt_neighbours.upper_quantile(security_q);
        let surviving = surviving_neighbours.lower_quantile(correctness_q);
        let mut t = c + 1;
        if self.adversary == Adversary::SemiMalicious {
            // 2t > k + 1 + c: the k + 1 holders include the owner (see the module docs).
            t = t.max((k + 1 + c) / 2 + 1);
        }
        let t = t.max(2);
        (t <= surviving).then_some((t, c))
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
    /// Semi-malicious: (n, corrupt, dropout, published k, published t, our k, our t). Google's
    /// finder enforces `2t > k + c`; we enforce `2t > k + 1 + c` (the owner's own share counts,
    /// see the module docs), so where the published pair sits exactly on `2t = k + 1 + c` our
    /// search moves on to a larger `k` or `t`. Those rows differ, by up to 18 % at
    /// (100, 0.05, 0.05): 18/13 against 16/11.
    const SEMI_MALICIOUS: &[(u32, f64, f64, u32, u32, u32, u32)] = &[
        (100, 0.3, 0.3, 92, 62, 92, 62),
        (1000, 0.05, 0.33, 398, 223, 398, 223),
        (100, 0.05, 0.05, 16, 11, 18, 13),
        (1000, 0.05, 0.05, 52, 37, 52, 37),
        (1000, 0.33, 0.05, 132, 109, 138, 114),
    ];

    fn within_10_percent(ours: u32, published: u32) -> bool {
        (f64::from(ours) - f64::from(published)).abs() <= 0.1 * f64::from(published)
    }

    #[test]
    fn semi_honest_matches_published_table_within_10_percent() {
        for &(n, c, d, k, t) in PUBLISHED_SEMI_HONEST {
            let (ours_k, ours_t) = params(n, c, d, Adversary::SemiHonest);
            assert!(
                within_10_percent(ours_k, k) && within_10_percent(ours_t, t),
                "n={n} c={c} d={d}: ours k={ours_k} t={ours_t}, published k={k} t={t}"
            );
        }
    }

    /// Where we differ from the published semi-malicious values, the published pair fails the
    /// corrected bound; where it meets it, we agree exactly.
    #[test]
    fn semi_malicious_matches_published_table_or_its_corrected_bound() {
        for &(n, c, d, k, t, expect_k, expect_t) in SEMI_MALICIOUS {
            let (ours_k, ours_t) = params(n, c, d, Adversary::SemiMalicious);
            assert_eq!((ours_k, ours_t), (expect_k, expect_t), "n={n} c={c} d={d}");
            let published_c = corrupt_neighbours_bound(n, c, k, 40);
            let published_safe = 2 * t > k + 1 + published_c;
            assert_eq!(
                published_safe,
                (ours_k, ours_t) == (k, t),
                "n={n} c={c} d={d}: published k={k} t={t} c={published_c}"
            );
        }
    }

    /// The worked example of `docs/secagg.md`: 8 clients, 20 % corrupt, 20 % dropout. The old
    /// bound gave k = 4, t = 3, which one corrupt neighbour breaks (5 holders: the corrupt one
    /// plus two honest ones told "alive" and two told "dropped" give 3 shares of each secret).
    #[test]
    fn worked_example_of_the_docs() {
        let p = Params::for_threat_model(8, 0.2, 0.2, 40, 20, Adversary::SemiMalicious)
            .expect("feasible");
        assert_eq!((p.degree, p.threshold, p.corrupt_neighbours_max), (6, 5, 1));
        // The old pair fails the corrected bound at the same c.
        let (old_k, old_t) = (4, 3);
        assert_eq!(corrupt_neighbours_bound(8, 0.2, old_k, 40), 1);
        assert!(
            2 * old_t <= old_k + 1 + 1,
            "k = 4, t = 3 is unsafe with c = 1"
        );
    }

    #[test]
    fn semi_malicious_needs_majority_threshold() {
        for n in [100, 300, 1000] {
            let p = Params::for_threat_model(n, 0.05, 0.1, 40, 20, Adversary::SemiMalicious)
                .expect("feasible");
            let (k, t, c) = (p.degree, p.threshold, p.corrupt_neighbours_max);
            assert!(
                2 * t > k + 1 + c,
                "n={n}: 2t={} must exceed k+1+c={}",
                2 * t,
                k + 1 + c
            );
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

    /// The corrupt-neighbour bound `c` the finder must have used for `k` (σ = 40), recomputed
    /// here rather than through [`corrupt_neighbours_bound`].
    fn corrupt_bound(n: u32, corrupt: f64, k: u32) -> u32 {
        let n64 = u64::from(n);
        let bad = ((corrupt + EPSILON) * n as f64).floor() as u64;
        let q = (-41.0 * std::f64::consts::LN_2).exp() / n as f64;
        Hypergeometric::new(n64, bad, u64::from(k)).upper_quantile(q) as u32
    }

    fn check_semi_malicious(n: u32, corrupt: f64, dropout: f64) -> Result<(), String> {
        let Ok(p) = Params::for_threat_model(n, corrupt, dropout, 40, 20, Adversary::SemiMalicious)
        else {
            return Ok(());
        };
        let (k, t, c) = (p.degree, p.threshold, p.corrupt_neighbours_max);
        if c != corrupt_bound(n, corrupt, k) {
            return Err(format!(
                "n={n} corrupt={corrupt}: c={c} is not the σ = 40 quantile"
            ));
        }
        let ok = 2 * t > k + 1 + c && t <= k + 1 && k % 2 == 0 && k < n - 1;
        ok.then_some(()).ok_or(format!(
            "n={n} corrupt={corrupt} dropout={dropout}: k={k} t={t} c={c}"
        ))
    }

    /// Every n in 4..=1000 on a grid of threat models.
    #[test]
    fn semi_malicious_bound_holds_for_every_n() {
        const GRID: [f64; 5] = [0.0, 0.05, 0.1, 0.2, 0.3];
        let failures: Vec<String> = (4..=1000)
            .flat_map(|n| {
                GRID.into_iter()
                    .flat_map(move |c| GRID.into_iter().map(move |d| (n, c, d)))
            })
            .filter_map(|(n, c, d)| check_semi_malicious(n, c, d).err())
            .collect();
        assert!(
            failures.is_empty(),
            "{} failures, first: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// The same at random n and fractions.
        #[test]
        fn semi_malicious_bound_holds(n in 4u32..=1000, corrupt in 0.0f64..0.5, dropout in 0.0f64..0.45) {
            proptest::prop_assert!(check_semi_malicious(n, corrupt, dropout).is_ok(), "{:?}", check_semi_malicious(n, corrupt, dropout));
        }
    }

    #[test]
    fn ln_factorial_is_continuous_at_the_switch() {
        let exact: f64 = (2..=300u64).map(|i| (i as f64).ln()).sum();
        assert!((ln_factorial(300) - exact).abs() < 1e-9);
    }
}
