//! A model's lineage read off the ledger: the task it came from, every round (who was selected,
//! who survived, scores, ε), the datasets that contributed and their owners, the rewards paid, and
//! the parent model's lineage in turn.
//!
//! Everything here comes from finalized ledger state through a node's HTTP API; [`build`] is pure
//! so the same tree can be built from any source of ledger objects.

use std::collections::BTreeMap;

use deai_ledger::{
    Address, DELTA_SCALE, Dataset, Digest, Event, METRIC_SCALE, Model, SCORE_SCALE, Task,
    epsilon_decimal,
};
use serde::Serialize;

use crate::client::{Client, ClientError};

/// Most ancestors followed: a lineage is a chain of tasks, and a cycle cannot occur on the ledger
/// (a parent exists before its child), but a lying node must not make the client loop.
pub const ANCESTORS_MAX: usize = 64;

/// One model and everything it was trained from.
#[derive(Debug, Clone, Serialize)]
pub struct Lineage {
    /// The model id.
    pub model: u64,
    /// BLAKE3 of its weights.
    pub model_hash: Digest,
    /// Who registered it.
    pub owner: Address,
    /// Height of registration.
    pub registered_height: u64,
    /// Its metrics (`name -> value`, decoded from fixed point).
    pub metrics: BTreeMap<String, f64>,
    /// The task that trained it.
    pub task: TaskLineage,
    /// The datasets that contributed to at least one completed round, by id.
    pub datasets: Vec<Contributor>,
    /// The model it was trained from, with its own lineage.
    pub parent: Option<Box<Lineage>>,
}

/// The task behind a model.
#[derive(Debug, Clone, Serialize)]
pub struct TaskLineage {
    /// Task id.
    pub id: u64,
    /// Its purpose (what consent policies matched against).
    pub purpose: String,
    /// The creator.
    pub creator: Address,
    /// Who ran the rounds.
    pub coordinator: Address,
    /// BLAKE3 of the model specification.
    pub model_spec: Digest,
    /// Rounds planned.
    pub rounds_planned: u32,
    /// DP ε budget (the task's `epsilon`), fixed point at `EPSILON_SCALE` as the ledger records it.
    pub epsilon_budget: u64,
    /// The same as an exact decimal.
    pub epsilon_budget_decimal: String,
    /// DP ε spent by opened rounds, fixed point as the ledger records it.
    pub epsilon_spent: u64,
    /// The same as an exact decimal.
    pub epsilon_spent_decimal: String,
    /// DP δ spent, fixed point at `DELTA_SCALE`.
    pub delta_spent: u64,
    /// The same as an exact decimal.
    pub delta_spent_decimal: String,
    /// Reward put in escrow, base units (decimal string in JSON).
    #[serde(with = "deai_ledger::amount")]
    pub reward: u128,
    /// Paid to contributors at close.
    #[serde(with = "deai_ledger::amount")]
    pub paid: u128,
    /// Refunded to the creator at close.
    #[serde(with = "deai_ledger::amount")]
    pub refund: u128,
    /// Every round in order.
    pub rounds: Vec<RoundLineage>,
}

/// One round of the task.
#[derive(Debug, Clone, Serialize)]
pub struct RoundLineage {
    /// Round number.
    pub number: u32,
    /// Datasets selected.
    pub selected: Vec<u64>,
    /// Datasets whose update is in the aggregate (empty while open or when aborted).
    pub survivors: Vec<u64>,
    /// Selected but not in the aggregate (dropped out or excluded).
    pub dropped: Vec<u64>,
    /// ε charged for the round, fixed point at `EPSILON_SCALE` as the ledger records it.
    pub epsilon: u64,
    /// The same as an exact decimal.
    pub epsilon_decimal: String,
    /// Datasets eligible when it opened (the sampling rate is `selected / eligible`).
    pub eligible: u32,
    /// Closed as failed after its deadline (`RoundExpire`): no result, ε still charged.
    pub expired: bool,
    /// BLAKE3 of the model the round started from.
    pub global_model: Digest,
    /// BLAKE3 of the model it produced (`None` while open).
    pub new_model: Option<Digest>,
    /// Scores by dataset, `0..=1`.
    pub scores: BTreeMap<u64, f64>,
}

/// A dataset that contributed, and what it earned.
#[derive(Debug, Clone, Serialize)]
pub struct Contributor {
    /// Dataset id.
    pub dataset: u64,
    /// Its owner.
    pub owner: Address,
    /// Rounds whose aggregate includes it.
    pub rounds: u32,
    /// Scores summed over rounds, `0..`.
    pub score_total: f64,
    /// Reward paid at close, base units.
    #[serde(with = "deai_ledger::amount")]
    pub reward: u128,
    /// Whether its owner has revoked consent since.
    pub revoked: bool,
}

/// Why a lineage could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LineageError {
    /// The node could not be asked.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The node's answers contradict each other.
    #[error("inconsistent ledger answers: {0}")]
    Inconsistent(String),
}

fn ratio(value: u64, scale: u64) -> f64 {
    value as f64 / scale as f64
}

/// Builds one level of lineage (the parent is attached by the caller) from ledger objects.
/// `datasets` must hold every dataset of the task's round log.
pub fn build(
    model: &Model,
    task: &Task,
    datasets: &BTreeMap<u64, Dataset>,
) -> Result<Lineage, LineageError> {
    if model.task != task.id {
        return Err(LineageError::Inconsistent(format!(
            "model {} names task {} but task {} was given",
            model.id, model.task, task.id
        )));
    }
    let (mut paid, mut refund) = (0u128, 0u128);
    let mut rewards: BTreeMap<u64, u128> = BTreeMap::new();
    for entry in &task.history {
        match &entry.event {
            Event::RewardPaid {
                dataset, amount, ..
            } => *rewards.entry(*dataset).or_default() += *amount,
            Event::TaskClosed {
                paid: p, refund: r, ..
            } => (paid, refund) = (*p, *r),
            _ => {}
        }
    }
    let rounds: Vec<RoundLineage> = task
        .round_log
        .iter()
        .map(|r| {
            let survivors = r
                .outcome
                .as_ref()
                .map(|o| o.survivors.clone())
                .unwrap_or_default();
            RoundLineage {
                number: r.number,
                selected: r.selected.clone(),
                dropped: r
                    .selected
                    .iter()
                    .filter(|d| r.outcome.is_some() && !survivors.contains(d))
                    .copied()
                    .collect(),
                survivors,
                epsilon: r.epsilon,
                epsilon_decimal: epsilon_decimal(r.epsilon),
                eligible: r.eligible,
                expired: r.is_expired(),
                global_model: r.global_model,
                new_model: r.outcome.as_ref().map(|o| o.new_model),
                scores: r
                    .outcome
                    .iter()
                    .flat_map(|o| &o.scores)
                    .map(|s| (s.dataset, ratio(s.value, SCORE_SCALE)))
                    .collect(),
            }
        })
        .collect();
    let mut contributors: BTreeMap<u64, Contributor> = BTreeMap::new();
    for round in &rounds {
        for &id in &round.survivors {
            let d = datasets.get(&id).ok_or_else(|| {
                LineageError::Inconsistent(format!(
                    "round {} names unknown dataset {id}",
                    round.number
                ))
            })?;
            let c = contributors.entry(id).or_insert_with(|| Contributor {
                dataset: id,
                owner: d.owner,
                rounds: 0,
                score_total: 0.0,
                reward: rewards.get(&id).copied().unwrap_or(0),
                revoked: d.revoked,
            });
            c.rounds += 1;
            c.score_total += round.scores.get(&id).copied().unwrap_or(0.0);
        }
    }
    Ok(Lineage {
        model: model.id,
        model_hash: model.model_hash,
        owner: model.owner,
        registered_height: model.registered_height,
        metrics: model
            .metrics
            .iter()
            .map(|m| (m.name.clone(), m.value as f64 / METRIC_SCALE as f64))
            .collect(),
        task: TaskLineage {
            id: task.id,
            purpose: task.purpose.clone(),
            creator: task.creator,
            coordinator: task.coordinator.unwrap_or(task.creator),
            model_spec: task.model_spec,
            rounds_planned: task.rounds,
            epsilon_budget: task.epsilon,
            epsilon_budget_decimal: epsilon_decimal(task.epsilon),
            epsilon_spent: task.epsilon_spent,
            epsilon_spent_decimal: epsilon_decimal(task.epsilon_spent),
            delta_spent: task.delta_spent,
            delta_spent_decimal: deai_ledger::decimal(
                u128::from(task.delta_spent),
                u128::from(DELTA_SCALE),
            ),
            reward: task.reward,
            paid,
            refund,
            rounds,
        },
        datasets: contributors.into_values().collect(),
        parent: None,
    })
}

/// Fetches model `id` and its ancestors from the node behind `client`.
pub async fn fetch(client: &Client, id: u64) -> Result<Lineage, LineageError> {
    let mut chain: Vec<Lineage> = Vec::new();
    let mut next = Some(id);
    while let Some(id) = next {
        if chain.len() == ANCESTORS_MAX {
            return Err(LineageError::Inconsistent(format!(
                "more than {ANCESTORS_MAX} ancestors"
            )));
        }
        let model: Model = client.get(&format!("/v1/models/{id}")).await?;
        if model.id != id {
            return Err(LineageError::Inconsistent(format!(
                "asked for model {id}, got model {}",
                model.id
            )));
        }
        let task: Task = client.get(&format!("/v1/tasks/{}", model.task)).await?;
        let mut datasets = BTreeMap::new();
        for r in &task.round_log {
            for &d in &r.selected {
                if let std::collections::btree_map::Entry::Vacant(e) = datasets.entry(d) {
                    let ds: Dataset = client.get(&format!("/v1/datasets/{d}")).await?;
                    e.insert(ds);
                }
            }
        }
        chain.push(build(&model, &task, &datasets)?);
        next = model.parent;
    }
    let mut lineage: Option<Lineage> = None;
    while let Some(mut level) = chain.pop() {
        level.parent = lineage.map(Box::new);
        lineage = Some(level);
    }
    lineage.ok_or_else(|| LineageError::Inconsistent("no model".into()))
}
