//! Training tasks: what to train, under which privacy budget, for which escrowed reward, and
//! the log of its rounds.
//!
//! Invariant: `epsilon_spent`/`delta_spent` are the sums of the opened rounds' ε/δ and never
//! exceed `epsilon`/`delta`.

use super::round::Round;
use crate::event::HistoryEntry;
use crate::types::{Address, Digest};
use commonware_codec::Write;
use serde::{Deserialize, Serialize};

/// Lifecycle of a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Accepting work; escrow held.
    Open,
    /// Cancelled by its creator; unspent escrow refunded.
    Cancelled,
    /// Closed by `TaskClose`: rewards paid, the rest refunded, the final model registered.
    Closed,
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
    /// DP ε spent by opened rounds (basic composition: the sum), fixed point.
    #[serde(default)]
    pub epsilon_spent: u64,
    /// DP δ spent by opened rounds (the sum), fixed point.
    #[serde(default)]
    pub delta_spent: u64,
    /// Every round opened so far, in order (round `i` at index `i - 1`), expired ones included.
    #[serde(default)]
    pub round_log: Vec<Round>,
    /// The model registered by `TaskClose`.
    #[serde(default)]
    pub final_model: Option<u64>,
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
        self.delta.write(&mut out);
        self.reward.write(&mut out);
        self.escrow.write(&mut out);
        out.push(match self.status {
            TaskStatus::Open => 0,
            TaskStatus::Cancelled => 1,
            TaskStatus::Closed => 2,
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

    /// Number of rounds opened so far (the next round is this + 1).
    pub fn rounds_opened(&self) -> u32 {
        u32::try_from(self.round_log.len()).expect("at most task_rounds_max (u32) rounds")
    }

    /// Each scored dataset's score summed over all closed rounds.
    pub fn score_totals(&self) -> std::collections::BTreeMap<u64, u128> {
        let mut totals = std::collections::BTreeMap::new();
        for outcome in self.round_log.iter().filter_map(|r| r.outcome.as_ref()) {
            for s in &outcome.scores {
                *totals.entry(s.dataset).or_insert(0u128) += u128::from(s.value);
            }
        }
        totals
    }
}
