//! Training tasks: what to train, under which privacy budget, for which escrowed reward.

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
        });
        self.created_height.write(&mut out);
        self.history_root.write(&mut out);
        out
    }
}
