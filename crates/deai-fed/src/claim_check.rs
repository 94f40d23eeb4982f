//! One challenged claim of a recorded round, checked alone from what it is computed from, as
//! recorded: what a validator runs before it votes on a `RoundChallenge`. The work is bounded by
//! the claim, not by the round:
//!
//! - **a group's sum**: that group's masked updates re-summed with its unmasking, against the
//!   group's entry in the recorded aggregate blob;
//! - **the aggregate**: every group re-summed, against the aggregate's hash. The one claim that
//!   costs a whole round: a challenger who suspects one group challenges that group's sum;
//! - **the model**: one strategy step from the recorded aggregate's group sums, against the
//!   recorded model's hash (a `screened-` rule screens by the recorded scores, so the model is
//!   checkable before `TaskClose` reveals the validation set);
//! - **a group's score**: the global model stepped by that group's recorded sum, evaluated on the
//!   validation set (with the global model's own loss as the baseline), against the score recorded
//!   for each of its survivors.
//!
//! What a claim is computed from is taken as recorded: a lie in a group's sum that the model was
//! then stepped from is refuted by challenging that group's sum, not the model (the model step
//! itself was honest). A blob the claim needs that cannot be fetched, or does not hash to its
//! name, refutes it: the coordinator named it and had to keep it available. So does an unmasking
//! record that disagrees with the round's public plan, when the claim reads it.

use deai_learn::data::Dataset;
use deai_ledger::{Claim, Digest, Score};

use super::groups::RoundPlan;
use super::record::{AggregateBlob, GroupResult, RecordLimits, RoundRecord};
use super::strategy::ServerState;
use super::verify::{
    Checker, Fetch, Mismatch, RecordedRound, check_header, check_model, compare_scores,
    read_global, resum,
};
use super::{RoundInfo, TaskSpec, score};

/// Why a claim cannot be checked at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimCheckError {
    /// A score is computed on the validation set, revealed only by `TaskClose`.
    #[error("a score cannot be checked before TaskClose reveals the validation set")]
    NeedsValidation,
}

/// Checks `claim` of the recorded round `info`/`recorded` (see the module docs). `server` is the
/// task's strategy state after the rounds before (only the model claim steps it). Every
/// mismatch returned refutes the claim; none means it holds.
pub fn check_claim(
    spec: &TaskSpec,
    info: &RoundInfo,
    recorded: &RecordedRound,
    claim: &Claim,
    fetch: Fetch<'_>,
    validation: Option<&Dataset>,
    server: &mut ServerState,
) -> Result<Vec<Mismatch>, ClaimCheckError> {
    if let Claim::Aggregate = claim {
        return Ok(super::verify::check_sums(spec, info, recorded, fetch)
            .into_iter()
            .filter(|m| m.refutes(claim, &[]))
            .collect());
    }
    if matches!(claim, Claim::Score { .. }) && validation.is_none() {
        return Err(ClaimCheckError::NeedsValidation);
    }
    let mut c = Checker::new(fetch);
    if let Err(m) = run(&mut c, spec, info, recorded, claim, validation, server) {
        c.out.push(m);
    }
    Ok(c.out)
}

/// The blobs [`check_claim`] reads for `claim` of the recorded round `info`/`recorded`, in no
/// particular order: what a validator fetches before it checks (a group's sum reads its own
/// survivors' masked updates, not the round's). The validation set, which a score also reads,
/// is the task's and not listed.
pub fn claim_blobs(
    spec: &TaskSpec,
    info: &RoundInfo,
    recorded: &RecordedRound,
    claim: &Claim,
) -> Vec<Digest> {
    let masked_of = |g: u32| -> Vec<Digest> {
        let members = RoundPlan::new(spec, info)
            .ok()
            .and_then(|p| p.groups.get(g as usize).map(|g| g.members.clone()))
            .unwrap_or_default();
        recorded
            .survivors
            .iter()
            .zip(&recorded.masked_updates)
            .filter(|(d, _)| members.contains(d))
            .map(|(_, h)| *h)
            .collect()
    };
    let mut out = match *claim {
        Claim::GroupSum { group } => {
            let mut v = masked_of(group);
            v.extend([recorded.unmasking, recorded.aggregate]);
            v
        }
        Claim::Aggregate => {
            let mut v = recorded.masked_updates.clone();
            v.extend([recorded.unmasking, recorded.aggregate]);
            v
        }
        Claim::Model => vec![info.global_model, recorded.aggregate, recorded.new_model],
        Claim::Score { .. } => vec![recorded.unmasking, info.global_model, recorded.aggregate],
    };
    out.sort_unstable();
    out.dedup();
    out
}

fn run(
    c: &mut Checker<'_>,
    spec: &TaskSpec,
    info: &RoundInfo,
    recorded: &RecordedRound,
    claim: &Claim,
    validation: Option<&Dataset>,
    server: &mut ServerState,
) -> Result<(), Mismatch> {
    let plan = RoundPlan::new(spec, info).map_err(|e| Mismatch::Plan(e.to_string()))?;
    let limits = RecordLimits {
        datasets_max: super::spec::DATASETS_MAX,
        vector_len_max: plan.groups[0].config.vector_len,
    };
    let group = |g: u32| {
        plan.groups
            .get(g as usize)
            .ok_or_else(|| Mismatch::Plan(format!("the round has no group {g}")))
    };
    match *claim {
        Claim::GroupSum { group: g } => {
            let group = group(g)?;
            let Some(record) = read_record(c, spec, info, &plan, recorded, &limits)? else {
                return Ok(());
            };
            let result = &record.groups[g as usize].result;
            let mut hashes = Vec::new();
            let (sum, _) = resum(c, g as usize, group, result, &mut hashes)?;
            // The group's survivors and their masked updates must be those recorded.
            let listed = hashes.iter().all(|(id, h)| {
                recorded
                    .survivors
                    .iter()
                    .position(|s| s == id)
                    .is_some_and(|i| recorded.masked_updates.get(i) == Some(h))
            });
            if !listed {
                c.out.push(Mismatch::MaskedUpdates);
            }
            let Some(aggregate) = read_aggregate(c, recorded, &limits)? else {
                return Ok(());
            };
            let entry = aggregate.groups.get(g as usize).cloned().flatten();
            let differs = match (&sum, &entry, result) {
                (Some(s), Some(e), _) => s != e,
                (Some(_), None, _) => true,
                (None, Some(_), GroupResult::Aborted { .. }) => true,
                // Not re-summed: the reason is already reported.
                (None, _, _) => false,
            };
            if differs {
                c.out.push(Mismatch::GroupSum {
                    group: g as usize,
                    reason: "the aggregate's entry for the group is not its re-sum".into(),
                });
            }
        }
        Claim::Model => {
            let global = read_global(c, info, &plan);
            let aggregate = read_aggregate(c, recorded, &limits)?;
            let (Some(global), Some(aggregate)) = (global, aggregate) else {
                return Ok(());
            };
            check_aggregate_shape(&plan, &aggregate)?;
            check_model(c, info, &plan, &global, &aggregate.groups, recorded, server)?;
        }
        Claim::Score { group: g } => {
            let group = group(g)?;
            let validation =
                validation.ok_or_else(|| Mismatch::Plan("no validation set".into()))?;
            let record = read_record(c, spec, info, &plan, recorded, &limits)?;
            let global = read_global(c, info, &plan);
            let aggregate = read_aggregate(c, recorded, &limits)?;
            let (Some(record), Some(global), Some(aggregate)) = (record, global, aggregate) else {
                return Ok(());
            };
            check_aggregate_shape(&plan, &aggregate)?;
            let survivors: Vec<u64> = match &record.groups[g as usize].result {
                GroupResult::Done(u) => u
                    .survivors
                    .iter()
                    .filter_map(|i| group.members.get(*i as usize).copied())
                    .collect(),
                GroupResult::Aborted { .. } => Vec::new(),
            };
            let sum = std::slice::from_ref(&aggregate.groups[g as usize]);
            let scores = score::group_scores(
                &plan.kind,
                &global,
                &plan.quantizer,
                sum,
                spec.server_lr,
                validation,
            )
            .map_err(|e| Mismatch::Plan(e.to_string()))?;
            let recomputed = score::survivor_scores(&[survivors], &scores);
            let recorded_here: Vec<Score> = recorded
                .scores
                .iter()
                .filter(|s| group.members.contains(&s.dataset))
                .cloned()
                .collect();
            compare_scores(c, &recomputed, &recorded_here);
        }
        Claim::Aggregate => unreachable!("checked as a whole round above"),
    }
    Ok(())
}

/// The round's unmasking record, fetched, decoded and matched against the plan (`None` when
/// its blob is missing: already reported).
fn read_record(
    c: &mut Checker<'_>,
    spec: &TaskSpec,
    info: &RoundInfo,
    plan: &RoundPlan,
    recorded: &RecordedRound,
    limits: &RecordLimits,
) -> Result<Option<RoundRecord>, Mismatch> {
    let Some(bytes) = c.blob("unmasking record", &recorded.unmasking) else {
        return Ok(None);
    };
    let record = RoundRecord::decode(&bytes, limits).map_err(|e| Mismatch::Undecodable {
        what: "unmasking record".into(),
        reason: e.to_string(),
    })?;
    check_header(spec, info, plan, &record)?;
    Ok(Some(record))
}

/// The recorded aggregate blob, fetched and decoded (`None` when missing: already reported).
fn read_aggregate(
    c: &mut Checker<'_>,
    recorded: &RecordedRound,
    limits: &RecordLimits,
) -> Result<Option<AggregateBlob>, Mismatch> {
    let Some(bytes) = c.blob("aggregate", &recorded.aggregate) else {
        return Ok(None);
    };
    AggregateBlob::decode(&bytes, limits)
        .map(Some)
        .map_err(|e| Mismatch::Undecodable {
            what: "aggregate".into(),
            reason: e.to_string(),
        })
}

/// An aggregate must hold one entry per planned group.
fn check_aggregate_shape(plan: &RoundPlan, aggregate: &AggregateBlob) -> Result<(), Mismatch> {
    if aggregate.groups.len() != plan.groups.len() {
        return Err(Mismatch::Undecodable {
            what: "aggregate".into(),
            reason: format!(
                "{} groups, the plan has {}",
                aggregate.groups.len(),
                plan.groups.len()
            ),
        });
    }
    Ok(())
}
