//! The privacy a task has spent, recomputed from public facts only: the task spec (σ, δ,
//! datasets per round) and the ledger's round log (each round's eligible count, selection and
//! ε charge). Owners run [`check_rounds`] before they train, the coordinator prices a new round
//! with [`price_round`] (so a restarted or replaced coordinator charges exactly what the first
//! would have), and `deai verify task` runs [`check_rounds`] over the whole log.
//!
//! # Why owners recompute
//!
//! The ledger sees no floats, so it cannot run the RDP accountant; it records whatever ε a
//! coordinator declares. A coordinator that declared less than the accountant's figure (or
//! selected more datasets than the spec's sampling rate allows, which voids the subsampling
//! amplification the figure assumes) would spend privacy the ledger does not record. Each
//! owner therefore refuses a round ([`check_latest`]) unless
//!
//! - the round selected exactly `min(datasets_per_round, eligible)` datasets, `eligible` being
//!   the count the ledger itself computed at `RoundOpen`;
//! - the ledger's cumulative charge is at least `⌈ε_RDP(rounds so far)·10⁶⌉`, the accountant's
//!   cumulative ε for the subsampled Gaussian mechanism with `q_r = selected_r / eligible_r`
//!   and the spec's σ, composed over the rounds at each RDP order.
//!
//! [`check_rounds`] applies both to every round in turn, for verification.

use std::collections::BTreeMap;

use deai_learn::dp::rdp;
use deai_ledger::EPSILON_SCALE;
use thiserror::Error;

use super::TaskSpec;

/// What the ledger recorded about one round, as the accountant needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChargedRound {
    /// Round number.
    pub number: u32,
    /// Datasets the ledger found eligible at `RoundOpen`.
    pub eligible: u32,
    /// Datasets selected.
    pub selected: u32,
    /// ε charged for the round, fixed point ([`EPSILON_SCALE`]).
    pub epsilon: u64,
}

impl From<&deai_ledger::Round> for ChargedRound {
    fn from(r: &deai_ledger::Round) -> Self {
        Self {
            number: r.number,
            eligible: r.eligible,
            selected: u32::try_from(r.selected.len()).unwrap_or(u32::MAX),
            epsilon: r.epsilon,
        }
    }
}

/// Why the recorded privacy spending is refused.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum PrivacyError {
    /// A round selected another number of datasets than the spec's sampling asks for.
    #[error(
        "round {round} selected {selected} datasets; the spec allows exactly {expected} of {eligible} eligible"
    )]
    SelectionSize {
        /// Round number.
        round: u32,
        /// Datasets selected.
        selected: u32,
        /// `min(datasets_per_round, eligible)`.
        expected: u32,
        /// Eligible datasets.
        eligible: u32,
    },
    /// The ledger's cumulative ε after a round is below the accountant's.
    #[error(
        "after round {round} the ledger records ε = {charged} but the spec's accountant gives {required} (ε undercharged)"
    )]
    Undercharged {
        /// Round number.
        round: u32,
        /// Cumulative ε charged on the ledger (real units).
        charged: f64,
        /// Cumulative ε the accountant requires (real units).
        required: f64,
    },
    /// The accountant gives no finite ε.
    #[error("no finite ε after round {round}: σ = {sigma}, q = {q}")]
    NoEpsilon {
        /// Round number.
        round: u32,
        /// Noise multiplier.
        sigma: f64,
        /// Sampling rate of that round.
        q: f64,
    },
    /// The spec's noise multiplier is below a consent policy's floor.
    #[error("the task's noise multiplier σ = {sigma} is below this dataset's floor {floor}")]
    SigmaBelowFloor {
        /// The spec's σ.
        sigma: f64,
        /// The policy's minimum σ.
        floor: f64,
    },
    /// A round records no eligible datasets.
    #[error("round {0} records no eligible dataset")]
    NoEligible(u32),
}

/// The running RDP state of a task: one value per order of [`rdp::default_orders`].
#[derive(Debug, Clone)]
pub struct Accountant {
    orders: Vec<f64>,
    rdp: Vec<f64>,
    sigma: f64,
    delta: f64,
    /// One round's RDP per order, by `(selected, eligible)`: a task's sampling rate rarely
    /// changes, and each step costs a series per order. Rounds are still added one by one, in
    /// order, so a replay gives bit for bit what a round-by-round accountant gives.
    steps: BTreeMap<(u32, u32), Vec<f64>>,
}

impl Accountant {
    /// A fresh accountant for `spec` (no round spent).
    pub fn new(spec: &TaskSpec) -> Self {
        let orders = rdp::default_orders();
        let rdp = vec![0.0; orders.len()];
        Self {
            orders,
            rdp,
            sigma: spec.noise_multiplier,
            delta: spec.delta,
            steps: BTreeMap::new(),
        }
    }

    /// The accountant after the rounds of `log` (rebuilt from the ledger, never from memory).
    pub fn replay(spec: &TaskSpec, log: &[ChargedRound]) -> Self {
        let mut acc = Self::new(spec);
        for r in log {
            acc.spend(r.selected, r.eligible);
        }
        acc
    }

    /// Composes one round selecting `selected` of `eligible`.
    pub fn spend(&mut self, selected: u32, eligible: u32) {
        let (orders, sigma) = (&self.orders, self.sigma);
        let step = self.steps.entry((selected, eligible)).or_insert_with(|| {
            let q = sampling_rate(selected, eligible);
            orders.iter().map(|&a| rdp::rdp_step(q, sigma, a)).collect()
        });
        for (r, s) in self.rdp.iter_mut().zip(step.iter()) {
            *r += s;
        }
    }

    /// The tight cumulative ε so far, real units.
    pub fn epsilon(&self) -> f64 {
        rdp::epsilon_from_rdp(&self.orders, &self.rdp, self.delta)
    }

    /// The cumulative ε so far in fixed point, rounded up; `None` if not finite.
    pub fn epsilon_fixed(&self) -> Option<u64> {
        let fixed = self.epsilon() * EPSILON_SCALE as f64;
        (fixed.is_finite() && fixed < u64::MAX as f64 / 2.0).then(|| fixed.ceil() as u64)
    }
}

/// `selected / eligible`, or 1 when nothing was eligible (never reached on a valid log).
fn sampling_rate(selected: u32, eligible: u32) -> f64 {
    if eligible == 0 {
        return 1.0;
    }
    (f64::from(selected) / f64::from(eligible)).min(1.0)
}

/// How many datasets a round with `eligible` eligible selects under `spec`.
pub fn selection_size(spec: &TaskSpec, eligible: u32) -> u32 {
    spec.datasets_per_round.min(eligible)
}

/// The cumulative ε (fixed point, rounded up) the ledger must have charged once a round with
/// `eligible` eligible datasets is added to `log`.
pub fn price_round(
    spec: &TaskSpec,
    log: &[ChargedRound],
    eligible: u32,
) -> Result<u64, PrivacyError> {
    let round = log.last().map_or(1, |r| r.number + 1);
    if eligible == 0 {
        return Err(PrivacyError::NoEligible(round));
    }
    let mut acc = Accountant::replay(spec, log);
    let selected = selection_size(spec, eligible);
    acc.spend(selected, eligible);
    acc.epsilon_fixed().ok_or(PrivacyError::NoEpsilon {
        round,
        sigma: spec.noise_multiplier,
        q: sampling_rate(selected, eligible),
    })
}

/// What an owner checks before it trains in the last round of `log`: that round selected what
/// the spec asks for, and the ledger's cumulative charge through it covers the accountant's ε
/// for all rounds so far (each at its recorded sampling rate). An earlier round that was
/// undercharged and made up for later does not block the owner: what protects its data is
/// that the total recorded now is enough. `deai verify task` reports such a round
/// ([`check_rounds`]).
pub fn check_latest(spec: &TaskSpec, log: &[ChargedRound]) -> Result<(), PrivacyError> {
    let Some(last) = log.last() else {
        return Ok(());
    };
    check_selection(spec, last)?;
    let charged = log
        .iter()
        .fold(0u64, |sum, r| sum.saturating_add(r.epsilon));
    check_charge(spec, &Accountant::replay(spec, log), charged, last)
}

/// Err unless `charged` (fixed point) covers the accountant's cumulative ε after `last`.
fn check_charge(
    spec: &TaskSpec,
    acc: &Accountant,
    charged: u64,
    last: &ChargedRound,
) -> Result<(), PrivacyError> {
    let required = acc.epsilon_fixed().ok_or(PrivacyError::NoEpsilon {
        round: last.number,
        sigma: spec.noise_multiplier,
        q: sampling_rate(last.selected, last.eligible),
    })?;
    if charged < required {
        return Err(PrivacyError::Undercharged {
            round: last.number,
            charged: charged as f64 / EPSILON_SCALE as f64,
            required: required as f64 / EPSILON_SCALE as f64,
        });
    }
    Ok(())
}

fn check_selection(spec: &TaskSpec, r: &ChargedRound) -> Result<(), PrivacyError> {
    if r.eligible == 0 {
        return Err(PrivacyError::NoEligible(r.number));
    }
    let expected = selection_size(spec, r.eligible);
    if r.selected != expected {
        return Err(PrivacyError::SelectionSize {
            round: r.number,
            selected: r.selected,
            expected,
            eligible: r.eligible,
        });
    }
    Ok(())
}

/// Checks every round of `log` against the spec (see the module docs): selection sizes and,
/// after each round, the ledger's cumulative ε against the accountant's.
pub fn check_rounds(spec: &TaskSpec, log: &[ChargedRound]) -> Result<(), PrivacyError> {
    let mut acc = Accountant::new(spec);
    let mut charged = 0u64;
    for r in log {
        check_selection(spec, r)?;
        acc.spend(r.selected, r.eligible);
        charged = charged.saturating_add(r.epsilon);
        check_charge(spec, &acc, charged, r)?;
    }
    Ok(())
}

/// Err if the spec's σ is below a consent policy's floor ([`deai_ledger::NOISE_SCALE`]
/// fixed point; 0 means no floor).
pub fn check_sigma_floor(spec: &TaskSpec, floor_fixed: u64) -> Result<(), PrivacyError> {
    let floor = floor_fixed as f64 / deai_ledger::NOISE_SCALE as f64;
    if spec.noise_multiplier < floor {
        return Err(PrivacyError::SigmaBelowFloor {
            sigma: spec.noise_multiplier,
            floor,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TaskSpec {
        TaskSpec {
            noise_multiplier: 1.0,
            ..TaskSpec::digits_default()
        }
    }

    /// The rounds an honest coordinator records for a constant eligible count.
    fn honest_log(spec: &TaskSpec, eligible: u32, rounds: u32) -> Vec<ChargedRound> {
        let mut log: Vec<ChargedRound> = Vec::new();
        let mut spent = 0;
        for number in 1..=rounds {
            let total = price_round(spec, &log, eligible).expect("finite");
            let epsilon = total.saturating_sub(spent).max(1);
            spent += epsilon;
            log.push(ChargedRound {
                number,
                eligible,
                selected: selection_size(spec, eligible),
                epsilon,
            });
        }
        log
    }

    #[test]
    fn an_honest_log_checks_and_matches_the_schedule() {
        let spec = spec();
        let log = honest_log(&spec, 10, 5);
        check_rounds(&spec, &log).expect("honest");
        let schedule = spec.epsilon_schedule(10).expect("finite");
        // Composing round by round equals the closed form up to float rounding of the last
        // digit, which the ceiling may move by one unit.
        let mut charged = 0u64;
        let mut scheduled = 0u64;
        for (r, s) in log.iter().zip(&schedule) {
            charged += r.epsilon;
            scheduled += s;
            assert!(charged.abs_diff(scheduled) <= 1, "{charged} vs {scheduled}");
        }
    }

    #[test]
    fn an_undercharged_round_is_refused_by_name() {
        let spec = spec();
        let mut log = honest_log(&spec, 10, 3);
        log[2].epsilon = 1;
        assert!(matches!(
            check_rounds(&spec, &log),
            Err(PrivacyError::Undercharged { round: 3, .. })
        ));
    }

    #[test]
    fn an_owner_checks_the_total_now_and_verification_every_prefix() {
        let spec = spec();
        let mut log = honest_log(&spec, 10, 3);
        // Round 2 undercharged, round 3 made up for it: the total covers all three rounds.
        let short = log[1].epsilon - 1;
        log[1].epsilon = 1;
        log[2].epsilon += short;
        check_latest(&spec, &log).expect("the total is enough for an owner of round 3");
        assert!(matches!(
            check_rounds(&spec, &log),
            Err(PrivacyError::Undercharged { round: 2, .. })
        ));
        // The open round itself undercharged: the owner refuses.
        log[2].epsilon -= short + 1;
        assert!(matches!(
            check_latest(&spec, &log),
            Err(PrivacyError::Undercharged { round: 3, .. })
        ));
        check_latest(&spec, &[]).expect("nothing to check");
    }

    #[test]
    fn a_selection_larger_than_the_spec_is_refused() {
        let spec = spec();
        let mut log = honest_log(&spec, 10, 2);
        log[1].selected = 10;
        assert!(matches!(
            check_rounds(&spec, &log),
            Err(PrivacyError::SelectionSize {
                round: 2,
                selected: 10,
                expected: 8,
                ..
            })
        ));
    }

    #[test]
    fn fewer_eligible_cost_more_and_replay_matches_the_running_accountant() {
        let spec = spec();
        let log = honest_log(&spec, 10, 2);
        let with_10 = price_round(&spec, &log, 10).expect("finite");
        let with_9 = price_round(&spec, &log, 9).expect("finite");
        assert!(with_9 > with_10, "{with_9} vs {with_10}");
        let mut running = Accountant::new(&spec);
        running.spend(8, 10);
        running.spend(8, 10);
        assert_eq!(
            running.epsilon_fixed(),
            Accountant::replay(&spec, &log).epsilon_fixed()
        );
    }

    #[test]
    fn sigma_floor() {
        let spec = spec();
        check_sigma_floor(&spec, 0).expect("no floor");
        check_sigma_floor(&spec, deai_ledger::NOISE_SCALE).expect("σ = 1 meets 1");
        assert!(matches!(
            check_sigma_floor(&spec, 2 * deai_ledger::NOISE_SCALE),
            Err(PrivacyError::SigmaBelowFloor { .. })
        ));
    }
}
