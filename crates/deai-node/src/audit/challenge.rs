//! `deai verify challenge`: what a validator runs before it votes on a `RoundChallenge`. It checks
//! the one claim named, from the ledger and the blobs alone, with the work bounded by the claim
//! ([`crate::fed::check_claim`]: one group's re-sum, one strategy step, one group's score; the
//! aggregate alone re-sums the round), and says whether the claim is wrong. For the model claim,
//! the strategy's state is first stepped through the rounds before from their recorded global
//! model and aggregate. A blob the claim reads that cannot be fetched, or that does not hash to
//! its name, makes the claim wrong: the coordinator named it and had to keep it available.

use deai_ledger::{Claim, Task, TaskStatus};
use serde::Serialize;

use super::task::{RoundChecker, VerifyTaskError, close_tx, fetch_all};
use crate::{
    client::Client,
    fed::{self, TaskSpec},
};

/// The verdict on one challenged claim.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimCheck {
    /// The task.
    pub task: u64,
    /// The challenge's number within the task.
    pub challenge: u32,
    /// The round it names.
    pub round: u32,
    /// The claim, e.g. `group_sum` (with `group`).
    pub claim: Claim,
    /// Whether the claim is wrong: a validator votes `upheld` exactly then.
    pub wrong: bool,
    /// Whether every reason is a blob that could not be fetched (or came back altered): one
    /// that may still arrive, so an automatic voter waits a while before it upholds
    /// ([`crate::challenge_voter`]).
    pub blobs_missing_only: bool,
    /// What refutes it (empty when it holds).
    pub reasons: Vec<String>,
}

/// Re-checks challenge `challenge` of task `task_id`: ledger facts from `ledger`, blobs from
/// `blobs`.
pub async fn check_claim(
    ledger: &Client,
    blobs: &Client,
    task_id: u64,
    challenge: u32,
) -> Result<ClaimCheck, VerifyTaskError> {
    let bad = |reason: String| VerifyTaskError::Task {
        task: task_id,
        reason,
    };
    let task: Task = ledger.get(&format!("/v1/tasks/{task_id}")).await?;
    let c = (challenge as usize)
        .checked_sub(1)
        .and_then(|i| task.challenges.get(i))
        .ok_or_else(|| bad(format!("has no challenge {challenge}")))?
        .clone();
    let spec_bytes = fetch_all(blobs, [task.model_spec]).await;
    let spec = spec_bytes
        .get(&task.model_spec)
        .ok_or_else(|| {
            bad(format!(
                "task spec blob {} is not available",
                task.model_spec
            ))
        })
        .and_then(|b| TaskSpec::from_json(b).map_err(|e| bad(format!("task spec: {e}"))))?;
    // Only a score reads the validation set, revealed by TaskClose (the ledger refuses a score
    // challenge before it).
    let scored = matches!(c.claim, Claim::Score { .. });
    let validation = if scored && matches!(task.status, TaskStatus::Settling | TaskStatus::Closed) {
        let close = close_tx(ledger, &task).await?;
        let blob = fetch_all(blobs, [close.validation_data]).await;
        let bytes = blob.get(&close.validation_data).ok_or_else(|| {
            bad(format!(
                "validation blob {} is not available",
                close.validation_data
            ))
        })?;
        Some(
            fed::data::decode(bytes, &fed::data::DataLimits::default())
                .map_err(|e| bad(format!("validation blob: {e}")))?,
        )
    } else {
        None
    };
    if scored && validation.is_none() {
        return Err(bad("a score cannot be checked before TaskClose".into()));
    }
    let mut checker = RoundChecker::new(ledger, blobs, &spec, &task)?;
    // The rounds before: only the model claim needs the strategy's state, stepped from what they
    // recorded (their global model and aggregate), not re-checked (each round's claims are
    // challenged on their own). A step that cannot be replayed leaves the state unknown, and the
    // blobs that were missing are the model claim's reasons.
    let mut unreplayed: Vec<fed::Mismatch> = Vec::new();
    let steps = matches!(c.claim, Claim::Model);
    for r in task.round_log.iter().take_while(|r| r.number < c.round) {
        let replayed = match &r.outcome {
            Some(o) if steps && !r.is_expired() => {
                replay_recorded(blobs, &spec, r, o, &mut checker.server, &mut unreplayed).await
            }
            _ => false,
        };
        if !replayed {
            checker
                .server
                .skip(r.number)
                .map_err(|e| bad(e.to_string()))?;
        }
    }
    let r = task
        .round_log
        .iter()
        .find(|r| r.number == c.round)
        .filter(|r| !r.is_expired());
    if let Some((r, outcome)) = r.and_then(|r| r.outcome.as_ref().map(|o| (r, o))) {
        let info = checker.info(r).await?;
        let recorded = fed::RecordedRound::from(outcome);
        // Only the blobs this claim reads: a group's sum needs its own masked updates, the
        // aggregate every one, the model and a score none.
        let store = fetch_all(blobs, fed::claim_blobs(&spec, &info, &recorded, &c.claim)).await;
        let fetch = |h: &deai_ledger::Digest| store.get(h).cloned();
        let mut refuting = fed::check_claim(
            &spec,
            &info,
            &recorded,
            &c.claim,
            &fetch,
            validation.as_ref(),
            &mut checker.server,
        )
        .map_err(|e| bad(e.to_string()))?;
        // A step that failed only because an earlier round's blobs were missing is those blobs.
        if matches!(c.claim, Claim::Model) && !unreplayed.is_empty() {
            refuting.retain(|m| !matches!(m, fed::Mismatch::Strategy(_)));
            refuting.extend(unreplayed);
        }
        let blobs_missing_only = !refuting.is_empty()
            && refuting.iter().all(|m| {
                matches!(
                    m,
                    fed::Mismatch::BlobMissing { .. } | fed::Mismatch::BlobHash { .. }
                )
            });
        let reasons: Vec<String> = refuting.iter().map(|m| m.to_string()).collect();
        return Ok(ClaimCheck {
            task: task_id,
            challenge,
            round: c.round,
            claim: c.claim,
            wrong: !reasons.is_empty(),
            blobs_missing_only,
            reasons,
        });
    }
    Err(bad(format!("round {} has no result to check", c.round)))
}

/// Steps `server` through recorded round `r` from its global model and aggregate, as recorded;
/// whether it could. A blob that cannot be fetched (or fails its hash) is pushed to `missing`.
async fn replay_recorded(
    blobs: &Client,
    spec: &TaskSpec,
    r: &deai_ledger::Round,
    outcome: &deai_ledger::RoundOutcome,
    server: &mut fed::strategy::ServerState,
    missing: &mut Vec<fed::Mismatch>,
) -> bool {
    let got = fetch_all(blobs, [r.global_model, outcome.aggregate]).await;
    let mut need = |what: &str, hash: deai_ledger::Digest| {
        let bytes = got.get(&hash);
        if bytes.is_none() {
            missing.push(fed::Mismatch::BlobMissing {
                what: format!("round {} {what}", r.number),
                hash,
            });
        }
        bytes
    };
    let (global, aggregate) = (
        need("global model", r.global_model),
        need("aggregate", outcome.aggregate),
    );
    let (Some(global), Some(aggregate)) = (global, aggregate) else {
        return false;
    };
    let step = fed::strategy::RecordedStep {
        round: r.number,
        seed: &r.seed,
        selected: &r.selected,
        scores: &outcome.scores,
        global,
        aggregate,
    };
    server.replay(spec, step).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fed::Mismatch;
    use deai_ledger::Digest;

    fn d(b: u8) -> Digest {
        Digest([b; 32])
    }

    /// Each claim is refuted by its own mismatches and by what it is computed from, not by a
    /// sibling's: a wrong score of group 1 does not refute group 0's score or the model.
    #[test]
    fn a_claim_is_refuted_by_its_own_mismatches_and_its_inputs() {
        let sum1 = Mismatch::GroupSum {
            group: 1,
            reason: "x".into(),
        };
        let agg = Mismatch::Aggregate {
            recorded: d(1),
            recomputed: d(2),
        };
        let model = Mismatch::NewModel {
            recorded: d(1),
            recomputed: d(2),
        };
        let score7 = Mismatch::Score {
            dataset: 7,
            recorded: Some(1),
            recomputed: Some(2),
        };
        let missing = Mismatch::BlobMissing {
            what: "aggregate".into(),
            hash: d(3),
        };
        let all = |c: Claim, ms: &[Mismatch], members: &[u64]| {
            ms.iter().filter(|m| m.refutes(&c, members)).count()
        };
        let g0 = Claim::GroupSum { group: 0 };
        let g1 = Claim::GroupSum { group: 1 };
        assert_eq!(all(g0, std::slice::from_ref(&sum1), &[]), 0);
        assert_eq!(all(g1, std::slice::from_ref(&sum1), &[]), 1);
        assert_eq!(all(Claim::Aggregate, std::slice::from_ref(&sum1), &[]), 1);
        assert_eq!(all(Claim::Aggregate, std::slice::from_ref(&model), &[]), 0);
        assert_eq!(all(Claim::Model, &[agg.clone(), model.clone()], &[]), 1);
        assert_eq!(all(Claim::Model, std::slice::from_ref(&sum1), &[]), 1);
        assert_eq!(
            all(
                Claim::GroupSum { group: 0 },
                std::slice::from_ref(&agg),
                &[]
            ),
            0
        );
        let s0 = Claim::Score { group: 0 };
        assert_eq!(all(s0, std::slice::from_ref(&score7), &[1, 2]), 0);
        assert_eq!(all(s0, std::slice::from_ref(&score7), &[7, 8]), 1);
        assert_eq!(all(s0, std::slice::from_ref(&model), &[7, 8]), 0);
        // A blob the coordinator named and nobody can fetch refutes every claim.
        for c in [g0, Claim::Aggregate, Claim::Model, s0] {
            assert_eq!(all(c, std::slice::from_ref(&missing), &[]), 1, "{c:?}");
        }
        assert_eq!(
            all(Claim::Model, &[], &[]),
            0,
            "an honest round refutes nothing"
        );
    }
}
