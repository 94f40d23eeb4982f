//! Each owner's contribution, estimated from group scores across rounds.
//!
//! Secure aggregation reveals one sum per scoring group, so a round scores groups
//! ([`crate::score`]) and every survivor of a group gets its group's score: a free rider earns
//! what its group-mates earn. But groups are drawn afresh every round, so each completed group
//! gives one equation, "the group's score is the mean of its members' contributions", and over
//! rounds the equations pin down each owner (group testing).
//!
//! The model: in round `r`, group `g` with survivors `S` scored `s_{r,g}`; with `m_r` the mean
//! score of the round's groups, `s_{r,g} / m_r ≈ (1/|S|) Σ_{i∈S} x_i + noise`. Dividing by
//! `m_r` puts early rounds (large improvements) and late ones (small) on one scale, so `x_i` is
//! owner `i`'s contribution relative to the average member: about 1 for an honest owner with a
//! typical dataset, about 0 for a free rider, lower for one that harms. Group scores are a loss
//! improvement of the group's mean update, which is to first order the mean of the members' own
//! improvements, so the model is linear to first order.
//!
//! The estimate is ridge least squares, shrunk toward 0 (an owner seen in few groups earns
//! little until the evidence is in: a new identity is not paid on the average's credit), with a
//! standard error from the residual variance. It is a pure function of the recorded groups and
//! scores, computed in `f64` in a fixed order, so every party that reads the same records gets
//! the same bits.

use std::collections::BTreeMap;

use deai_learn::data::Dataset;

use super::groups::RoundPlan;
use super::{FedError, strategy};

/// One completed group of one round.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The round.
    pub round: u32,
    /// Datasets whose updates are in the group's sum.
    pub members: Vec<u64>,
    /// The group's score (any scale; it is normalized per round).
    pub score: f64,
}

/// One owner's estimated contribution.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Estimate {
    /// The dataset.
    pub dataset: u64,
    /// Contribution relative to the average member (≈ 1 honest, ≈ 0 free rider).
    pub contribution: f64,
    /// Standard error of `contribution`.
    pub std_error: f64,
    /// Groups this dataset was a member of.
    pub groups: u32,
}

/// Ridge strength, relative to one full observation of an owner.
pub const RIDGE: f64 = 0.5;

/// Estimates every member's contribution (ascending by dataset). Rounds whose groups all scored
/// zero say nothing about anyone and are skipped.
pub fn estimate(observations: &[Observation]) -> Vec<Estimate> {
    let mut round_mean: BTreeMap<u32, (f64, usize)> = BTreeMap::new();
    for o in observations {
        let e = round_mean.entry(o.round).or_default();
        e.0 += o.score;
        e.1 += 1;
    }
    let ids: Vec<u64> = {
        let mut ids: Vec<u64> = observations
            .iter()
            .flat_map(|o| o.members.iter().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let index: BTreeMap<u64, usize> = ids.iter().enumerate().map(|(i, d)| (*d, i)).collect();
    let k = ids.len();
    // Normal equations (AᵀA + λI) x = Aᵀy, A's row for a group is 1/|S| at each member.
    let mut ata = vec![0f64; k * k];
    let mut aty = vec![0f64; k];
    let mut groups = vec![0u32; k];
    let mut rows: Vec<(Vec<usize>, f64, f64)> = Vec::new();
    for o in observations {
        let (sum, n) = round_mean[&o.round];
        let mean = sum / n as f64;
        if o.members.is_empty() || mean.is_nan() || mean <= 0.0 || !o.score.is_finite() {
            continue;
        }
        // Rows scaled by the round's mean score: s = m_r · mean(x) + noise, so rounds whose
        // groups improved the model clearly weigh more than late rounds of small, noisy gains.
        let y = o.score;
        let w = mean / o.members.len() as f64;
        let cols: Vec<usize> = o.members.iter().map(|d| index[d]).collect();
        for &a in &cols {
            aty[a] += w * y;
            groups[a] += 1;
            for &b in &cols {
                ata[a * k + b] += w * w;
            }
        }
        rows.push((cols, w, y));
    }
    // λ is RIDGE times what one group membership adds to an owner's diagonal, on average.
    let memberships: u32 = groups.iter().sum();
    let trace: f64 = (0..k).map(|i| ata[i * k + i]).sum();
    let ridge = RIDGE * trace / f64::from(memberships.max(1));
    for i in 0..k {
        ata[i * k + i] += ridge;
    }
    if ridge.is_nan() || ridge <= 0.0 {
        return Vec::new();
    }
    let Some(chol) = cholesky(&ata, k) else {
        return Vec::new();
    };
    let x = solve(&chol, k, &aty);
    let residual: f64 = rows
        .iter()
        .map(|(cols, w, y)| {
            let fit = w * cols.iter().map(|&c| x[c]).sum::<f64>();
            (y - fit).powi(2)
        })
        .sum();
    let dof = rows.len().saturating_sub(k).max(1) as f64;
    let sigma2 = residual / dof;
    ids.iter()
        .enumerate()
        .map(|(i, &dataset)| {
            let mut e = vec![0f64; k];
            e[i] = 1.0;
            let inv_ii = solve(&chol, k, &e)[i];
            Estimate {
                dataset,
                contribution: x[i],
                std_error: (sigma2 * inv_ii).sqrt(),
                groups: groups[i],
            }
        })
        .collect()
}

/// First-order group scores of one round: for each group sum (in plan order, `None` if the
/// group aborted), `−∇L(global) · mean Δ_g`, the validation loss's first-order decrease along the
/// group's mean update. Unlike the ledger's scores (a clamped, saturating loss improvement) it is
/// exactly the mean of the members' own first-order decreases, which is what [`estimate`]'s
/// model assumes; anyone holding the round's aggregate blob, the global model and the validation
/// set computes the same values.
pub fn first_order_scores(
    plan: &RoundPlan,
    global: &[f32],
    sums: &[Option<Vec<u32>>],
    validation: &Dataset,
) -> Result<Vec<Option<f64>>, FedError> {
    plan.kind
        .check_data(validation)
        .map_err(|e| FedError::LocalData(e.to_string()))?;
    let (_, grad) = deai_learn::model::loss_and_grad(
        &plan.kind,
        global,
        &validation.features,
        &validation.labels,
    );
    sums.iter()
        .map(|sum| {
            let Some(sum) = sum else { return Ok(None) };
            if !strategy::plausible(&plan.quantizer, sum) {
                return Ok(None);
            }
            let (total, weight) = strategy::dequantize(&plan.quantizer, sum, global.len())?;
            let n = weight.max(1) as f64;
            let along: f64 = grad
                .iter()
                .zip(&total)
                .map(|(g, t)| f64::from(*g) * t / n)
                .sum();
            Ok(Some(-along))
        })
        .collect()
}

/// How many standard errors below its estimate an owner is paid at: pay follows what the
/// evidence establishes, so an owner whose contribution cannot be told from zero earns little
/// whatever its point estimate.
pub const PAY_LOWER_BOUND_SE: f64 = 1.0;

/// Each owner's share of `total` by the lower bound of its estimated contribution
/// (`contribution − PAY_LOWER_BOUND_SE · std_error`; a bound below zero earns nothing), rounded
/// down; what rounding leaves over stays with the payer.
pub fn pay(estimates: &[Estimate], total: u128) -> Vec<(u64, u128)> {
    // Fixed point at 10⁻⁹ so the split itself is integer arithmetic.
    let weights: Vec<(u64, u128)> = estimates
        .iter()
        .map(|e| {
            let bound = e.contribution - PAY_LOWER_BOUND_SE * e.std_error;
            let w = if bound.is_finite() && bound > 0.0 {
                (bound * 1e9).round() as u128
            } else {
                0
            };
            (e.dataset, w)
        })
        .collect();
    let sum: u128 = weights.iter().map(|(_, w)| w).sum();
    weights
        .into_iter()
        .map(|(d, w)| (d, share(total, w, sum)))
        .collect()
}

/// `⌊total · w / sum⌋` without overflow (0 when `sum` is 0).
fn share(total: u128, w: u128, sum: u128) -> u128 {
    let Some(per) = total.checked_div(sum) else {
        return 0;
    };
    // total = per·sum + rest, so total·w/sum = per·w + rest·w/sum, with rest < sum.
    let rest = total % sum;
    per * w
        + rest
            .checked_mul(w)
            .map_or_else(|| rest / sum * w, |p| p / sum)
}

/// The lower-triangular Cholesky factor of the `k × k` symmetric matrix `a`, or `None` if it is
/// not positive definite.
fn cholesky(a: &[f64], k: usize) -> Option<Vec<f64>> {
    let mut l = vec![0f64; k * k];
    for i in 0..k {
        for j in 0..=i {
            let mut s = a[i * k + j];
            for p in 0..j {
                s -= l[i * k + p] * l[j * k + p];
            }
            if i == j {
                if s.is_nan() || s <= 0.0 {
                    return None;
                }
                l[i * k + i] = s.sqrt();
            } else {
                l[i * k + j] = s / l[j * k + j];
            }
        }
    }
    Some(l)
}

/// Solves `L Lᵀ x = b`.
fn solve(l: &[f64], k: usize, b: &[f64]) -> Vec<f64> {
    let mut y = vec![0f64; k];
    for i in 0..k {
        let s: f64 = (0..i).map(|p| l[i * k + p] * y[p]).sum();
        y[i] = (b[i] - s) / l[i * k + i];
    }
    let mut x = vec![0f64; k];
    for i in (0..k).rev() {
        let s: f64 = (i + 1..k).map(|p| l[p * k + i] * x[p]).sum();
        x[i] = (y[i] - s) / l[i * k + i];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::{RngCore as _, SeedableRng as _};

    fn uniform(rng: &mut rand_chacha::ChaCha20Rng) -> f64 {
        (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Owners with known contributions, random groups of 4 every round, shrinking gains and
    /// constant noise: the estimate recovers who contributes what.
    #[test]
    fn random_regrouping_recovers_each_owners_contribution() {
        let truth: Vec<f64> = (0..20)
            .map(|i| match i {
                0 => 0.0,  // free rider
                1 => 2.0,  // twice the data
                2 => -1.0, // harmful
                _ => 1.0,
            })
            .collect();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let mut obs = Vec::new();
        for round in 0..60u32 {
            let mut ids: Vec<u64> = (0..20).collect();
            for i in (1..ids.len()).rev() {
                ids.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
            }
            // Gains shrink as training goes on; the noise does not.
            let scale = 1.0 / (1.0 + f64::from(round) / 30.0);
            for g in ids[..16].chunks(4) {
                let mean = g.iter().map(|&i| truth[i as usize]).sum::<f64>() / 4.0;
                let noise = 0.2 * uniform(&mut rng) - 0.1;
                obs.push(Observation {
                    round,
                    members: g.to_vec(),
                    score: scale * mean + noise,
                });
            }
        }
        let est = estimate(&obs);
        assert_eq!(est.len(), 20);
        let x = |d: usize| est[d].contribution;
        assert!(x(0).abs() < 0.3, "free rider {}", x(0));
        assert!(x(1) > 1.6, "double {}", x(1));
        assert!(x(2) < -0.6, "harmful {}", x(2));
        for e in &est[3..] {
            assert!((e.contribution - 1.0).abs() < 0.35, "honest {e:?}");
            assert!(e.std_error > 0.0 && e.std_error < 0.3, "{e:?}");
        }
        let paid = pay(&est, 1_000_000);
        assert_eq!(paid[2].1, 0, "a harmful owner is paid nothing");
        assert!(paid.iter().map(|p| p.1).sum::<u128>() <= 1_000_000);
        assert!(paid[1].1 > paid[5].1);
    }

    #[test]
    fn shares_are_exact_floors_without_overflow() {
        let max = u128::MAX;
        assert_eq!(share(max, 3, 4), max / 4 * 3 + 2);
        assert_eq!(share(10, 1, 3), 3);
        assert_eq!(share(10, 5, 0), 0);
        let ws = [7u128, 0, 13, 1];
        let total: u128 = ws.iter().map(|w| share(1_000_003, *w, 21)).sum();
        assert!(total <= 1_000_003 && total > 1_000_003 - 4);
    }

    #[test]
    fn nothing_to_learn_from_gives_nothing() {
        assert!(estimate(&[]).is_empty());
        let zero = Observation {
            round: 1,
            members: vec![1, 2, 3],
            score: 0.0,
        };
        let est = estimate(&[zero]);
        assert!(est.iter().all(|e| e.contribution == 0.0), "{est:?}");
        assert!(pay(&est, 100).iter().all(|p| p.1 == 0));
    }
}

/// The same estimate over a real task: owners train through the whole protocol (SecAgg+
/// groups, noise, the coordinator's group scores) and the estimate is read from the recorded
/// groups and scores alone.
#[cfg(test)]
mod with_training {
    use super::*;
    use crate::attack::OwnerAttack;
    use crate::harness::{Attackers, HarnessConfig, Owner, run_task};
    use crate::record::{AggregateBlob, RecordLimits};
    use crate::{TaskSpec, data::digits_split};

    const LIMITS: RecordLimits = RecordLimits {
        datasets_max: 64,
        vector_len_max: 1 << 16,
    };
    use ed25519_dalek::SigningKey;

    const BIG: u64 = 1;
    const SMALL: u64 = 2;
    const RIDER: u64 = 3;
    const FLIPPER: u64 = 4;

    /// One 40-round task on 13 owners (one with twice the data, one with half, a free rider, a
    /// label flipper, nine honest), paid 10⁶ by the estimate from first-order group scores.
    fn pay_for_seed(seed: u64) -> BTreeMap<u64, u128> {
        let split = digits_split(14).expect("digits");
        let s = &split.owners;
        let joined = {
            let mut both = s[0].clone();
            both.features.extend_from_slice(&s[1].features);
            both.labels.extend_from_slice(&s[1].labels);
            both
        };
        let half: Vec<usize> = (0..s[2].len() / 2).collect();
        let mut data = vec![joined, s[2].subset(&half)];
        data.extend(s[3..].iter().cloned());
        let owners: Vec<Owner> = data
            .into_iter()
            .enumerate()
            .map(|(i, data)| Owner {
                dataset: i as u64 + 1,
                key: SigningKey::from_bytes(&[i as u8 + 40; 32]),
                data,
            })
            .collect();
        let attacks = [("free-rider", RIDER), ("label-flip", FLIPPER)]
            .into_iter()
            .map(|(name, id)| Attackers {
                attack: OwnerAttack::from_name(name).expect("known"),
                members: [id].into(),
            })
            .collect();
        let spec = TaskSpec {
            rounds: 40,
            datasets_per_round: 12,
            group_size_min: 3,
            noise_multiplier: 0.1,
            ..TaskSpec::digits_default()
        };
        let cfg = HarnessConfig {
            task: 1,
            seed,
            attacks,
            ..HarnessConfig::default()
        };
        let report = run_task(&spec, &owners, &split.validation, &cfg).expect("task runs");
        let mut observations = Vec::new();
        let mut global = spec.initial_weights().expect("spec");
        for r in &report.rounds {
            let plan = RoundPlan::new(&spec, &r.info).expect("plan");
            let agg = AggregateBlob::decode(&r.outcome.aggregate.1, &LIMITS).expect("aggregate");
            let scores =
                first_order_scores(&plan, &global, &agg.groups, &split.validation).expect("scores");
            for (g, score) in r.outcome.groups.iter().zip(scores) {
                if let Some(score) = score {
                    observations.push(Observation {
                        round: r.info.round,
                        members: g.survivors.clone(),
                        score,
                    });
                }
            }
            global.clone_from(&r.outcome.new_weights);
        }
        estimate_and_pay(&observations)
    }

    fn estimate_and_pay(observations: &[Observation]) -> BTreeMap<u64, u128> {
        pay(&estimate(observations), 1_000_000)
            .into_iter()
            .collect()
    }

    /// Over eight tasks (seeds): the label flipper earns less than every honest owner and the
    /// owner with twice the data more than the one with half, in every task; the free rider
    /// earns at most 10 % of the honest median in the median task. In single tasks it reached
    /// 26 % (seed 2; docs/scoring.md gives every seed's figure), so the per-task bound checked
    /// here is 30 %: the 10 % holds in six tasks of eight, not in every one.
    #[test]
    fn free_riders_and_label_flippers_are_paid_less_and_more_data_more() {
        let mut rider_share = Vec::new();
        for seed in 1..=8 {
            let paid = pay_for_seed(seed);
            let mut honest: Vec<u128> = paid
                .iter()
                .filter(|(d, _)| **d > FLIPPER)
                .map(|(_, p)| *p)
                .collect();
            honest.sort_unstable();
            let median = honest[honest.len() / 2] as f64;
            assert!(
                paid[&BIG] > paid[&SMALL],
                "seed {seed}, twice the data: {paid:?}"
            );
            assert!(
                honest.iter().all(|h| paid[&FLIPPER] < *h),
                "seed {seed}, label flipper: {paid:?}"
            );
            let share = paid[&RIDER] as f64 / median;
            assert!(share <= 0.30, "seed {seed}, free rider: {paid:?}");
            rider_share.push(share);
        }
        rider_share.sort_by(f64::total_cmp);
        let median_share = (rider_share[3] + rider_share[4]) / 2.0;
        assert!(median_share <= 0.10, "free rider shares {rider_share:?}");
    }
}
