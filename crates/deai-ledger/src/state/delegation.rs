//! Delegated stake: a token holder bonds stake to a validator without running a node.
//!
//! `Delegate` moves balance into a delegation; `Undelegate` starts unbonding it on the
//! delegator's account (the same delay and entry limit as `Unstake`), and the delegator may then
//! delegate again, to the same validator or another (redelegation goes through unbonding, so
//! stake cannot hop between validators to dodge a decision). A validator is chosen for a set by
//! its own stake plus what is delegated to it; it votes on proposals with both, except the
//! delegations of delegators that vote themselves (`governance`). Emissions pay delegators
//! through their validator (`economy`).
//!
//! Invariants: `delegated_in[v]` is the sum of every delegation to `v` (derived, rebuilt on
//! restore); a delegator's leaf keeps existing once written, empty when it delegates nothing.

use super::State;
use super::governance::DelegationEntry;
use crate::proof::StateKey;
use crate::types::Address;
use commonware_codec::Write;
use std::collections::BTreeMap;

/// Most validators one account may delegate to at once.
pub const DELEGATIONS_MAX: usize = 16;

/// One account's delegations as its leaf commits to them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DelegationList {
    /// The delegator.
    pub delegator: Address,
    /// Its delegations, by validator.
    #[serde(with = "crate::types::allocations")]
    pub delegations: Vec<(Address, u128)>,
}

impl DelegationList {
    /// The committed value bytes.
    pub fn leaf_value(&self) -> Vec<u8> {
        Delegations::leaf_value(&self.delegations.iter().copied().collect())
    }
}

/// The delegation part of the state.
#[derive(Clone, Debug, Default)]
pub(crate) struct Delegations {
    /// delegator → validator → amount.
    pub(crate) by_delegator: BTreeMap<Address, BTreeMap<Address, u128>>,
    /// validator → total delegated to it (derived).
    pub(crate) delegated_in: BTreeMap<Address, u128>,
}

impl Delegations {
    /// The committed value of a delegator's leaf: its delegations in validator order.
    pub(crate) fn leaf_value(list: &BTreeMap<Address, u128>) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + list.len() * 48);
        list.len().write(&mut out);
        for (v, amount) in list {
            v.write(&mut out);
            amount.write(&mut out);
        }
        out
    }

    /// Rebuilds the derived totals from the delegations.
    pub(crate) fn rebuild(&mut self) {
        self.delegated_in.clear();
        for list in self.by_delegator.values() {
            for (v, amount) in list {
                *self.delegated_in.entry(*v).or_default() += amount;
            }
        }
    }
}

impl State {
    /// `delegator`'s delegation leaf as an entry, if it ever delegated.
    pub fn delegation_list(&self, delegator: &Address) -> Option<DelegationList> {
        self.delegations
            .by_delegator
            .get(delegator)
            .map(|list| DelegationList {
                delegator: *delegator,
                delegations: list.iter().map(|(v, a)| (*v, *a)).collect(),
            })
    }

    /// What `delegator` delegates, by validator.
    pub fn delegations_of(&self, delegator: &Address) -> BTreeMap<Address, u128> {
        self.delegations
            .by_delegator
            .get(delegator)
            .cloned()
            .unwrap_or_default()
    }

    /// The total delegated to `validator`.
    pub fn delegated_to(&self, validator: &Address) -> u128 {
        self.delegations
            .delegated_in
            .get(validator)
            .copied()
            .unwrap_or(0)
    }

    /// Who delegates to `validator`, and how much, by delegator.
    pub fn delegators_of(&self, validator: &Address) -> Vec<(Address, u128)> {
        self.delegations
            .by_delegator
            .iter()
            .filter_map(|(d, list)| list.get(validator).map(|a| (*d, *a)))
            .collect()
    }

    /// Every delegation, by delegator then validator.
    pub(crate) fn delegation_entries(&self) -> Vec<DelegationEntry> {
        self.delegations
            .by_delegator
            .iter()
            .flat_map(|(d, list)| {
                list.iter().map(|(v, amount)| DelegationEntry {
                    delegator: *d,
                    validator: *v,
                    amount: *amount,
                })
            })
            .collect()
    }

    /// Sum of all delegations.
    pub(crate) fn delegated_total(&self) -> u128 {
        self.delegations.delegated_in.values().sum()
    }

    /// Adds `amount` to `delegator`'s delegation to `validator` (balance already debited).
    pub(crate) fn add_delegation(&mut self, delegator: Address, validator: Address, amount: u128) {
        self.dirty.insert(StateKey::Delegations(delegator));
        *self
            .delegations
            .by_delegator
            .entry(delegator)
            .or_default()
            .entry(validator)
            .or_default() += amount;
        *self.delegations.delegated_in.entry(validator).or_default() += amount;
    }

    /// Takes `amount` off `delegator`'s delegation to `validator` (validated: it holds that
    /// much).
    pub(crate) fn remove_delegation(
        &mut self,
        delegator: Address,
        validator: Address,
        amount: u128,
    ) {
        self.dirty.insert(StateKey::Delegations(delegator));
        let list = self.delegations.by_delegator.entry(delegator).or_default();
        let left = list.get(&validator).copied().unwrap_or(0) - amount;
        if left == 0 {
            list.remove(&validator);
        } else {
            list.insert(validator, left);
        }
        let total = self.delegations.delegated_in.entry(validator).or_default();
        *total -= amount;
        if *total == 0 {
            self.delegations.delegated_in.remove(&validator);
        }
    }
}
