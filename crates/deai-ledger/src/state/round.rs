//! Training rounds of a task: what the coordinator opened (selection, secure-aggregation
//! parameters, DP spend) and what it reported (masked updates, survivors, scores), plus the
//! deterministic dataset selection every replica recomputes.
//!
//! Invariants:
//! - a task's rounds are numbered 1, 2, ... without gaps; at most the last one is open
//!   (no `outcome` and no `expired_height`); a closed round has exactly one of the two;
//! - `selected.len() <= eligible` (the selection is drawn from the eligible datasets) and
//!   `deadline_height = opened_height + round_timeout_blocks` (saturating), fixed at opening;
//! - `selected` is sorted ascending; survivors and scored datasets are subsets of it;
//! - a round's committed form is [`Round::digest`] (BLAKE3 of its canonical encoding), which the
//!   task's leaf lists, so the state root covers every round.
//!
//! # Selection
//!
//! `seed = BLAKE3("deai/selection/v2" || task u64 BE || round u32 BE || beacon)` where `beacon`
//! is the randomness of the block that includes the `RoundOpen` ([`crate::Block::beacon`]),
//! which did not exist when the coordinator signed. Each eligible dataset id gets
//! `rank = BLAKE3(seed || id u64 BE)`; ids are sorted by `(rank, id)` and the first `m` are
//! selected, `m` = the number of datasets the round asks for (at most the number eligible).

use crate::codec::{list_size, read_list, write_list};
use crate::types::Digest;
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Contribution scores are fixed point in `[0, SCORE_SCALE]` (1.0 = `SCORE_SCALE`).
pub const SCORE_SCALE: u64 = 1_000_000;

/// Domain of the selection seed.
const SELECTION_DOMAIN: &[u8] = b"deai/selection/v2";

/// Secure-aggregation parameters of a round (SecAgg+: clients, graph degree, threshold).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecAggParams {
    /// Clients (= selected datasets).
    pub n: u32,
    /// Neighbours per client in the masking graph (`t..=n`).
    pub k: u32,
    /// Shares needed to recover a mask (`1..=k`); fewer survivors abort the round.
    pub t: u32,
}

/// One dataset's contribution score in a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Score {
    /// The dataset (a survivor of the round).
    pub dataset: u64,
    /// Fixed point, `0..=SCORE_SCALE`.
    pub value: u64,
}

/// What the coordinator reported when it closed a round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundOutcome {
    /// Height of the `RoundResult`.
    pub closed_height: u64,
    /// BLAKE3 of each survivor's masked update, in survivor order.
    pub masked_updates: Vec<Digest>,
    /// Datasets whose masked updates are in the sum (sorted, subset of selected).
    pub survivors: Vec<u64>,
    /// BLAKE3 of the unmasking record (recovered seeds and shares).
    pub unmasking: Digest,
    /// BLAKE3 of the unmasked aggregate.
    pub aggregate: Digest,
    /// BLAKE3 of the new global model.
    pub new_model: Digest,
    /// Scores of survivors (sorted by dataset).
    pub scores: Vec<Score>,
}

/// One training round of a task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Round {
    /// Round number (from 1).
    pub number: u32,
    /// Height of the `RoundOpen`.
    pub opened_height: u64,
    /// The public selection seed.
    pub seed: Digest,
    /// BLAKE3 of the global model the round starts from.
    pub global_model: Digest,
    /// Selected datasets (sorted ascending).
    pub selected: Vec<u64>,
    /// Secure-aggregation parameters.
    pub secagg: SecAggParams,
    /// How much the round raised the task's `epsilon_spent` (the ε of its most-selected
    /// dataset), fixed point ([`crate::EPSILON_SCALE`]); each selected dataset was charged its
    /// own next step of the task's schedule.
    pub epsilon: u64,
    /// DP δ spent by the round, fixed point ([`crate::DELTA_SCALE`]).
    pub delta: u64,
    /// How many datasets were eligible when the round opened (in the task's filter, consent
    /// admitting the task and what the round would charge them, budget left): owners and
    /// verifiers check the selection's size against the spec's `min(datasets_per_round,
    /// eligible)`.
    #[serde(default)]
    pub eligible: u32,
    /// Last height at which the round may still be reported without anyone being able to
    /// expire it: `opened_height + round_timeout_blocks`. From `deadline_height + 1` anyone may
    /// close the round as failed with `RoundExpire` (until then, or until someone does, the
    /// coordinator's `RoundResult` is still accepted).
    #[serde(default)]
    pub deadline_height: u64,
    /// The result; `None` while the round is open, and for an expired round.
    pub outcome: Option<RoundOutcome>,
    /// Height of the `RoundExpire` that closed the round as failed (no result, ε and δ stay
    /// charged); `None` otherwise.
    #[serde(default)]
    pub expired_height: Option<u64>,
}

impl Round {
    /// BLAKE3 of the canonical encoding: what the task's leaf commits to.
    pub fn digest(&self) -> Digest {
        let mut out = Vec::with_capacity(self.encode_size());
        self.write(&mut out);
        Digest::hash(&out)
    }

    /// Whether the round still waits for its result (neither reported nor expired).
    pub fn is_open(&self) -> bool {
        self.outcome.is_none() && self.expired_height.is_none()
    }

    /// Whether the round was closed as failed by `RoundExpire`.
    pub fn is_expired(&self) -> bool {
        self.expired_height.is_some()
    }
}

/// The public seed of a round's selection (see the module docs).
pub fn selection_seed(task: u64, round: u32, beacon: &Digest) -> Digest {
    let mut h = blake3::Hasher::new();
    h.update(SELECTION_DOMAIN);
    h.update(&task.to_be_bytes());
    h.update(&round.to_be_bytes());
    h.update(&beacon.0);
    Digest(*h.finalize().as_bytes())
}

/// The first `count` of `eligible` ranked by `BLAKE3(seed || id)`, returned sorted ascending.
pub fn select(seed: &Digest, eligible: &[u64], count: usize) -> Vec<u64> {
    let mut ranked: Vec<([u8; 32], u64)> = eligible
        .iter()
        .map(|&id| {
            let mut h = blake3::Hasher::new();
            h.update(&seed.0);
            h.update(&id.to_be_bytes());
            (*h.finalize().as_bytes(), id)
        })
        .collect();
    ranked.sort_unstable();
    let mut chosen: Vec<u64> = ranked.into_iter().take(count).map(|(_, id)| id).collect();
    chosen.sort_unstable();
    chosen
}

impl Write for SecAggParams {
    fn write(&self, buf: &mut impl BufMut) {
        self.n.write(buf);
        self.k.write(buf);
        self.t.write(buf);
    }
}

impl EncodeSize for SecAggParams {
    fn encode_size(&self) -> usize {
        12
    }
}

impl Read for SecAggParams {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            n: u32::read_cfg(buf, &())?,
            k: u32::read_cfg(buf, &())?,
            t: u32::read_cfg(buf, &())?,
        })
    }
}

impl Write for Score {
    fn write(&self, buf: &mut impl BufMut) {
        self.dataset.write(buf);
        self.value.write(buf);
    }
}

impl EncodeSize for Score {
    fn encode_size(&self) -> usize {
        16
    }
}

impl Read for Score {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            dataset: u64::read_cfg(buf, &())?,
            value: u64::read_cfg(buf, &())?,
        })
    }
}

impl Write for RoundOutcome {
    fn write(&self, buf: &mut impl BufMut) {
        self.closed_height.write(buf);
        write_list(&self.masked_updates, buf);
        write_list(&self.survivors, buf);
        self.unmasking.write(buf);
        self.aggregate.write(buf);
        self.new_model.write(buf);
        write_list(&self.scores, buf);
    }
}

impl EncodeSize for RoundOutcome {
    fn encode_size(&self) -> usize {
        8 + list_size(&self.masked_updates)
            + list_size(&self.survivors)
            + 96
            + list_size(&self.scores)
    }
}

impl Write for Round {
    fn write(&self, buf: &mut impl BufMut) {
        self.number.write(buf);
        self.opened_height.write(buf);
        self.seed.write(buf);
        self.global_model.write(buf);
        write_list(&self.selected, buf);
        self.secagg.write(buf);
        self.epsilon.write(buf);
        self.delta.write(buf);
        self.eligible.write(buf);
        self.deadline_height.write(buf);
        match &self.outcome {
            None => buf.put_u8(0),
            Some(o) => {
                buf.put_u8(1);
                o.write(buf);
            }
        }
        self.expired_height.write(buf);
    }
}

impl EncodeSize for Round {
    fn encode_size(&self) -> usize {
        4 + 8
            + 64
            + list_size(&self.selected)
            + 12
            + 16
            + 4
            + 8
            + 1
            + self.outcome.as_ref().map_or(0, EncodeSize::encode_size)
            + self.expired_height.encode_size()
    }
}

/// Read helper for lists of scores (used by `RoundResult`).
pub(crate) fn read_scores(buf: &mut impl Buf, max: usize) -> Result<Vec<Score>, CodecError> {
    read_list(buf, max, &())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_depends_on_seed_and_takes_count() {
        let eligible: Vec<u64> = (1..=20).collect();
        let a = select(&selection_seed(1, 1, &Digest([0; 32])), &eligible, 5);
        let b = select(&selection_seed(1, 2, &Digest([0; 32])), &eligible, 5);
        let c = select(&selection_seed(1, 1, &Digest([1; 32])), &eligible, 5);
        assert_eq!(a.len(), 5);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_ne!(a, b, "round number changes the seed");
        assert_ne!(a, c, "the beacon changes the seed");
        // Input order does not matter.
        let mut rev = eligible.clone();
        rev.reverse();
        assert_eq!(a, select(&selection_seed(1, 1, &Digest([0; 32])), &rev, 5));
        assert_eq!(select(&Digest([0; 32]), &eligible, 50).len(), 20);
    }

    #[test]
    fn round_digest_covers_outcome() {
        let mut r = Round {
            number: 1,
            opened_height: 2,
            seed: Digest([1; 32]),
            global_model: Digest([2; 32]),
            selected: vec![1, 2],
            secagg: SecAggParams { n: 2, k: 2, t: 1 },
            epsilon: 1,
            delta: 1,
            eligible: 3,
            deadline_height: 12,
            outcome: None,
            expired_height: None,
        };
        let open = r.digest();
        for change in [
            |r: &mut Round| r.eligible += 1,
            |r: &mut Round| r.deadline_height += 1,
            |r: &mut Round| r.expired_height = Some(13),
        ] {
            let mut changed = r.clone();
            change(&mut changed);
            let mut bytes = Vec::new();
            changed.write(&mut bytes);
            assert_eq!(bytes.len(), changed.encode_size());
            assert_ne!(open, changed.digest(), "{changed:?}");
        }
        let mut bytes = Vec::new();
        r.write(&mut bytes);
        assert_eq!(bytes.len(), r.encode_size());
        r.outcome = Some(RoundOutcome {
            closed_height: 3,
            masked_updates: vec![Digest([3; 32])],
            survivors: vec![1],
            unmasking: Digest([4; 32]),
            aggregate: Digest([5; 32]),
            new_model: Digest([6; 32]),
            scores: vec![Score {
                dataset: 1,
                value: 7,
            }],
        });
        let mut bytes = Vec::new();
        r.write(&mut bytes);
        assert_eq!(bytes.len(), r.encode_size());
        assert_ne!(open, r.digest());
    }
}
