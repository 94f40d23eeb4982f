//! The ledger state: accounts, datasets, tasks, models, the unbonding queue and the
//! authenticated tree over them.
//!
//! Invariants:
//! - every mutation goes through the `*_mut`/`insert_*` helpers, which mark the key dirty; the
//!   tree is brought up to date once per block ([`State::commit`]), so `root()` always covers
//!   every entry as of the last applied block;
//! - tokens are conserved: balances + staked + unbonding + escrow + channel deposits + offer
//!   and coordinator bonds + challenge deposits + burned == genesis supply (fees move from payer to proposer balances; a slashed
//!   bond's unpaid part is burned);
//! - ids are dense, assigned from 1 in application order, and never reused;
//! - `commitments` maps every registered data commitment to the dataset that registered it
//!   (the first, for chains that accepted duplicates before they were refused). It is not a leaf
//!   of its own: it is a function of the dataset leaves (each commits to its `commitment`), so
//!   the root covers it, and a restored snapshot rebuilds it from the datasets in id order.

mod account;
mod apply;
mod challenge;
mod channel;
mod dataset;
mod delegation;
mod economy;
mod governance;
mod lifecycle;
mod model;
mod offer;
mod round;
mod royalty;
mod snapshot;
mod task;
mod tree;
mod validators;

pub use account::{Account, Unbonding};
pub use challenge::{Challenge, Claim, Closing, CoordinatorBond, Verdict, Vote};
pub use channel::{Channel, ChannelStatus};
pub use dataset::{ConsentPolicy, Dataset, TaskTerms};
pub use delegation::{DELEGATIONS_MAX, DelegationList};
pub(crate) use governance::apply_changes;
pub use governance::{
    BlockDecision, BlockTarget, Choice, DelegationEntry, PARAM_CHANGES_MAX, ParamSet,
    PowerSnapshot, Proposal, ProposalKind, ProposalStatus, Tally, treasury,
};
pub(crate) use model::check_metrics;
pub use model::{Metric, Model};
pub use offer::{Contributor, Offer, OfferStatus};
pub(crate) use round::read_scores;
pub use round::{Round, RoundOutcome, SCORE_SCALE, Score, SecAggParams, select, selection_seed};
pub(crate) use royalty::{royalty_of, share, split};
pub use snapshot::{Snapshot, SnapshotError};
pub use task::{EPSILON_SCHEDULE_STEPS_MAX, EpsilonStep, Task, TaskStatus};
pub use validators::{Member, ValidatorKey, ValidatorSet};

use crate::error::{EntityKind, GenesisError, TxError};
use crate::event::{Event, HistoryEntry};
use crate::genesis::Genesis;
use crate::params::{Limits, Params};
use crate::proof::{Proof, StateKey};
use crate::tx::Env;
use crate::types::{Address, Digest};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use tree::StateTree;

/// Where every token is; `total` must always equal `genesis`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupplyReport {
    /// Sum of spendable balances (fees paid to proposers are part of their balances).
    #[serde(with = "crate::types::amount")]
    pub balances: u128,
    /// Sum of locked stake.
    #[serde(with = "crate::types::amount")]
    pub staked: u128,
    /// Sum of unbonding entries.
    #[serde(with = "crate::types::amount")]
    pub unbonding: u128,
    /// Sum of task escrows.
    #[serde(with = "crate::types::amount")]
    pub escrow: u128,
    /// Sum of what open payment channels lock (deposits not yet claimed).
    #[serde(default, with = "crate::types::amount")]
    pub channels: u128,
    /// Sum of offer bonds, coordinator bonds, pending challenge deposits, the deposits of
    /// proposals still voting and dataset bonds.
    #[serde(default, with = "crate::types::amount")]
    pub bonds: u128,
    /// Sum of stake delegated to validators.
    #[serde(default, with = "crate::types::amount")]
    pub delegated: u128,
    /// Emitted for this epoch's validators, not yet paid.
    #[serde(default, with = "crate::types::amount")]
    pub emission_pool: u128,
    /// Every token minted by emissions so far.
    #[serde(default, with = "crate::types::amount")]
    pub emitted: u128,
    /// Fees paid to proposers so far (already inside `balances`; informational).
    #[serde(with = "crate::types::amount")]
    pub fees_paid: u128,
    /// Burned tokens: the part of slashed offer bonds not paid to disputers.
    #[serde(with = "crate::types::amount")]
    pub burned: u128,
    /// balances + staked + delegated + unbonding + escrow + channels + bonds + emission_pool +
    /// burned: equals `genesis + emitted` ([`SupplyReport::conserved`]).
    #[serde(with = "crate::types::amount")]
    pub total: u128,
    /// Supply at genesis.
    #[serde(with = "crate::types::amount")]
    pub genesis: u128,
}

impl SupplyReport {
    /// Whether every token is accounted for: `total == genesis + emitted`.
    pub fn conserved(&self) -> bool {
        self.genesis.checked_add(self.emitted) == Some(self.total)
    }
}

/// The whole ledger state. Cloning copies everything (use it for speculative execution).
///
/// Method groups:
/// - build: [`State::from_genesis`];
/// - change: [`State::apply_block`] (verifies signatures) or [`State::apply_block_verified`];
/// - admission: [`State::check_tx_stateless`], [`State::check_tx`] (what a mempool calls);
/// - read: [`State::root`], [`State::height`], [`State::account`], [`State::dataset`],
///   [`State::task`], [`State::model`], [`State::offer`] (and [`State::offers_by_model`],
///   [`State::offers_by_provider`]), [`State::channel`] (and [`State::channels_by_offer`],
///   [`State::channels_by_payer`]) and their iterators, [`State::supply`];
/// - pay: [`State::voucher_claimable`], [`State::contributors_of`], [`State::royalty_floor`];
/// - authenticate: [`State::prove`] and [`crate::verify_proof`].
#[derive(Clone, Debug)]
pub struct State {
    chain_id: String,
    params: Params,
    limits: Limits,
    height: u64,
    accounts: BTreeMap<Address, Account>,
    datasets: BTreeMap<u64, Dataset>,
    tasks: BTreeMap<u64, Task>,
    models: BTreeMap<u64, Model>,
    offers: BTreeMap<u64, Offer>,
    channels: BTreeMap<u64, Channel>,
    /// release height → withdrawn offers whose bond returns then (derived from the offers).
    offer_release_queue: BTreeMap<u64, BTreeSet<u64>>,
    /// data commitment → the dataset that registered it (derived from `datasets`).
    commitments: BTreeMap<Digest, u64>,
    /// release height → accounts with an entry releasing then.
    unbonding_queue: BTreeMap<u64, BTreeSet<Address>>,
    /// epoch → its validator set (see [`validators`]).
    epochs: BTreeMap<u64, ValidatorSet>,
    /// consensus key → the account that declared it (derived from the accounts).
    validator_keys: BTreeMap<Address, Address>,
    /// Tasks settling or with a pending challenge (derived from the tasks; see [`challenge`]).
    accountable: BTreeSet<u64>,
    /// Proposals and block decisions (see [`governance`]).
    gov: governance::Governance,
    /// Delegated stake (see [`delegation`]).
    delegations: delegation::Delegations,
    /// Emissions (see [`economy`]).
    economy: economy::Economy,
    genesis_supply: u128,
    fees_paid: u128,
    burned: u128,
    tree: StateTree,
    dirty: BTreeSet<StateKey>,
}

impl State {
    /// The state at height 0.
    pub fn from_genesis(g: &Genesis) -> Result<State, GenesisError> {
        g.validate()?;
        let mut state = State {
            chain_id: g.chain_id.clone(),
            params: g.params.clone(),
            limits: g.params.limits(),
            height: 0,
            accounts: BTreeMap::new(),
            datasets: BTreeMap::new(),
            tasks: BTreeMap::new(),
            models: BTreeMap::new(),
            offers: BTreeMap::new(),
            channels: BTreeMap::new(),
            offer_release_queue: BTreeMap::new(),
            commitments: BTreeMap::new(),
            unbonding_queue: BTreeMap::new(),
            epochs: BTreeMap::new(),
            validator_keys: BTreeMap::new(),
            accountable: BTreeSet::new(),
            gov: governance::Governance::default(),
            delegations: delegation::Delegations::default(),
            economy: economy::Economy::default(),
            genesis_supply: g.supply()?,
            fees_paid: 0,
            burned: 0,
            tree: StateTree::new(),
            dirty: BTreeSet::new(),
        };
        state.dirty.insert(StateKey::Meta);
        for &(a, amount) in &g.balances {
            state.account_mut(&a).balance = amount;
        }
        for &(a, stake) in &g.validators {
            state.account_mut(&a).staked = stake;
            state.declare_validator(
                &a,
                ValidatorKey {
                    key: a,
                    p2p: String::new(),
                },
            );
        }
        // Genesis validators are declared and hold the minimum (checked by `validate`), and there
        // are at most `validators_max` of them: the stake rule picks exactly them, in its order.
        let members = state.validator_candidates(usize::MAX);
        state.insert_validator_set(ValidatorSet {
            epoch: 0,
            chosen_at: 0,
            members,
        });
        state.commit();
        Ok(state)
    }

    /// The chain id transactions must carry.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The protocol parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The decoding limits derived from the parameters.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Height of the last applied block (0 = genesis).
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The authenticated root over all state as of the last applied block.
    pub fn root(&self) -> Digest {
        self.tree.root()
    }

    /// The account of `a` (all zero if never seen).
    pub fn account(&self, a: &Address) -> Account {
        self.accounts
            .get(a)
            .cloned()
            .unwrap_or_else(|| Account::new(*a))
    }

    /// Every account that ever held anything, by address.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    /// A dataset by id.
    pub fn dataset(&self, id: u64) -> Option<&Dataset> {
        self.datasets.get(&id)
    }

    /// All datasets by id.
    pub fn datasets(&self) -> impl Iterator<Item = &Dataset> {
        self.datasets.values()
    }

    /// The dataset that registered data commitment `commitment`, if any (revoked ones too).
    pub fn dataset_by_commitment(&self, commitment: &Digest) -> Option<u64> {
        self.commitments.get(commitment).copied()
    }

    /// A task by id.
    pub fn task(&self, id: u64) -> Option<&Task> {
        self.tasks.get(&id)
    }

    /// All tasks by id.
    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values()
    }

    /// A model by id.
    pub fn model(&self, id: u64) -> Option<&Model> {
        self.models.get(&id)
    }

    /// All models by id.
    pub fn models(&self) -> impl Iterator<Item = &Model> {
        self.models.values()
    }

    /// The committed value bytes of `key`, if it exists.
    pub fn leaf_value(&self, key: &StateKey) -> Option<Vec<u8>> {
        match key {
            StateKey::Meta => Some(self.meta_value()),
            StateKey::Account(a) => self.accounts.get(a).map(Account::leaf_value),
            StateKey::Dataset(id) => self.datasets.get(id).map(Dataset::leaf_value),
            StateKey::Task(id) => self.tasks.get(id).map(Task::leaf_value),
            StateKey::Model(id) => self.models.get(id).map(Model::leaf_value),
            StateKey::Epoch(e) => self.epochs.get(e).map(ValidatorSet::leaf_value),
            StateKey::Offer(id) => self.offers.get(id).map(Offer::leaf_value),
            StateKey::Channel(id) => self.channels.get(id).map(Channel::leaf_value),
            StateKey::Proposal(id) => self.gov.proposals.get(id).map(Proposal::leaf_value),
            StateKey::Blocked(t) => self
                .gov
                .blocked
                .get(t)
                .map(|(b, r)| governance::Governance::block_leaf(*b, r)),
            StateKey::Delegations(a) => self
                .delegations
                .by_delegator
                .get(a)
                .map(delegation::Delegations::leaf_value),
        }
    }

    /// An inclusion proof of `key` against [`Self::root`], if the entry exists.
    pub fn prove(&self, key: &StateKey) -> Option<Proof> {
        let value = self.leaf_value(key)?;
        self.tree.prove(key, value)
    }

    /// Where every token is.
    pub fn supply(&self) -> SupplyReport {
        let mut r = SupplyReport {
            balances: 0,
            staked: 0,
            unbonding: 0,
            escrow: 0,
            channels: 0,
            bonds: 0,
            delegated: self.delegated_total(),
            emission_pool: self.economy.pool,
            emitted: self.economy.emitted,
            fees_paid: self.fees_paid,
            burned: self.burned,
            total: 0,
            genesis: self.genesis_supply,
        };
        for a in self.accounts.values() {
            r.balances += a.balance;
            r.staked += a.staked;
            r.unbonding += a.unbonding_total();
        }
        r.escrow = self.tasks.values().map(|t| t.escrow).sum();
        r.channels = self.channels.values().map(Channel::locked).sum();
        r.bonds = self.offers.values().map(|o| o.bond).sum::<u128>()
            + self.tasks.values().map(Task::locked).sum::<u128>()
            + self.proposal_deposits()
            + self.datasets.values().map(|d| d.bond).sum::<u128>();
        r.total = r.balances
            + r.staked
            + r.delegated
            + r.unbonding
            + r.escrow
            + r.channels
            + r.bonds
            + r.emission_pool
            + r.burned;
        r
    }

    /// Tokens burned so far (the unpaid part of slashed bonds).
    pub fn burned(&self) -> u128 {
        self.burned
    }

    /// Chain id, parameters, genesis supply, fees paid and tokens burned so far: the `Meta`
    /// leaf.
    fn meta_value(&self) -> Vec<u8> {
        let params = serde_json::to_vec(&self.params).expect("params serialize");
        let mut out = Vec::with_capacity(112);
        out.extend_from_slice(&Digest::hash(self.chain_id.as_bytes()).0);
        out.extend_from_slice(&Digest::hash(&params).0);
        out.extend_from_slice(&self.genesis_supply.to_be_bytes());
        out.extend_from_slice(&self.fees_paid.to_be_bytes());
        out.extend_from_slice(&self.burned.to_be_bytes());
        // Appended only once emissions ran, so a chain without them keeps its roots; the
        // length (112 or 176 bytes) tells the two forms apart.
        if !self.economy.is_empty() {
            out.extend_from_slice(&self.economy.meta_bytes());
        }
        out
    }

    /// Replaces the parameters (an executed proposal; already checked).
    pub(crate) fn set_params(&mut self, params: Params) {
        self.limits = params.limits();
        self.params = params;
        self.dirty.insert(StateKey::Meta);
    }

    /// Destroys `amount` (already taken out of every balance, bond and deposit).
    pub(crate) fn burn(&mut self, amount: u128) {
        self.burned = self
            .burned
            .checked_add(amount)
            .expect("burned tokens come out of the supply, which fits in u128");
        self.dirty.insert(StateKey::Meta);
    }

    /// Bring the tree up to date with every entry changed since the last commit.
    pub(crate) fn commit(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        let changes: Vec<(StateKey, Vec<u8>)> = dirty
            .into_iter()
            .map(|k| {
                let v = self.leaf_value(&k).expect("dirty keys exist");
                (k, v)
            })
            .collect();
        self.tree.update(&changes);
    }

    // ---- mutation helpers (each marks its key dirty) ----

    pub(crate) fn account_mut(&mut self, a: &Address) -> &mut Account {
        self.dirty.insert(StateKey::Account(*a));
        self.accounts.entry(*a).or_insert_with(|| Account::new(*a))
    }

    /// Spendable balance of the sender once the fee is reserved.
    pub(crate) fn spendable(&self, env: &Env) -> u128 {
        let balance = self.accounts.get(&env.sender).map_or(0, |a| a.balance);
        balance.saturating_sub(env.fee)
    }

    /// Err unless the sender can pay `amount` on top of the fee.
    pub(crate) fn require_funds(&self, env: &Env, amount: u128) -> Result<(), TxError> {
        let available = self.accounts.get(&env.sender).map_or(0, |a| a.balance);
        if amount > self.spendable(env) {
            return Err(TxError::InsufficientFunds {
                needed: amount.saturating_add(env.fee),
                available,
            });
        }
        Ok(())
    }

    pub(crate) fn debit(&mut self, a: &Address, amount: u128) {
        let acc = self.account_mut(a);
        acc.balance = acc
            .balance
            .checked_sub(amount)
            .expect("validated: balance covers the debit");
    }

    pub(crate) fn credit(&mut self, a: &Address, amount: u128) {
        let acc = self.account_mut(a);
        acc.balance = acc
            .balance
            .checked_add(amount)
            .expect("total supply fits in u128, checked at genesis");
    }

    /// Err unless the sender may start one more unbonding entry now (entry limit, release
    /// height in range).
    pub(crate) fn check_unbonding(&self, env: &Env) -> Result<(), TxError> {
        let max = self.params.unbonding_entries_max as usize;
        let entries = self
            .accounts
            .get(&env.sender)
            .map_or(0, |a| a.unbonding.len());
        TxError::limit("unbonding entries", entries + 1, max)?;
        env.height
            .checked_add(self.params.unbonding_delay_blocks)
            .ok_or_else(|| TxError::overflow("release height"))?;
        Ok(())
    }

    pub(crate) fn queue_unbonding(&mut self, release_height: u64, a: Address) {
        self.unbonding_queue
            .entry(release_height)
            .or_default()
            .insert(a);
    }

    pub(crate) fn next_id(&self, kind: EntityKind) -> Result<u64, TxError> {
        let last = match kind {
            EntityKind::Dataset => self.datasets.keys().next_back(),
            EntityKind::Task => self.tasks.keys().next_back(),
            EntityKind::Model => self.models.keys().next_back(),
            EntityKind::Offer => self.offers.keys().next_back(),
            EntityKind::Channel => self.channels.keys().next_back(),
            EntityKind::Proposal => self.gov.proposals.keys().next_back(),
        };
        last.copied()
            .unwrap_or(0)
            .checked_add(1)
            .ok_or_else(|| TxError::overflow("entity id"))
    }

    pub(crate) fn dataset_checked(&self, id: u64) -> Result<&Dataset, TxError> {
        self.datasets.get(&id).ok_or(TxError::UnknownId {
            kind: EntityKind::Dataset,
            id,
        })
    }

    pub(crate) fn task_checked(&self, id: u64) -> Result<&Task, TxError> {
        self.tasks.get(&id).ok_or(TxError::UnknownId {
            kind: EntityKind::Task,
            id,
        })
    }

    pub(crate) fn model_checked(&self, id: u64) -> Result<&Model, TxError> {
        self.models.get(&id).ok_or(TxError::UnknownId {
            kind: EntityKind::Model,
            id,
        })
    }

    pub(crate) fn dataset_mut(&mut self, id: u64) -> &mut Dataset {
        self.dirty.insert(StateKey::Dataset(id));
        self.datasets
            .get_mut(&id)
            .expect("validated: dataset exists")
    }

    pub(crate) fn task_mut(&mut self, id: u64) -> &mut Task {
        self.dirty.insert(StateKey::Task(id));
        self.tasks.get_mut(&id).expect("validated: task exists")
    }

    pub(crate) fn insert_dataset(&mut self, d: Dataset) {
        self.dirty.insert(StateKey::Dataset(d.id));
        self.commitments.entry(d.commitment).or_insert(d.id);
        self.datasets.insert(d.id, d);
    }

    pub(crate) fn insert_task(&mut self, t: Task) {
        self.dirty.insert(StateKey::Task(t.id));
        self.tasks.insert(t.id, t);
    }

    pub(crate) fn insert_model(&mut self, m: Model) {
        self.dirty.insert(StateKey::Model(m.id));
        self.models.insert(m.id, m);
    }

    /// Append `event` to the history of entity `kind`/`id` (which exists).
    pub(crate) fn record(&mut self, kind: EntityKind, id: u64, env: &Env, event: Event) {
        let entry = HistoryEntry {
            height: env.height,
            tx_id: env.tx_id,
            event,
        };
        let (root, history) = match kind {
            EntityKind::Dataset => {
                let d = self.dataset_mut(id);
                (&mut d.history_root, &mut d.history)
            }
            EntityKind::Task => {
                let t = self.task_mut(id);
                (&mut t.history_root, &mut t.history)
            }
            EntityKind::Model => {
                self.dirty.insert(StateKey::Model(id));
                let m = self.models.get_mut(&id).expect("validated: model exists");
                (&mut m.history_root, &mut m.history)
            }
            EntityKind::Offer => {
                let o = self.offer_mut(id);
                (&mut o.history_root, &mut o.history)
            }
            // A caller bug, not bad input: channels are short-lived and their events are in the
            // block receipts and their offer's history.
            EntityKind::Channel => unreachable!("channels keep no history"),
            EntityKind::Proposal => unreachable!("proposals keep their votes, not a history"),
        };
        *root = entry.chain(root);
        history.push(entry);
    }
}
