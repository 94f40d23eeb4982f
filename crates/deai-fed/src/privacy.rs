//! The privacy a task may spend, recomputed from public facts only: the task spec (σ, δ,
//! rounds, datasets per round) and what the ledger recorded (the task's ε schedule, each
//! round's eligible count and selection). The creator records the schedule with
//! [`schedule`] in `TaskCreate`; owners run [`check_round`] before they train and `deai verify
//! task` runs [`check_task`].
//!
//! # What is charged, and why without amplification
//!
//! Each round an owner takes part in is one Gaussian mechanism with sensitivity `C` (its
//! clipped update) and noise `σC` on the released sum. Selections are public on the ledger, so
//! whoever sees a round's sum (the coordinator first) knows whether an owner's data is in it:
//! subsampling amplifies nothing against them. An owner's privacy loss within a task is
//! therefore the tight RDP composition of its own participations, `ε(j)` for `j` rounds at
//! `q = 1`, and the ledger charges each dataset by its own count
//! ([`deai_ledger::Task::next_charge`]). What the coordinator may still steer (which owners a
//! round takes) then changes whom it charges, never how much an owner loses for what it is
//! charged; the selection itself is drawn by the ledger from the including block's beacon.
//!
//! # Why owners recompute
//!
//! The ledger sees no floats, so it cannot run the accountant; it records whatever schedule the
//! creator declares. A schedule below `ε(j)` would spend privacy the ledger does not record, so
//! each owner refuses to train for a task whose recorded schedule is below the accountant's at
//! any step ([`PrivacyError::Undercharged`]) or a round whose size differs from the spec's
//! (`min(datasets_per_round, eligible)`, [`PrivacyError::SelectionSize`]).

use deai_learn::dp::rdp;
use deai_ledger::{EPSILON_SCALE, EPSILON_SCHEDULE_STEPS_MAX, EpsilonStep, Round, Task};
use thiserror::Error;

use super::TaskSpec;

/// Why the recorded privacy spending is refused.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum PrivacyError {
    /// A round selected another number of datasets than the spec asks for.
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
    /// The task's schedule charges less than the accountant's ε for some participation count.
    #[error(
        "after {rounds} rounds the task's schedule charges ε = {charged} but the spec's accountant gives {required} (ε undercharged)"
    )]
    Undercharged {
        /// Rounds taken part in.
        rounds: u32,
        /// Cumulative ε the schedule charges (real units).
        charged: f64,
        /// Cumulative ε the accountant requires (real units).
        required: f64,
    },
    /// The schedule does not cover the spec's rounds.
    #[error("the task's schedule covers {covered} rounds; the spec runs {rounds}")]
    ScheduleShort {
        /// Rounds the last step covers.
        covered: u32,
        /// The spec's rounds.
        rounds: u32,
    },
    /// The accountant gives no finite ε.
    #[error("no finite ε after {rounds} rounds at σ = {sigma}")]
    NoEpsilon {
        /// Rounds taken part in.
        rounds: u32,
        /// Noise multiplier.
        sigma: f64,
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

/// A dataset's cumulative ε after taking part in `rounds` rounds of `spec`'s mechanism (no
/// amplification), fixed point, rounded up.
pub fn cumulative_fixed(spec: &TaskSpec, rounds: u32) -> Result<u64, PrivacyError> {
    cumulative_at(spec.noise_multiplier, spec.delta, rounds)
}

/// [`cumulative_fixed`] for noise multiplier `sigma` and total δ `delta`.
fn cumulative_at(sigma: f64, delta: f64, rounds: u32) -> Result<u64, PrivacyError> {
    let eps = rdp::epsilon(1.0, sigma, u64::from(rounds), delta);
    let fixed = eps * EPSILON_SCALE as f64;
    if !fixed.is_finite() || fixed >= u64::MAX as f64 / 2.0 {
        return Err(PrivacyError::NoEpsilon { rounds, sigma });
    }
    Ok(fixed.ceil() as u64)
}

/// The participation counts a schedule of `rounds` rounds prices: every count when they fit in
/// the ledger's step limit, else a geometric grid ending at `rounds` (a dataset is charged, on
/// reaching a grid interval, the ε of the interval's end: a few percent more than the exact
/// figure, never less).
pub fn grid(rounds: u32) -> Vec<u32> {
    let steps = EPSILON_SCHEDULE_STEPS_MAX as u32;
    if rounds <= steps {
        return (1..=rounds).collect();
    }
    let mut out = Vec::with_capacity(steps as usize);
    let mut previous = 0u32;
    for i in 0..steps {
        let geometric = f64::from(rounds).powf(f64::from(i) / f64::from(steps - 1));
        // Leave room for the steps still to come, so the last one lands on `rounds`.
        let room = rounds - (steps - 1 - i);
        let j = (geometric.round() as u32).max(previous + 1).min(room);
        out.push(j);
        previous = j;
    }
    out
}

/// The schedule an honest creator records in `TaskCreate` for `spec`: at each grid point `j`,
/// `⌈ε(j)·10⁶⌉` (non-decreasing, the first at least 1).
pub fn schedule(spec: &TaskSpec) -> Result<Vec<EpsilonStep>, PrivacyError> {
    schedule_for(spec.noise_multiplier, spec.delta, spec.rounds)
}

/// [`schedule`] for a task of `rounds` rounds with noise multiplier `sigma` and total δ
/// `delta` (what `deai tx task-create` records when given the spec's numbers).
pub fn schedule_for(sigma: f64, delta: f64, rounds: u32) -> Result<Vec<EpsilonStep>, PrivacyError> {
    let mut out = Vec::new();
    let mut previous = 0u64;
    for rounds in grid(rounds) {
        let epsilon = cumulative_at(sigma, delta, rounds)?.max(previous).max(1);
        out.push(EpsilonStep { rounds, epsilon });
        previous = epsilon;
    }
    Ok(out)
}

/// Err unless `recorded` covers the spec's rounds and charges at least the accountant's ε at
/// every participation count it prices. A step function covers every count in its interval iff it covers the
/// interval's end (ε grows with the count), so checking each step's own count suffices.
pub fn check_schedule(spec: &TaskSpec, recorded: &[EpsilonStep]) -> Result<(), PrivacyError> {
    let covered = recorded.last().map_or(0, |s| s.rounds);
    if covered < spec.rounds {
        return Err(PrivacyError::ScheduleShort {
            covered,
            rounds: spec.rounds,
        });
    }
    // Every step, also past the spec's rounds: a task may record more rounds than its spec
    // names, and a dataset taking part in them must still pay the accountant's price.
    for step in recorded {
        let required = cumulative_fixed(spec, step.rounds)?;
        if step.epsilon < required {
            return Err(PrivacyError::Undercharged {
                rounds: step.rounds,
                charged: step.epsilon as f64 / EPSILON_SCALE as f64,
                required: required as f64 / EPSILON_SCALE as f64,
            });
        }
    }
    Ok(())
}

/// How many datasets a round with `eligible` eligible selects under `spec`.
pub fn selection_size(spec: &TaskSpec, eligible: u32) -> u32 {
    spec.datasets_per_round.min(eligible)
}

/// Err unless round `r` selected `min(datasets_per_round, eligible)` datasets.
pub fn check_selection(spec: &TaskSpec, r: &Round) -> Result<(), PrivacyError> {
    if r.eligible == 0 {
        return Err(PrivacyError::NoEligible(r.number));
    }
    let expected = selection_size(spec, r.eligible);
    let selected = u32::try_from(r.selected.len()).unwrap_or(u32::MAX);
    if selected != expected {
        return Err(PrivacyError::SelectionSize {
            round: r.number,
            selected,
            expected,
            eligible: r.eligible,
        });
    }
    Ok(())
}

/// What an owner checks before it trains in `round` of `task`: the task's schedule covers the
/// accountant and the round selected what the spec asks for.
pub fn check_round(spec: &TaskSpec, task: &Task, round: &Round) -> Result<(), PrivacyError> {
    check_schedule(spec, &task.epsilon_schedule)?;
    check_selection(spec, round)
}

/// What `deai verify task` checks: the schedule, and every round's selection size.
pub fn check_task(spec: &TaskSpec, task: &Task) -> Result<(), PrivacyError> {
    check_schedule(spec, &task.epsilon_schedule)?;
    task.round_log
        .iter()
        .try_for_each(|r| check_selection(spec, r))
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

    #[test]
    fn an_honest_schedule_checks_and_is_the_unamplified_accountant() {
        let spec = spec();
        let s = schedule(&spec).expect("finite");
        assert_eq!(s.len(), spec.rounds as usize);
        check_schedule(&spec, &s).expect("honest");
        for step in &s {
            let exact = rdp::epsilon(1.0, 1.0, u64::from(step.rounds), spec.delta);
            let recorded = step.epsilon as f64 / EPSILON_SCALE as f64;
            assert!(recorded >= exact && recorded - exact <= 1e-6, "{step:?}");
        }
        // Without amplification, more than what q = 0.8 would have charged over all rounds.
        let amplified = rdp::epsilon(0.8, 1.0, u64::from(spec.rounds), spec.delta);
        let last = s.last().expect("rounds").epsilon as f64 / EPSILON_SCALE as f64;
        assert!(last > amplified, "{last} vs {amplified}");
        // And well below basic composition of one round's ε.
        let basic = rdp::epsilon(1.0, 1.0, 1, spec.delta) * f64::from(spec.rounds);
        assert!(last < basic * 0.6, "{last} vs basic {basic}");
    }

    #[test]
    fn a_schedule_below_the_accountant_is_refused_at_the_step_that_is_short() {
        let spec = spec();
        let mut s = schedule(&spec).expect("finite");
        s[6].epsilon = s[5].epsilon;
        assert!(matches!(
            check_schedule(&spec, &s),
            Err(PrivacyError::Undercharged { rounds: 7, .. })
        ));
        // A task recording more rounds than its spec: the steps past the spec are checked too.
        let mut long = schedule(&spec).expect("finite");
        let last = *long.last().expect("rounds");
        long.push(EpsilonStep {
            rounds: spec.rounds + 10,
            epsilon: last.epsilon,
        });
        assert!(matches!(
            check_schedule(&spec, &long),
            Err(PrivacyError::Undercharged { rounds, .. }) if rounds == spec.rounds + 10
        ));
        let short = &schedule(&spec).expect("finite")[..10];
        assert_eq!(
            check_schedule(&spec, short),
            Err(PrivacyError::ScheduleShort {
                covered: 10,
                rounds: spec.rounds
            })
        );
    }

    #[test]
    fn long_tasks_are_priced_on_a_grid_that_never_undercharges() {
        for rounds in [129, 500, 10_000] {
            let g = grid(rounds);
            assert_eq!(g.len(), EPSILON_SCHEDULE_STEPS_MAX, "{rounds}");
            assert_eq!(g.first(), Some(&1));
            assert_eq!(g.last(), Some(&rounds));
            assert!(g.windows(2).all(|w| w[0] < w[1]), "{g:?}");
        }
        let spec = TaskSpec {
            rounds: 1000,
            ..spec()
        };
        let s = schedule(&spec).expect("finite");
        check_schedule(&spec, &s).expect("honest");
        // Every participation count is charged at least its exact ε (the step at or after it),
        // and at most a few percent more.
        for j in [1u32, 37, 128, 129, 500, 999, 1000] {
            let i = s.partition_point(|st| st.rounds < j);
            let charged = s[i].epsilon as f64;
            let exact = cumulative_fixed(&spec, j).expect("finite") as f64;
            assert!(
                charged >= exact && charged <= exact * 1.06,
                "{j}: {charged} vs {exact}"
            );
        }
        assert_eq!(grid(20), (1..=20).collect::<Vec<_>>());
    }

    #[test]
    fn a_round_of_the_wrong_size_is_refused() {
        let spec = spec();
        let mut r = Round {
            number: 2,
            opened_height: 1,
            seed: deai_ledger::Digest::default(),
            global_model: deai_ledger::Digest::default(),
            selected: (1..=8).collect(),
            secagg: deai_ledger::SecAggParams { n: 8, k: 8, t: 5 },
            epsilon: 1,
            delta: 1,
            eligible: 10,
            deadline_height: 9,
            outcome: None,
            expired_height: None,
        };
        check_selection(&spec, &r).expect("8 of 10");
        r.selected = (1..=10).collect();
        assert_eq!(
            check_selection(&spec, &r),
            Err(PrivacyError::SelectionSize {
                round: 2,
                selected: 10,
                expected: 8,
                eligible: 10
            })
        );
        r.eligible = 0;
        assert_eq!(check_selection(&spec, &r), Err(PrivacyError::NoEligible(2)));
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
