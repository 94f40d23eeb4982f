//! A validator's challenge voter: every pending `RoundChallenge` that this validator may vote on
//! (it is in the set of the epoch the challenge was filed in, and has not voted) is re-checked
//! with [`crate::audit::challenge::check_claim`] against the validator's own ledger and blob
//! store, and voted on: upheld when the claim is wrong, rejected when it holds. Nobody has to run
//! `deai verify challenge --vote` by hand.
//!
//! One rule is not a re-check's verdict alone: a claim refuted *only* because a blob it names
//! could not be fetched is not voted on at once. The blob may still be on its way (the blob
//! exchange between validators, a coordinator's publication that lags its `RoundResult`), and an
//! upheld vote cannot be taken back. The voter re-checks until half the voting period has passed,
//! then votes with what it has: a blob nobody can fetch within that time counts against the
//! coordinator that named it. Every other refutation is voted at once.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use deai_ledger::{Address, Challenge, TxBody, tx::ChallengeVote};
use ed25519_dalek::SigningKey;

use crate::{
    api::types::TxState,
    audit::challenge::{ClaimCheck, check_claim},
    client::Client,
};

/// How often the voter looks for challenges to vote on.
pub const POLL: Duration = Duration::from_secs(1);

/// Blocks to wait before re-checking a challenge whose re-check could not run (the ledger or
/// the task's spec unreadable) or that waits for a blob.
const RETRY_BLOCKS: u64 = 4;

/// What to do about one challenge after its re-check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Vote now: `true` = upheld (the claim is wrong).
    Vote(bool),
    /// Re-check at this height: the claim fails only for blobs that may still arrive.
    Wait(u64),
}

/// The vote on `challenge` given its re-check at chain height `height`.
pub fn decide(check: &ClaimCheck, challenge: &Challenge, height: u64) -> Decision {
    if !check.wrong || !check.blobs_missing_only {
        return Decision::Vote(check.wrong);
    }
    let period = challenge
        .vote_deadline
        .saturating_sub(challenge.filed_height);
    let patience_ends = challenge.filed_height.saturating_add(period / 2);
    if height >= patience_ends {
        Decision::Vote(true)
    } else {
        Decision::Wait(patience_ends.min(height.saturating_add(RETRY_BLOCKS)))
    }
}

/// Runs the voter for as long as the node does: `chain` says what awaits a vote, `api` (this
/// validator's own API) serves the re-check's ledger reads and blobs, `key` signs the votes (the
/// validator's account).
pub async fn run(chain: deai_chain::Handle, key: SigningKey, api: Client) {
    let me = Address(key.verifying_key().to_bytes());
    // Challenges not to look at before a height: waiting for blobs, or a re-check that failed.
    let mut later: BTreeMap<(u64, u32), u64> = BTreeMap::new();
    loop {
        tokio::time::sleep(POLL).await;
        let (height, awaiting) = chain.read_state(|s| {
            let h = s.height();
            (h, s.challenges_awaiting(&me, h + 1))
        });
        later.retain(|k, _| awaiting.iter().any(|(t, c)| (*t, c.id) == *k));
        for (task, challenge) in awaiting {
            let id = (task, challenge.id);
            if later.get(&id).is_some_and(|&h| height < h) {
                continue;
            }
            let started = Instant::now();
            let check = match check_claim(&api, &api, task, challenge.id).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(task, challenge = challenge.id, error = %e, "challenge re-check failed; trying again");
                    later.insert(id, height + RETRY_BLOCKS);
                    continue;
                }
            };
            let ms = started.elapsed().as_secs_f64() * 1e3;
            match decide(&check, &challenge, height) {
                Decision::Wait(at) => {
                    tracing::info!(task, challenge = challenge.id, until = at, reasons = ?check.reasons, "claim refuted only by blobs not fetched yet; waiting for them");
                    later.insert(id, at);
                }
                Decision::Vote(upheld) => {
                    let body = TxBody::ChallengeVote(ChallengeVote {
                        task,
                        challenge: challenge.id,
                        upheld,
                    });
                    let sent = api
                        .send(&key, body, None, Some(Duration::from_secs(30)))
                        .await;
                    match sent.map(|s| s.state) {
                        Ok(Some(TxState::Finalized { applied: true, .. })) => tracing::info!(
                            task,
                            challenge = challenge.id,
                            round = check.round,
                            claim = check.claim.name(),
                            upheld,
                            recheck_ms = ms,
                            reasons = ?check.reasons,
                            "voted on a challenge"
                        ),
                        other => {
                            // Losing the race to the deciding vote is the usual case, not a fault.
                            let pending = chain.read_state(|s| {
                                s.task(task)
                                    .and_then(|t| {
                                        (challenge.id as usize)
                                            .checked_sub(1)
                                            .and_then(|i| t.challenges.get(i))
                                    })
                                    .is_some_and(Challenge::is_pending)
                            });
                            if pending {
                                tracing::warn!(task, challenge = challenge.id, outcome = ?other, "challenge vote not applied; trying again");
                                later.insert(id, height + RETRY_BLOCKS);
                            } else {
                                tracing::info!(
                                    task,
                                    challenge = challenge.id,
                                    "challenge decided before this validator's vote landed"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deai_ledger::Claim;

    fn challenge(filed: u64, deadline: u64) -> Challenge {
        Challenge {
            id: 1,
            round: 1,
            claim: Claim::Model,
            challenger: Address([1; 32]),
            accused: Address([2; 32]),
            deposit: 1,
            filed_height: filed,
            vote_deadline: deadline,
            epoch: 0,
            votes: Vec::new(),
            verdict: None,
        }
    }

    fn check(wrong: bool, blobs_missing_only: bool) -> ClaimCheck {
        ClaimCheck {
            task: 1,
            challenge: 1,
            round: 1,
            claim: Claim::Model,
            wrong,
            blobs_missing_only,
            reasons: if wrong { vec!["x".into()] } else { vec![] },
        }
    }

    /// A claim that holds is rejected and one refuted by what was fetched is upheld, both at
    /// once; one refuted only by missing blobs waits (re-checking every few blocks) until half
    /// the voting period has passed, then is upheld.
    #[test]
    fn missing_blobs_get_half_the_voting_period_to_arrive() {
        let c = challenge(100, 200);
        assert_eq!(decide(&check(false, false), &c, 101), Decision::Vote(false));
        assert_eq!(decide(&check(true, false), &c, 101), Decision::Vote(true));
        assert_eq!(
            decide(&check(true, true), &c, 101),
            Decision::Wait(101 + RETRY_BLOCKS)
        );
        assert_eq!(decide(&check(true, true), &c, 148), Decision::Wait(150));
        assert_eq!(decide(&check(true, true), &c, 150), Decision::Vote(true));
        assert_eq!(decide(&check(true, true), &c, 199), Decision::Vote(true));
    }
}
