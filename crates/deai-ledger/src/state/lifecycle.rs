//! Task-lifecycle queries shared by `RoundOpen`, `RoundResult` and `TaskClose`: who may act for
//! a task and which datasets a round may use.
//!
//! Invariant: eligibility is judged at the height of the block that opens the round, so a
//! revocation, expiry or policy change takes effect from the next `RoundOpen`; an open round
//! is never re-judged.

use super::{State, Task, TaskTerms};
use crate::error::TxError;
use crate::types::Address;

impl State {
    /// Err unless `sender` is the task's coordinator (or, with `creator_too`, its creator).
    pub(crate) fn require_coordinator(
        task: &Task,
        sender: &Address,
        creator_too: bool,
    ) -> Result<(), TxError> {
        if task.coordinator() == *sender || (creator_too && task.creator == *sender) {
            return Ok(());
        }
        Err(TxError::NotCoordinator {
            task: task.id,
            coordinator: task.coordinator(),
            sender: *sender,
        })
    }

    /// Whether dataset `id` may take part in the next round of `task`, opened at `height`: in
    /// the task's filter, consent not revoked, policy admits the task at this height, it has a
    /// next step in the task's ε schedule, what that step charges it is within its per-round
    /// cap (`epsilon_round_max`, if set), and its accumulated ε plus that charge stays within
    /// its `epsilon_max`.
    pub(crate) fn eligibility(&self, task: &Task, id: u64, height: u64) -> Result<(), TxError> {
        if !task.datasets.contains(&id) {
            return Err(TxError::InvalidParticipant {
                dataset: id,
                field: "selected".into(),
                reason: format!("not in the filter of task {}", task.id),
            });
        }
        let d = self.dataset_checked(id)?;
        if d.revoked {
            return Err(TxError::ConsentRevoked { dataset: id });
        }
        self.require_unblocked(super::BlockTarget::Dataset(id))?;
        let terms = TaskTerms {
            creator: &task.creator,
            purpose: &task.purpose,
            reward: task.reward,
            epsilon: task.epsilon,
        };
        d.policy.admits(id, &terms, height)?;
        let charge = task
            .next_charge(id)
            .ok_or_else(|| TxError::InvalidParticipant {
                dataset: id,
                field: "selected".into(),
                reason: format!("already took part in every round of task {}", task.id),
            })?;
        d.policy.admits_round(id, charge)?;
        let over = d
            .epsilon_spent
            .checked_add(charge)
            .is_none_or(|total| total > d.policy.epsilon_max);
        if over {
            return Err(TxError::DatasetBudgetExceeded {
                dataset: id,
                spent: d.epsilon_spent,
                round: charge,
                max: d.policy.epsilon_max,
            });
        }
        Ok(())
    }

    /// The datasets of `task`'s filter eligible for its next round at `height`, ascending.
    pub(crate) fn eligible(&self, task: &Task, height: u64) -> Vec<u64> {
        // The filter keeps its creator's order; `select` does not care, callers are promised
        // ascending ids.
        let mut ids: Vec<u64> = task
            .datasets
            .iter()
            .copied()
            .filter(|&id| self.eligibility(task, id, height).is_ok())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The datasets eligible for `task`'s next round if its `RoundOpen` lands in the next
    /// block, ascending: a coordinator asks for at most this many. The ledger draws which of
    /// them the round takes from the beacon of the block that includes the `RoundOpen`, so
    /// nobody can say in advance which.
    pub fn round_eligible(&self, task: u64) -> Result<Vec<u64>, TxError> {
        let t = self.task_checked(task)?;
        Ok(self.eligible(t, self.height.saturating_add(1)))
    }
}
