//! Emissions: new tokens per block, and who earns them.
//!
//! Each block mints `emission_per_block`. `emission_treasury_bps` of it goes to the treasury at
//! once; the rest accrues to the epoch's pool. At the epoch's last block the pool is paid to the
//! epoch's validators, each in proportion to its stake in the set times the blocks it proposed
//! in the epoch: stake is what it risks, blocks are the work it did (an offline validator
//! proposes none and earns nothing). A validator's reward is shared with its delegators in
//! proportion to their delegations, less `validator_commission_bps` of the delegators' part,
//! which the validator keeps. A task's coordinator is minted `coordinator_round_reward` per
//! completed, unchallenged round when the task settles ([`State::settle`]), so coordinating is
//! paid from emissions, not from the data owners' escrow. Challengers and disputers who win get
//! their share of the slashed bond (`challenge_reward_bps`, `dispute_reward_bps`) and are minted
//! `challenge_emission_reward` on top, which `Params::validate` keeps below what the slashed
//! party loses, so a liar and its own challenger cannot farm it. Whatever a division leaves over
//! goes to the treasury.
//!
//! Invariant: `emitted` counts every token minted; balances + every lock + `pool` + burned =
//! genesis supply + `emitted` ([`super::SupplyReport::conserved`]).

use super::State;
use super::governance::treasury;
use crate::event::{EmissionRole, Event};
use crate::params::BPS_SCALE;
use crate::proof::StateKey;
use crate::types::{Address, Digest};
use commonware_codec::Write;
use std::collections::BTreeMap;

/// The emission part of the state (committed in the `Meta` leaf).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Economy {
    /// Every token minted so far.
    pub(crate) emitted: u128,
    /// Minted for validators in the current epoch, not yet paid.
    pub(crate) pool: u128,
    /// Blocks each validator account proposed in the current epoch.
    pub(crate) proposed: BTreeMap<Address, u64>,
}

impl Economy {
    /// Whether anything is recorded (an empty economy leaves the `Meta` leaf as before it
    /// existed).
    pub(crate) fn is_empty(&self) -> bool {
        *self == Economy::default()
    }

    /// The bytes the `Meta` leaf appends when not empty.
    pub(crate) fn meta_bytes(&self) -> Vec<u8> {
        let mut proposed = Vec::with_capacity(self.proposed.len() * 40);
        for (a, n) in &self.proposed {
            a.write(&mut proposed);
            n.write(&mut proposed);
        }
        let mut out = Vec::with_capacity(64);
        self.emitted.write(&mut out);
        self.pool.write(&mut out);
        Digest::hash(&proposed).write(&mut out);
        out
    }
}

/// `⌊total · part / whole⌋` without overflow (0 when `whole` is 0).
fn pro_rata(total: u128, part: u128, whole: u128) -> u128 {
    super::share(total, part, whole).unwrap_or(0)
}

impl State {
    /// Every token minted so far.
    pub fn emitted(&self) -> u128 {
        self.economy.emitted
    }

    /// Minted for this epoch's validators, paid at its last block.
    pub fn emission_pool(&self) -> u128 {
        self.economy.pool
    }

    /// Blocks each validator account proposed so far in this epoch (kept while emissions run).
    pub fn proposed_this_epoch(&self) -> &BTreeMap<Address, u64> {
        &self.economy.proposed
    }

    /// Creates `amount` and credits it to `to`.
    pub(crate) fn mint(&mut self, to: &Address, amount: u128) {
        self.credit(to, amount);
        self.economy.emitted = self
            .economy
            .emitted
            .checked_add(amount)
            .expect("emissions stay far below u128::MAX");
        self.dirty.insert(StateKey::Meta);
    }

    /// The start-of-block emission: the treasury's share now, the rest into the pool, and
    /// one block proposed for `proposer` (a consensus key).
    pub(crate) fn emit_for_block(&mut self, proposer: &Address) -> Vec<Event> {
        let per_block = self.params.emission_per_block;
        if per_block == 0 && self.economy.pool == 0 {
            return Vec::new();
        }
        let account = self.validator_account(proposer).unwrap_or(*proposer);
        *self.economy.proposed.entry(account).or_default() += 1;
        self.dirty.insert(StateKey::Meta);
        if per_block == 0 {
            return Vec::new();
        }
        let to_treasury = pro_rata(
            per_block,
            u128::from(self.params.emission_treasury_bps),
            u128::from(BPS_SCALE),
        );
        let to_pool = per_block - to_treasury;
        self.economy.pool += to_pool;
        self.economy.emitted += to_pool;
        let mut events = vec![Event::Minted {
            amount: per_block,
            pool: to_pool,
        }];
        if to_treasury > 0 {
            self.mint(&treasury(), to_treasury);
            events.push(Event::EmissionPaid {
                account: treasury(),
                amount: to_treasury,
                role: EmissionRole::Treasury,
            });
        }
        events
    }

    /// At the last block of an epoch: pays the pool to the epoch's validators by stake × blocks
    /// proposed, and each validator's delegators through it.
    pub(crate) fn pay_epoch(&mut self, height: u64) -> Vec<Event> {
        let epoch = self.params.epoch_of(height);
        if self.params.epoch_last(epoch) != Some(height) {
            return Vec::new();
        }
        let pool = std::mem::take(&mut self.economy.pool);
        let proposed = std::mem::take(&mut self.economy.proposed);
        self.dirty.insert(StateKey::Meta);
        if pool == 0 {
            return Vec::new();
        }
        let weights: Vec<(Address, u128)> = self
            .validator_set(epoch)
            .map(|set| {
                set.members
                    .iter()
                    .map(|m| {
                        let blocks = proposed.get(&m.account).copied().unwrap_or(0);
                        (m.account, m.stake.saturating_mul(u128::from(blocks)))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let whole: u128 = weights.iter().map(|(_, w)| w).sum();
        let mut events = Vec::new();
        let mut paid = 0u128;
        for (validator, w) in weights {
            let reward = pro_rata(pool, w, whole);
            for (account, amount, role) in self.split_with_delegators(&validator, reward) {
                if amount == 0 {
                    continue;
                }
                self.credit(&account, amount);
                paid += amount;
                events.push(Event::EmissionPaid {
                    account,
                    amount,
                    role,
                });
            }
        }
        let rest = pool - paid;
        if rest > 0 {
            self.credit(&treasury(), rest);
            events.push(Event::EmissionPaid {
                account: treasury(),
                amount: rest,
                role: EmissionRole::Treasury,
            });
        }
        events
    }

    /// `reward` split between `validator` and its delegators by stake, the validator keeping
    /// its commission on the delegators' part. The parts sum to `reward` exactly (the
    /// validator takes what rounding leaves).
    fn split_with_delegators(
        &self,
        validator: &Address,
        reward: u128,
    ) -> Vec<(Address, u128, EmissionRole)> {
        let own = self.account(validator).staked;
        let delegators = self.delegators_of(validator);
        let total = own + delegators.iter().map(|(_, a)| a).sum::<u128>();
        let commission = u128::from(self.params.validator_commission_bps);
        let mut out = Vec::with_capacity(delegators.len() + 1);
        let mut given = 0u128;
        for (d, amount) in delegators {
            let gross = pro_rata(reward, amount, total);
            let net = gross - pro_rata(gross, commission, u128::from(BPS_SCALE));
            given += net;
            out.push((d, net, EmissionRole::Delegator));
        }
        out.insert(0, (*validator, reward - given, EmissionRole::Validator));
        out
    }

    /// Mints the coordinator's reward for `rounds` completed rounds of a settling task.
    pub(crate) fn pay_coordinator(&mut self, coordinator: &Address, rounds: u64) -> Option<Event> {
        let amount = self
            .params
            .coordinator_round_reward
            .saturating_mul(u128::from(rounds));
        self.mint_reward(coordinator, amount, EmissionRole::Coordinator)
    }

    /// Mints `amount` to `to` for `role` (nothing, and no event, when 0).
    pub(crate) fn mint_reward(
        &mut self,
        to: &Address,
        amount: u128,
        role: EmissionRole,
    ) -> Option<Event> {
        if amount == 0 {
            return None;
        }
        self.mint(to, amount);
        Some(Event::EmissionPaid {
            account: *to,
            amount,
            role,
        })
    }
}
