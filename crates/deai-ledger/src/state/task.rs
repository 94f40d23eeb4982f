//! Training tasks: what to train, under which privacy budget, for which escrowed reward, and
//! the log of its rounds.
//!
//! Invariants: `delta_spent` is the sum of the opened rounds' δ; `epsilon_spent` is the ε of the
//! dataset that took part in the most rounds (`epsilon_schedule[j - 1]` for the largest
//! participation count `j`), which is also the sum of the rounds' `epsilon`; neither exceeds
//! its budget.

use super::challenge::{Challenge, Closing, CoordinatorBond};
use super::round::Round;
use crate::codec::write_list;
use crate::event::HistoryEntry;
use crate::types::{Address, Digest};
use bytes::BufMut;
use commonware_codec::Write;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read};
use serde::{Deserialize, Serialize};

/// Lifecycle of a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Accepting work; escrow held.
    Open,
    /// Cancelled by its creator; unspent escrow refunded.
    Cancelled,
    /// Closed: rewards paid, the rest refunded, the final model registered.
    Closed,
    /// Closed by `TaskClose`, waiting for its challenge window to pass and its challenges to
    /// be decided; escrow held ([`super::challenge`]).
    Settling,
}

impl TaskStatus {
    /// Its lowercase name, as JSON spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Cancelled => "cancelled",
            Self::Closed => "closed",
            Self::Settling => "settling",
        }
    }

    /// Whether nothing more happens to the task (closed and settled, or cancelled).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Closed | Self::Cancelled)
    }
}

/// Most steps in a task's ε schedule (a task of more rounds prices them on a grid).
pub const EPSILON_SCHEDULE_STEPS_MAX: usize = 128;

/// One step of a task's ε schedule: a dataset that took part in more than the previous step's
/// `rounds` and at most this step's `rounds` rounds has spent `epsilon` (fixed point,
/// [`crate::EPSILON_SCALE`]) of its privacy within the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpsilonStep {
    /// Rounds taken part in.
    pub rounds: u32,
    /// Cumulative ε after them, fixed point.
    pub epsilon: u64,
}

impl Write for EpsilonStep {
    fn write(&self, buf: &mut impl BufMut) {
        self.rounds.write(buf);
        self.epsilon.write(buf);
    }
}

impl EncodeSize for EpsilonStep {
    fn encode_size(&self) -> usize {
        12
    }
}

impl Read for EpsilonStep {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            rounds: u32::read_cfg(buf, &())?,
            epsilon: u64::read_cfg(buf, &())?,
        })
    }
}

/// A training task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Its id (from 1).
    pub id: u64,
    /// The creator (owner).
    pub creator: Address,
    /// Purpose, matched against consent policies.
    pub purpose: String,
    /// BLAKE3 of the model specification.
    pub model_spec: Digest,
    /// Datasets named by the filter (each admitted its consent at creation).
    pub datasets: Vec<u64>,
    /// Training rounds.
    pub rounds: u32,
    /// DP ε budget, fixed point ([`crate::EPSILON_SCALE`]).
    pub epsilon: u64,
    /// What taking part in rounds costs a dataset ([`crate::TaskCreate::epsilon_schedule`]).
    #[serde(default)]
    pub epsilon_schedule: Vec<EpsilonStep>,
    /// DP δ, fixed point ([`crate::DELTA_SCALE`]).
    pub delta: u64,
    /// Total reward put up at creation.
    #[serde(with = "crate::types::amount")]
    pub reward: u128,
    /// Reward still held in escrow.
    #[serde(with = "crate::types::amount")]
    pub escrow: u128,
    /// Lifecycle.
    pub status: TaskStatus,
    /// Height of creation.
    pub created_height: u64,
    /// Hash chain over `history`.
    pub history_root: Digest,
    /// Everything that happened to this task.
    pub history: Vec<HistoryEntry>,
    /// The address allowed to run rounds, if the creator designated one (else the creator).
    #[serde(default)]
    pub coordinator: Option<Address>,
    /// Commitment to the validation data ([`crate::validation_commitment`]).
    #[serde(default)]
    pub validation: Option<Digest>,
    /// DP ε of the dataset that took part in the most opened rounds, fixed point.
    #[serde(default)]
    pub epsilon_spent: u64,
    /// DP δ spent by opened rounds (the sum), fixed point.
    #[serde(default)]
    pub delta_spent: u64,
    /// Every round opened so far, in order (round `i` at index `i - 1`), expired ones included.
    #[serde(default)]
    pub round_log: Vec<Round>,
    /// The model registered when the task settled (none if every completed round was
    /// invalidated).
    #[serde(default)]
    pub final_model: Option<u64>,
    /// Coordinator bonds, in the order they were locked.
    #[serde(default)]
    pub bonds: Vec<CoordinatorBond>,
    /// Challenges against its rounds, in the order they were filed (challenge `i` at index
    /// `i - 1`).
    #[serde(default)]
    pub challenges: Vec<Challenge>,
    /// What its `TaskClose` fixed, while settling and after.
    #[serde(default)]
    pub closing: Option<Closing>,
}

impl Task {
    /// The committed bytes (the state-tree leaf value).
    pub fn leaf_value(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(200 + self.datasets.len() * 8);
        self.id.write(&mut out);
        self.creator.write(&mut out);
        crate::codec::write_str(&self.purpose, &mut out);
        self.model_spec.write(&mut out);
        crate::codec::write_list(&self.datasets, &mut out);
        self.rounds.write(&mut out);
        self.epsilon.write(&mut out);
        write_list(&self.epsilon_schedule, &mut out);
        self.delta.write(&mut out);
        self.reward.write(&mut out);
        self.escrow.write(&mut out);
        out.push(match self.status {
            TaskStatus::Open => 0,
            TaskStatus::Cancelled => 1,
            TaskStatus::Closed => 2,
            TaskStatus::Settling => 3,
        });
        self.created_height.write(&mut out);
        self.history_root.write(&mut out);
        self.coordinator.write(&mut out);
        self.validation.write(&mut out);
        self.epsilon_spent.write(&mut out);
        self.delta_spent.write(&mut out);
        let digests: Vec<Digest> = self.round_log.iter().map(Round::digest).collect();
        crate::codec::write_list(&digests, &mut out);
        self.final_model.write(&mut out);
        write_list(&self.bonds, &mut out);
        let challenges: Vec<Digest> = self
            .challenges
            .iter()
            .map(|c| {
                let mut bytes = Vec::with_capacity(c.encode_size());
                c.write(&mut bytes);
                Digest::hash(&bytes)
            })
            .collect();
        write_list(&challenges, &mut out);
        self.closing.write(&mut out);
        out
    }

    /// Who may open and close rounds: the designated coordinator, else the creator.
    pub fn coordinator(&self) -> Address {
        self.coordinator.unwrap_or(self.creator)
    }

    /// The round waiting for its result, if any.
    pub fn open_round(&self) -> Option<&Round> {
        self.round_log.last().filter(|r| r.is_open())
    }

    /// Round `number` (from 1), if it was opened.
    pub fn round(&self, number: u32) -> Option<&Round> {
        let index = usize::try_from(number).ok()?.checked_sub(1)?;
        self.round_log.get(index)
    }

    /// The last round that recorded a result (expired rounds have none), if any.
    pub fn last_completed_round(&self) -> Option<&Round> {
        self.round_log.iter().rev().find(|r| r.outcome.is_some())
    }

    /// In how many opened rounds (expired ones included) dataset `id` was selected.
    pub fn participations(&self, id: u64) -> u32 {
        let n = self
            .round_log
            .iter()
            .filter(|r| r.selected.binary_search(&id).is_ok())
            .count();
        u32::try_from(n).expect("at most task_rounds_max (u32) rounds")
    }

    /// A dataset's cumulative ε within the task after taking part in `rounds` rounds: the ε of
    /// the first schedule step at or after `rounds` (0 for none; `None` past the last step).
    pub fn cumulative_epsilon(&self, rounds: u32) -> Option<u64> {
        if rounds == 0 {
            return Some(0);
        }
        let i = self.epsilon_schedule.partition_point(|s| s.rounds < rounds);
        self.epsilon_schedule.get(i).map(|s| s.epsilon)
    }

    /// What selecting dataset `id` in the next round charges it (its cumulative ε after one
    /// more round minus its cumulative ε now), or `None` if it already took part in every
    /// round of the schedule.
    pub fn next_charge(&self, id: u64) -> Option<u64> {
        self.next_step(id).map(|(_, charge)| charge)
    }

    /// Dataset `id`'s participation count once selected in the next round, and what that round
    /// charges it ([`Self::next_charge`]); `None` past the schedule's last step.
    pub fn next_step(&self, id: u64) -> Option<(u32, u64)> {
        let j = self.participations(id);
        let after = j.checked_add(1)?;
        let charge = self
            .cumulative_epsilon(after)?
            .saturating_sub(self.cumulative_epsilon(j)?);
        Some((after, charge))
    }

    /// Number of rounds opened so far (the next round is this + 1).
    pub fn rounds_opened(&self) -> u32 {
        u32::try_from(self.round_log.len()).expect("at most task_rounds_max (u32) rounds")
    }

    /// Each scored dataset's score summed over all closed rounds that no challenge invalidated.
    pub fn score_totals(&self) -> std::collections::BTreeMap<u64, u128> {
        let mut totals = std::collections::BTreeMap::new();
        let valid = self
            .round_log
            .iter()
            .filter(|r| !self.round_invalid(r.number));
        for outcome in valid.filter_map(|r| r.outcome.as_ref()) {
            for s in &outcome.scores {
                *totals.entry(s.dataset).or_insert(0u128) += u128::from(s.value);
            }
        }
        totals
    }
}
