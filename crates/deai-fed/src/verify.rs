//! Independent re-verification of a recorded round from its blobs: what `deai verify task`
//! runs for each round, on a node that took no part.
//!
//! From the public inputs (spec, [`RoundInfo`], the recorded `RoundResult` fields, the revealed
//! validation set) and blobs fetched by hash, it rebuilds the round's plan, checks every blob
//! against its hash, re-sums each completed group from the masked updates with the recorded
//! unmasking ([`deai_secagg::verify::verify_aggregate`]), checks that no group was unmasked
//! with fewer survivors than its threshold (that would expose individual updates), re-applies
//! the strategy and recomputes the scores. Every disagreement is reported as a named
//! [`Mismatch`]; an empty list means the round checks out.
//!
//! Rounds are verified in order with one [`ServerState`] for the task, since a server
//! optimiser's step depends on the rounds before. A round whose groups cannot be re-summed
//! steps that state with the recorded aggregate instead (its mismatch is already reported), so
//! later rounds are still checked against what the coordinator claimed; a round without even
//! that is passed over.

use deai_learn::data::Dataset;
use deai_ledger::{Claim, Digest, RoundResult, Score};
use deai_secagg::verify::verify_aggregate;
use thiserror::Error;

use super::groups::{Group, RoundPlan};
use super::record::{AggregateBlob, GroupResult, RecordLimits, RoundRecord, masked_words};
use super::strategy::{RecordedStep, ServerState};
use super::{RoundInfo, TaskSpec, score, weights};

/// The recorded fields of a round's result (from a `RoundResult` or the ledger's round log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRound {
    /// Survivors, ascending.
    pub survivors: Vec<u64>,
    /// Masked-update hashes, aligned with survivors.
    pub masked_updates: Vec<Digest>,
    /// Hash of the unmasking record.
    pub unmasking: Digest,
    /// Hash of the aggregate.
    pub aggregate: Digest,
    /// Hash of the new model.
    pub new_model: Digest,
    /// Scores, ascending by dataset.
    pub scores: Vec<Score>,
}

impl From<&RoundResult> for RecordedRound {
    fn from(r: &RoundResult) -> Self {
        // The closing height is not part of what a verifier checks.
        Self::from(&r.outcome(0))
    }
}

impl From<&deai_ledger::RoundOutcome> for RecordedRound {
    fn from(r: &deai_ledger::RoundOutcome) -> Self {
        Self {
            survivors: r.survivors.clone(),
            masked_updates: r.masked_updates.clone(),
            unmasking: r.unmasking,
            aggregate: r.aggregate,
            new_model: r.new_model,
            scores: r.scores.clone(),
        }
    }
}

/// One way a recorded round disagrees with its recomputation.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Mismatch {
    /// The plan could not be rebuilt from the public inputs.
    #[error("round plan: {0}")]
    Plan(String),
    /// A blob is not available.
    #[error("{what}: blob {hash} not found")]
    BlobMissing {
        /// Which blob.
        what: String,
        /// Its recorded hash.
        hash: Digest,
    },
    /// A blob's bytes do not hash to the recorded hash.
    #[error("{what}: blob bytes hash to {got}, recorded {expected}")]
    BlobHash {
        /// Which blob.
        what: String,
        /// Recorded hash.
        expected: Digest,
        /// Hash of the bytes fetched.
        got: Digest,
    },
    /// A blob does not decode.
    #[error("{what}: does not decode: {reason}")]
    Undecodable {
        /// Which blob.
        what: String,
        /// The decoder's error.
        reason: String,
    },
    /// The unmasking record disagrees with the round's public plan.
    #[error("unmasking record: {0}")]
    Record(String),
    /// A group's masked updates and unmasking do not re-sum.
    #[error("group {group}: re-summing failed: {reason}")]
    GroupSum {
        /// The group.
        group: usize,
        /// Why.
        reason: String,
    },
    /// The recorded survivors are not those of the record.
    #[error("survivors: recorded {recorded:?}, record gives {recomputed:?}")]
    Survivors {
        /// On the ledger.
        recorded: Vec<u64>,
        /// From the record.
        recomputed: Vec<u64>,
    },
    /// The recorded masked-update hashes are not those of the record.
    #[error("masked update hashes differ from the unmasking record")]
    MaskedUpdates,
    /// The recorded aggregate is not the re-summed one.
    #[error("aggregate: recorded {recorded}, recomputed {recomputed}")]
    Aggregate {
        /// On the ledger.
        recorded: Digest,
        /// Recomputed.
        recomputed: Digest,
    },
    /// The strategy could not be re-applied (typically: an earlier round could not be
    /// re-verified, so the server optimiser's state before this round is unknown).
    #[error("strategy: {0}")]
    Strategy(String),
    /// The recorded new model is not the strategy applied to the aggregate.
    #[error("new model: recorded {recorded}, recomputed {recomputed}")]
    NewModel {
        /// On the ledger.
        recorded: Digest,
        /// Recomputed.
        recomputed: Digest,
    },
    /// A score differs (`None` = absent on that side).
    #[error("score of dataset {dataset}: recorded {recorded:?}, recomputed {recomputed:?}")]
    Score {
        /// The dataset.
        dataset: u64,
        /// On the ledger.
        recorded: Option<u64>,
        /// Recomputed.
        recomputed: Option<u64>,
    },
}

impl Mismatch {
    /// Whether this mismatch of a round shows the round's `claim` wrong (what a validator
    /// votes on a `RoundChallenge`); `members` are the claim's group's datasets in the round's
    /// plan (used for a score). A claim is refuted by its own mismatch and by those of what it
    /// is computed from: a group's sum by its re-sum; the aggregate by any group's re-sum or its
    /// own; the model (stepped from the group sums, not from the aggregate's hash) by any
    /// group's re-sum or the strategy step; a score by its group's re-sum or a member's score. A missing or altered blob, the unmasking record, the survivor list or the
    /// plan refute every claim: the coordinator named and recorded them.
    pub fn refutes(&self, claim: &Claim, members: &[u64]) -> bool {
        match (claim, self) {
            (
                _,
                Self::Plan(_)
                | Self::Record(_)
                | Self::BlobMissing { .. }
                | Self::BlobHash { .. }
                | Self::Undecodable { .. }
                | Self::Survivors { .. }
                | Self::MaskedUpdates,
            ) => true,
            (
                Claim::GroupSum { group } | Claim::Score { group },
                Self::GroupSum { group: g, .. },
            ) => *g == *group as usize,
            (Claim::Aggregate, Self::GroupSum { .. } | Self::Aggregate { .. }) => true,
            (Claim::Model, Self::GroupSum { .. } | Self::Strategy(_) | Self::NewModel { .. }) => {
                true
            }
            (Claim::Score { .. }, Self::Score { dataset, .. }) => members.contains(dataset),
            _ => false,
        }
    }
}

/// The result of verifying one round.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundCheck {
    /// The task.
    pub task: u64,
    /// The round.
    pub round: u32,
    /// Every disagreement found (empty = verified).
    pub mismatches: Vec<Mismatch>,
}

impl RoundCheck {
    /// Whether the round verified.
    pub fn is_ok(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// A blob fetcher: bytes by hash, or `None`.
pub type Fetch<'a> = &'a dyn Fn(&Digest) -> Option<Vec<u8>>;

/// Fetches blobs and collects what does not match.
pub(crate) struct Checker<'a> {
    fetch: Fetch<'a>,
    pub(crate) out: Vec<Mismatch>,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(fetch: Fetch<'a>) -> Self {
        Self {
            fetch,
            out: Vec::new(),
        }
    }
    /// The blob `hash`, checked; `None` (and a mismatch) if absent or tampered.
    pub(crate) fn blob(&mut self, what: &str, hash: &Digest) -> Option<Vec<u8>> {
        let Some(bytes) = (self.fetch)(hash) else {
            self.out.push(Mismatch::BlobMissing {
                what: what.into(),
                hash: *hash,
            });
            return None;
        };
        let got = Digest::hash(&bytes);
        if got != *hash {
            self.out.push(Mismatch::BlobHash {
                what: what.into(),
                expected: *hash,
                got,
            });
            return None;
        }
        Some(bytes)
    }

    pub(crate) fn undecodable(&mut self, what: &str, reason: impl ToString) {
        self.out.push(Mismatch::Undecodable {
            what: what.into(),
            reason: reason.to_string(),
        });
    }
}

/// Re-verifies one recorded round (see the module docs); `server` is the task's strategy
/// state after the rounds before, stepped past this one.
pub fn verify_round(
    spec: &TaskSpec,
    info: &RoundInfo,
    recorded: &RecordedRound,
    fetch: Fetch<'_>,
    validation: &Dataset,
    server: &mut ServerState,
) -> RoundCheck {
    check_round(spec, info, recorded, fetch, Some(validation), server)
}

/// [`verify_round`], with the scores checked only when the validation data is given (before
/// `TaskClose` reveals it, everything but the scores can be checked).
pub fn check_round(
    spec: &TaskSpec,
    info: &RoundInfo,
    recorded: &RecordedRound,
    fetch: Fetch<'_>,
    validation: Option<&Dataset>,
    server: &mut ServerState,
) -> RoundCheck {
    let mut c = Checker::new(fetch);
    if let Err(e) = run(&mut c, spec, info, recorded, validation, Some(server)) {
        c.out.push(e);
    }
    // Not re-summed: step with what the coordinator recorded. Not even that usable (reported
    // above): move on without a step, so a stateless rule checks the next rounds exactly and an
    // optimiser's later models are reported as not reproducible.
    if server.stepped() + 1 == info.round
        && !step_with_recorded(fetch, spec, info, recorded, server)
    {
        let _ = server.skip(info.round);
    }
    RoundCheck {
        task: info.task,
        round: info.round,
        mismatches: c.out,
    }
}

/// The recorded round's sums alone: its survivors and masked updates against the unmasking
/// record, every group re-summed, and the aggregate's hash; no strategy step, no scores (what
/// the aggregate claim reads).
pub(crate) fn check_sums(
    spec: &TaskSpec,
    info: &RoundInfo,
    recorded: &RecordedRound,
    fetch: Fetch<'_>,
) -> Vec<Mismatch> {
    let mut c = Checker::new(fetch);
    if let Err(e) = run(&mut c, spec, info, recorded, None, None) {
        c.out.push(e);
    }
    c.out
}

/// Steps `server` through a round that could not be re-summed, with the sums the coordinator
/// recorded; whether those were available and decoded.
fn step_with_recorded(
    fetch: Fetch<'_>,
    spec: &TaskSpec,
    info: &RoundInfo,
    recorded: &RecordedRound,
    server: &mut ServerState,
) -> bool {
    let checked = |hash: &Digest| fetch(hash).filter(|b| Digest::hash(b) == *hash);
    let (Some(global), Some(aggregate)) =
        (checked(&info.global_model), checked(&recorded.aggregate))
    else {
        return false;
    };
    let step = RecordedStep {
        round: info.round,
        seed: &info.seed,
        selected: &info.selected,
        scores: &recorded.scores,
        global: &global,
        aggregate: &aggregate,
    };
    server.replay(spec, step).is_ok()
}

fn run(
    c: &mut Checker<'_>,
    spec: &TaskSpec,
    info: &RoundInfo,
    recorded: &RecordedRound,
    validation: Option<&Dataset>,
    server: Option<&mut ServerState>,
) -> Result<(), Mismatch> {
    let plan = RoundPlan::new(spec, info).map_err(|e| Mismatch::Plan(e.to_string()))?;
    // Without a strategy state to step, the sums are all that is checked.
    let global = server
        .is_some()
        .then(|| read_global(c, info, &plan))
        .flatten();
    let limits = RecordLimits {
        datasets_max: super::spec::DATASETS_MAX,
        vector_len_max: plan.groups[0].config.vector_len,
    };
    let Some(bytes) = c.blob("unmasking record", &recorded.unmasking) else {
        return Ok(());
    };
    let record = RoundRecord::decode(&bytes, &limits).map_err(|e| Mismatch::Undecodable {
        what: "unmasking record".into(),
        reason: e.to_string(),
    })?;
    check_header(spec, info, &plan, &record)?;
    let mut sums = Vec::with_capacity(plan.groups.len());
    let mut survivors = Vec::with_capacity(plan.groups.len());
    let mut hashes = Vec::new();
    for (g, (group, rec)) in plan.groups.iter().zip(&record.groups).enumerate() {
        let (sum, ids) = resum(c, g, group, &rec.result, &mut hashes)?;
        sums.push(sum);
        survivors.push(ids);
    }
    let complete = plan.groups.len() == sums.len()
        && record
            .groups
            .iter()
            .zip(&sums)
            .all(|(r, s)| s.is_some() == matches!(r.result, GroupResult::Done(_)));
    hashes.sort_unstable_by_key(|(id, _)| *id);
    let all: Vec<u64> = hashes.iter().map(|(id, _)| *id).collect();
    if all != recorded.survivors {
        c.out.push(Mismatch::Survivors {
            recorded: recorded.survivors.clone(),
            recomputed: all,
        });
    } else if hashes
        .iter()
        .map(|(_, h)| *h)
        .ne(recorded.masked_updates.iter().copied())
    {
        c.out.push(Mismatch::MaskedUpdates);
    }
    if !complete {
        // A group could not be re-summed (already reported); the aggregate, model and scores
        // would only repeat that mismatch.
        return Ok(());
    }
    let recomputed = Digest::hash(
        &AggregateBlob {
            groups: sums.clone(),
        }
        .encode(),
    );
    if recomputed != recorded.aggregate {
        c.out.push(Mismatch::Aggregate {
            recorded: recorded.aggregate,
            recomputed,
        });
    } else {
        c.blob("aggregate", &recorded.aggregate);
    }
    let (Some(global), Some(server)) = (global, server) else {
        return Ok(());
    };
    check_model(c, info, &plan, &global, &sums, recorded, server)?;
    let Some(validation) = validation else {
        return Ok(());
    };
    let scores = score::group_scores(
        &plan.kind,
        &global,
        &plan.quantizer,
        &sums,
        spec.server_lr,
        validation,
    )
    .map_err(|e| Mismatch::Plan(e.to_string()))?;
    compare_scores(
        c,
        &score::survivor_scores(&survivors, &scores),
        &recorded.scores,
    );
    Ok(())
}

/// The global model the round trained from (`None` when missing or undecodable: reported).
pub(crate) fn read_global(
    c: &mut Checker<'_>,
    info: &RoundInfo,
    plan: &RoundPlan,
) -> Option<Vec<f32>> {
    let bytes = c.blob("global model", &info.global_model)?;
    match weights::decode(&plan.kind, &bytes) {
        Ok(w) => Some(w),
        Err(e) => {
            c.undecodable("global model", e);
            None
        }
    }
}

pub(crate) fn check_header(
    spec: &TaskSpec,
    info: &RoundInfo,
    plan: &RoundPlan,
    r: &RoundRecord,
) -> Result<(), Mismatch> {
    let bad = |what: String| Err(Mismatch::Record(what));
    if (r.task, r.round) != (info.task, info.round) {
        return bad(format!("is for task {} round {}", r.task, r.round));
    }
    if r.spec_hash != spec.hash() || r.global_model != info.global_model {
        return bad("names another spec or global model".into());
    }
    if r.quantizer != plan.quantizer {
        return bad(format!(
            "quantizer {:?}, plan {:?}",
            r.quantizer, plan.quantizer
        ));
    }
    if r.groups.len() != plan.groups.len() {
        return bad(format!(
            "{} groups, plan has {}",
            r.groups.len(),
            plan.groups.len()
        ));
    }
    for (g, (rec, group)) in r.groups.iter().zip(&plan.groups).enumerate() {
        let planned = (
            group.config.round,
            group.params.degree,
            group.params.threshold,
            group.config.modulus_bits,
        );
        let got = (
            rec.secagg_round,
            rec.degree,
            rec.threshold,
            rec.modulus_bits,
        );
        if rec.members != group.members || got != planned {
            return bad(format!("group {g} differs from the plan"));
        }
    }
    Ok(())
}

pub(crate) type GroupSum = (Option<Vec<u32>>, Vec<u64>);

/// Re-sums group `g`; pushes `(dataset, masked hash)` of its survivors.
pub(crate) fn resum(
    c: &mut Checker<'_>,
    g: usize,
    group: &Group,
    result: &GroupResult,
    hashes: &mut Vec<(u64, Digest)>,
) -> Result<GroupSum, Mismatch> {
    let GroupResult::Done(u) = result else {
        return Ok((None, Vec::new()));
    };
    if u.survivors.len() < group.params.threshold as usize {
        return Err(Mismatch::Record(format!(
            "group {g} unmasked with {} survivors, threshold {}",
            u.survivors.len(),
            group.params.threshold
        )));
    }
    let mut ids = Vec::with_capacity(u.survivors.len());
    let mut masked = Vec::with_capacity(u.survivors.len());
    for (client, hash) in u.survivors.iter().zip(&u.masked_hashes) {
        let Some(&id) = group.members.get(*client as usize) else {
            return Err(Mismatch::Record(format!(
                "group {g}: unknown survivor {client}"
            )));
        };
        ids.push(id);
        let digest = Digest(*hash);
        hashes.push((id, digest));
        let what = format!("masked update of dataset {id}");
        let Some(bytes) = c.blob(&what, &digest) else {
            continue;
        };
        match masked_words(&bytes, group.config.vector_len as usize) {
            Ok(words) => masked.push(words),
            Err(e) => c.undecodable(&what, e),
        }
    }
    if masked.len() != u.survivors.len() {
        return Ok((None, ids));
    }
    match verify_aggregate(&group.config, u, &masked) {
        Ok(sum) => Ok((Some(sum), ids)),
        Err(e) => {
            c.out.push(Mismatch::GroupSum {
                group: g,
                reason: e.to_string(),
            });
            Ok((None, ids))
        }
    }
}

pub(crate) fn check_model(
    c: &mut Checker<'_>,
    info: &RoundInfo,
    plan: &RoundPlan,
    global: &[f32],
    sums: &[Option<Vec<u32>>],
    recorded: &RecordedRound,
    server: &mut ServerState,
) -> Result<(), Mismatch> {
    // A screened rule screens by the recorded scores, each a claim checked on its own.
    let scores = if server.screens() {
        let members = plan.groups.iter().map(|g| g.members.as_slice());
        score::recorded_group_scores(members, &recorded.scores)
    } else {
        Vec::new()
    };
    let new = match server.step(info.round, global, &plan.quantizer, sums, &scores) {
        Ok(new) => new,
        Err(e) => {
            // The scores do not depend on the strategy: report and go on to them.
            c.out.push(Mismatch::Strategy(e.to_string()));
            return Ok(());
        }
    };
    let bytes = weights::encode(&plan.kind, &new).map_err(|e| Mismatch::Plan(e.to_string()))?;
    let recomputed = weights::model_hash(&bytes);
    if recomputed != recorded.new_model {
        c.out.push(Mismatch::NewModel {
            recorded: recorded.new_model,
            recomputed,
        });
    } else {
        c.blob("new model", &recorded.new_model);
    }
    Ok(())
}

pub(crate) fn compare_scores(c: &mut Checker<'_>, recomputed: &[Score], recorded: &[Score]) {
    let mut ids: Vec<u64> = recomputed
        .iter()
        .chain(recorded)
        .map(|s| s.dataset)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let find = |list: &[Score], id| list.iter().find(|s| s.dataset == id).map(|s| s.value);
    for id in ids {
        let (a, b) = (find(recorded, id), find(recomputed, id));
        if a != b {
            c.out.push(Mismatch::Score {
                dataset: id,
                recorded: a,
                recomputed: b,
            });
        }
    }
}
