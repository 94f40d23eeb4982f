//! Snapshots: the whole state as a serde value, so a node can persist it and restart without
//! replaying every block.
//!
//! Invariant: restoring rebuilds the tree by re-adding every leaf in its original location
//! order, so the restored root is bit-for-bit the snapshot's; [`State::from_snapshot`] checks
//! that and refuses a snapshot whose root does not match (corrupt or tampered file). The derived
//! indexes (unbonding queue, offer bond releases, commitment → dataset) are rebuilt from the
//! entries, in key order.

use super::{
    Account, Channel, Dataset, Model, Offer, OfferStatus, State, Task, ValidatorSet,
    tree::StateTree,
};
use crate::params::Params;
use crate::proof::StateKey;
use crate::types::Digest;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Everything in a [`State`], in a form serde can write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Chain id.
    pub chain_id: String,
    /// Parameters.
    pub params: Params,
    /// Height of the last applied block.
    pub height: u64,
    /// Supply at genesis.
    #[serde(with = "crate::types::amount")]
    pub genesis_supply: u128,
    /// Fees paid so far.
    #[serde(with = "crate::types::amount")]
    pub fees_paid: u128,
    /// Tokens burned so far.
    #[serde(default, with = "crate::types::amount")]
    pub burned: u128,
    /// Accounts.
    pub accounts: Vec<Account>,
    /// Datasets.
    pub datasets: Vec<Dataset>,
    /// Tasks.
    pub tasks: Vec<Task>,
    /// Models.
    pub models: Vec<Model>,
    /// Validator sets by epoch.
    #[serde(default)]
    pub epochs: Vec<ValidatorSet>,
    /// Inference offers.
    #[serde(default)]
    pub offers: Vec<Offer>,
    /// Payment channels.
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// Governance proposals.
    #[serde(default)]
    pub proposals: Vec<super::Proposal>,
    /// Governance block decisions.
    #[serde(default)]
    pub blocked: Vec<super::BlockDecision>,
    /// Delegations (accounts that ever delegated, their current list).
    #[serde(default)]
    pub delegations: Vec<super::DelegationList>,
    /// Every token minted so far.
    #[serde(default, with = "crate::types::amount")]
    pub emitted: u128,
    /// The epoch's undistributed emission.
    #[serde(default, with = "crate::types::amount")]
    pub emission_pool: u128,
    /// Blocks proposed per validator account this epoch.
    #[serde(default)]
    pub proposed: Vec<(crate::types::Address, u64)>,
    /// Every state key in leaf-location order.
    pub leaves: Vec<StateKey>,
    /// The state root the restored state must have.
    pub root: Digest,
}

/// A snapshot that cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// A leaf names an entry the snapshot does not hold, or an entry has no leaf.
    #[error("snapshot leaf list and entries disagree at {0}")]
    Inconsistent(String),
    /// The rebuilt root differs from the recorded one.
    #[error("snapshot root {expected} but rebuilt {got}")]
    RootMismatch {
        /// Recorded root.
        expected: Digest,
        /// Rebuilt root.
        got: Digest,
    },
}

impl State {
    /// The whole state as a [`Snapshot`].
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            chain_id: self.chain_id.clone(),
            params: self.params.clone(),
            height: self.height,
            genesis_supply: self.genesis_supply,
            fees_paid: self.fees_paid,
            burned: self.burned,
            accounts: self.accounts.values().cloned().collect(),
            datasets: self.datasets.values().cloned().collect(),
            tasks: self.tasks.values().cloned().collect(),
            models: self.models.values().cloned().collect(),
            epochs: self.epochs.values().cloned().collect(),
            offers: self.offers.values().cloned().collect(),
            channels: self.channels.values().cloned().collect(),
            proposals: self.gov.proposals.values().cloned().collect(),
            blocked: self.block_decisions().collect(),
            delegations: self
                .delegations
                .by_delegator
                .keys()
                .filter_map(|d| self.delegation_list(d))
                .collect(),
            emitted: self.economy.emitted,
            emission_pool: self.economy.pool,
            proposed: self
                .economy
                .proposed
                .iter()
                .map(|(a, n)| (*a, *n))
                .collect(),
            leaves: self.tree.keys_in_order(),
            root: self.root(),
        }
    }

    /// Restore a state from a [`Snapshot`], checking its root.
    pub fn from_snapshot(s: Snapshot) -> Result<State, SnapshotError> {
        let mut state = State {
            limits: s.params.limits(),
            chain_id: s.chain_id,
            params: s.params,
            height: s.height,
            accounts: s.accounts.into_iter().map(|a| (a.address, a)).collect(),
            datasets: s.datasets.into_iter().map(|d| (d.id, d)).collect(),
            tasks: s.tasks.into_iter().map(|t| (t.id, t)).collect(),
            models: s.models.into_iter().map(|m| (m.id, m)).collect(),
            offers: s.offers.into_iter().map(|o| (o.id, o)).collect(),
            channels: s.channels.into_iter().map(|c| (c.id, c)).collect(),
            offer_release_queue: BTreeMap::new(),
            commitments: BTreeMap::new(),
            unbonding_queue: BTreeMap::new(),
            epochs: s.epochs.into_iter().map(|e| (e.epoch, e)).collect(),
            validator_keys: BTreeMap::new(),
            accountable: BTreeSet::new(),
            gov: super::governance::Governance {
                proposals: s.proposals.into_iter().map(|p| (p.id, p)).collect(),
                blocked: s
                    .blocked
                    .into_iter()
                    .map(|d| (d.target, (d.blocked, d.reason)))
                    .collect(),
                ends: BTreeMap::new(),
            },
            delegations: super::delegation::Delegations {
                by_delegator: s
                    .delegations
                    .into_iter()
                    .map(|d| (d.delegator, d.delegations.into_iter().collect()))
                    .collect(),
                delegated_in: BTreeMap::new(),
            },
            economy: super::economy::Economy {
                emitted: s.emitted,
                pool: s.emission_pool,
                proposed: s.proposed.into_iter().collect(),
            },
            genesis_supply: s.genesis_supply,
            fees_paid: s.fees_paid,
            burned: s.burned,
            tree: StateTree::new(),
            dirty: BTreeSet::new(),
        };
        let entries = 1
            + state.accounts.len()
            + state.datasets.len()
            + state.tasks.len()
            + state.models.len()
            + state.epochs.len()
            + state.offers.len()
            + state.channels.len()
            + state.gov.proposals.len()
            + state.gov.blocked.len()
            + state.delegations.by_delegator.len();
        if entries != s.leaves.len() {
            return Err(SnapshotError::Inconsistent(format!(
                "{} entries, {} leaves",
                entries,
                s.leaves.len()
            )));
        }
        let mut changes = Vec::with_capacity(s.leaves.len());
        for key in s.leaves {
            let value = state
                .leaf_value(&key)
                .ok_or_else(|| SnapshotError::Inconsistent(key.to_string()))?;
            changes.push((key, value));
        }
        state
            .tree
            .append_in_order(&changes)
            .map_err(|k| SnapshotError::Inconsistent(k.to_string()))?;
        state.delegations.rebuild();
        let voting: Vec<(u64, u64)> = state
            .gov
            .proposals
            .values()
            .filter(|p| p.status == super::ProposalStatus::Voting)
            .map(|p| (p.end_height, p.id))
            .collect();
        for (end, id) in voting {
            state.gov.ends.entry(end).or_default().insert(id);
        }
        for d in state.datasets.values() {
            state.commitments.entry(d.commitment).or_insert(d.id);
        }
        let ids: Vec<u64> = state.tasks.keys().copied().collect();
        for id in ids {
            state.refresh_accountable(id);
        }
        for o in state.offers.values() {
            if let (OfferStatus::Withdrawn, Some(h), true) =
                (o.status, o.release_height, o.bond > 0)
            {
                state.offer_release_queue.entry(h).or_default().insert(o.id);
            }
        }
        for a in state.accounts.values() {
            if let Some(v) = &a.validator {
                state.validator_keys.insert(v.key, a.address);
            }
            for u in &a.unbonding {
                state
                    .unbonding_queue
                    .entry(u.release_height)
                    .or_default()
                    .insert(a.address);
            }
        }
        let got = state.root();
        if got != s.root {
            return Err(SnapshotError::RootMismatch {
                expected: s.root,
                got,
            });
        }
        Ok(state)
    }
}
