//! Task-lifecycle queries shared by `RoundOpen`, `RoundResult` and `TaskClose`: who may act for
//! a task, which datasets a round may use, and the selection a round must name.
//!
//! Invariant: eligibility is judged at the height of the block that opens the round, so a
//! revocation, expiry or policy change takes effect from the next `RoundOpen`; an open round
//! is never re-judged.

use super::{State, Task, TaskTerms, round};
use crate::error::TxError;
use crate::types::{Address, Digest};

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

    /// Whether dataset `id` may take part in a round of `task` spending `epsilon`, opened at
    /// `height`: in the task's filter, consent not revoked, policy admits the task at this
    /// height, the round's ε is within its per-round cap (`epsilon_round_max`, if set), and its
    /// accumulated ε plus the round's stays within its `epsilon_max`.
    pub(crate) fn eligibility(
        &self,
        task: &Task,
        id: u64,
        height: u64,
        epsilon: u64,
    ) -> Result<(), TxError> {
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
        let terms = TaskTerms {
            creator: &task.creator,
            purpose: &task.purpose,
            reward: task.reward,
            epsilon: task.epsilon,
        };
        d.policy.admits(id, &terms, height)?;
        d.policy.admits_round(id, epsilon)?;
        let over = d
            .epsilon_spent
            .checked_add(epsilon)
            .is_none_or(|total| total > d.policy.epsilon_max);
        if over {
            return Err(TxError::DatasetBudgetExceeded {
                dataset: id,
                spent: d.epsilon_spent,
                round: epsilon,
                max: d.policy.epsilon_max,
            });
        }
        Ok(())
    }

    /// The datasets of `task`'s filter eligible for a round spending `epsilon` at `height`.
    pub(crate) fn eligible(&self, task: &Task, height: u64, epsilon: u64) -> Vec<u64> {
        task.datasets
            .iter()
            .copied()
            .filter(|&id| self.eligibility(task, id, height, epsilon).is_ok())
            .collect()
    }

    /// The seed of `task`'s round `round` in the block being applied (or, between blocks, the
    /// next one): the tree is committed only at the end of a block, so [`Self::root`] is the
    /// state root of the previous height throughout a block.
    pub(crate) fn round_seed(&self, task: u64, round: u32) -> Digest {
        round::selection_seed(task, round, &self.root())
    }

    /// The datasets eligible for `task`'s next round spending `epsilon` if its `RoundOpen`
    /// lands in the next block, ascending. Their number is what the round records as
    /// [`crate::Round::eligible`], from which owners and verifiers recompute the sampling rate
    /// `q = selected / eligible` and so the round's ε.
    pub fn round_eligible(&self, task: u64, epsilon: u64) -> Result<Vec<u64>, TxError> {
        let t = self.task_checked(task)?;
        Ok(self.eligible(t, self.height.saturating_add(1), epsilon))
    }

    /// The datasets a `RoundOpen` for `task`'s next round, asking for `count` datasets and
    /// spending `epsilon`, must select if it lands in the next block (what a coordinator calls
    /// before signing). Sorted ascending; shorter than `count` when fewer are eligible.
    pub fn round_selection(
        &self,
        task: u64,
        count: usize,
        epsilon: u64,
    ) -> Result<Vec<u64>, TxError> {
        let eligible = self.round_eligible(task, epsilon)?;
        let round = self.task_checked(task)?.rounds_opened().saturating_add(1);
        Ok(round::select(
            &self.round_seed(task, round),
            &eligible,
            count,
        ))
    }
}
