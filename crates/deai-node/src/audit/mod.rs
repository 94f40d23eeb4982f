//! Checking what others claim, from public data alone, as a node that took no part: one home for
//! the three checks a user runs, each named for what it checks.
//!
//! - [`chain`]: replay every finalized block from genesis and compare each state root with the
//!   one the chain committed to (`deai ledger verify`).
//! - [`task`]: re-verify a closed task's rounds from the ledger and its blobs (`deai verify
//!   task`); each round goes through the pure per-round check [`crate::fed::verify_round`].
//! - [`lineage`]: trace a model back to its task, rounds, datasets, owners, rewards and parent
//!   models (`deai lineage model`); a read of the ledger, not a re-execution.

pub mod chain;
pub mod challenge;
pub mod lineage;
pub mod task;
