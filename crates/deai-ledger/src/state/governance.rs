//! Proposals and votes: who may change the protocol, how the stake decides, and what a decision
//! does.
//!
//! Life of a proposal (docs/governance.md states each rule with the attack it answers):
//! - `Propose` locks a deposit (at least `gov_deposit_min`) and snapshots the voting power: every
//!   account's bonded stake and every delegation as of the block before it. Votes are weighed by
//!   that snapshot, so stake bonded after a proposal starts (flash stake, bought votes) weighs
//!   nothing on it.
//! - `Vote` (yes, no, abstain, veto) from any account with power in the snapshot, at heights
//!   `start ..= end`; a later vote replaces an earlier one. A delegator that votes moves its
//!   delegated stake off its validator's weight and onto its own.
//! - At the start of block `end + 1` the ledger tallies: no quorum (less than `gov_quorum_bps` of
//!   the power voted) burns the deposit; a veto share above `gov_veto_bps` of the votes burns it;
//!   otherwise the deposit returns, and the proposal passes if yes is more than
//!   `gov_threshold_bps` of yes + no + veto.
//! - A passed proposal is executed by anyone's `Execute` from `end + 1 + gov_timelock_blocks`
//!   for `gov_execute_window_blocks`; the change is checked again then (an earlier change may
//!   have made it invalid) and a proposal never executed expires.
//!
//! Invariants: a proposal's deposit is locked (counted in the supply's bonds) exactly while it is
//! `Voting`; `ends` holds exactly the voting proposals by end height (derived, rebuilt on
//! restore); `blocked` only grows keys (an unblocked target keeps a leaf saying so).

use super::State;
use crate::codec::{read_str, str_size, write_str};
use crate::error::TxError;
use crate::event::Event;
use crate::params::BPS_SCALE;
use crate::proof::StateKey;
use crate::types::{Address, Digest};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Most parameter changes in one proposal.
pub const PARAM_CHANGES_MAX: usize = 16;

/// The account that holds the treasury: BLAKE3 of a domain string, so no one holds its key;
/// only an executed `TreasurySpend` proposal moves its funds.
pub fn treasury() -> Address {
    Address(Digest::hash(b"deai/treasury/v1").0)
}

/// A vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// For.
    Yes,
    /// Against.
    No,
    /// Counts toward quorum only.
    Abstain,
    /// Against, and the proposal is abusive: enough veto burns the deposit.
    Veto,
}

impl Choice {
    fn code(self) -> u8 {
        match self {
            Self::Yes => 0,
            Self::No => 1,
            Self::Abstain => 2,
            Self::Veto => 3,
        }
    }

    /// The vote as its JSON form writes it (`yes`, `no`, `abstain`, `veto`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Yes => "yes",
            Self::No => "no",
            Self::Abstain => "abstain",
            Self::Veto => "veto",
        }
    }

    /// Parses `yes`, `no`, `abstain` or `veto`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "yes" => Self::Yes,
            "no" => Self::No,
            "abstain" => Self::Abstain,
            "veto" => Self::Veto,
            _ => return None,
        })
    }
}

impl Write for Choice {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.code());
    }
}

impl EncodeSize for Choice {
    fn encode_size(&self) -> usize {
        1
    }
}

impl Read for Choice {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        match u8::read_cfg(buf, &())? {
            0 => Ok(Self::Yes),
            1 => Ok(Self::No),
            2 => Ok(Self::Abstain),
            3 => Ok(Self::Veto),
            other => Err(CodecError::InvalidEnum(other)),
        }
    }
}

/// What an ethics (or validator-set) decision applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum BlockTarget {
    /// A dataset: never selected for a round while blocked.
    Dataset(u64),
    /// A model: cannot be offered or named as a parent while blocked.
    Model(u64),
    /// An offer: no channel opens or tops up, and no voucher is claimed, while blocked.
    Offer(u64),
    /// A validator's account: never chosen for a set, and cannot declare a key, while barred.
    Validator(Address),
}

impl BlockTarget {
    fn code(&self) -> u8 {
        match self {
            Self::Dataset(_) => 0,
            Self::Model(_) => 1,
            Self::Offer(_) => 2,
            Self::Validator(_) => 3,
        }
    }

    /// The target's fixed-length key bytes: its code, then 32 bytes (the big-endian id,
    /// zero-padded on the left, or the address).
    pub fn key_bytes(&self) -> [u8; 33] {
        let mut out = [0u8; 33];
        out[0] = self.code();
        match self {
            Self::Dataset(id) | Self::Model(id) | Self::Offer(id) => {
                out[25..].copy_from_slice(&id.to_be_bytes());
            }
            Self::Validator(a) => out[1..].copy_from_slice(&a.0),
        }
        out
    }
}

impl BlockTarget {
    /// The target as one path segment: `dataset:3`, `model:1`, `offer:2`,
    /// `validator:<address>`.
    pub fn path(&self) -> String {
        match self {
            Self::Dataset(id) => format!("dataset:{id}"),
            Self::Model(id) => format!("model:{id}"),
            Self::Offer(id) => format!("offer:{id}"),
            Self::Validator(a) => format!("validator:{a}"),
        }
    }

    /// Parses [`Self::path`]'s form.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (kind, id) = s.split_once(':').ok_or_else(|| {
            format!("{s:?}: expected KIND:ID (dataset:3, model:1, offer:2, validator:ADDRESS)")
        })?;
        let number = || {
            id.parse::<u64>()
                .map_err(|_| format!("{s:?}: {id:?} is not a number"))
        };
        match kind {
            "dataset" => number().map(Self::Dataset),
            "model" => number().map(Self::Model),
            "offer" => number().map(Self::Offer),
            "validator" => id
                .parse()
                .map(Self::Validator)
                .map_err(|e| format!("{s:?}: not an address: {e}")),
            other => Err(format!(
                "{s:?}: unknown kind {other:?}; use dataset, model, offer or validator"
            )),
        }
    }
}

impl core::fmt::Display for BlockTarget {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Dataset(id) => write!(f, "dataset {id}"),
            Self::Model(id) => write!(f, "model {id}"),
            Self::Offer(id) => write!(f, "offer {id}"),
            Self::Validator(a) => write!(f, "validator {a}"),
        }
    }
}

impl Write for BlockTarget {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.code());
        match self {
            Self::Dataset(id) | Self::Model(id) | Self::Offer(id) => id.write(buf),
            Self::Validator(a) => a.write(buf),
        }
    }
}

impl EncodeSize for BlockTarget {
    fn encode_size(&self) -> usize {
        1 + match self {
            Self::Validator(_) => 32,
            _ => 8,
        }
    }
}

impl Read for BlockTarget {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        match u8::read_cfg(buf, &())? {
            0 => Ok(Self::Dataset(u64::read_cfg(buf, &())?)),
            1 => Ok(Self::Model(u64::read_cfg(buf, &())?)),
            2 => Ok(Self::Offer(u64::read_cfg(buf, &())?)),
            3 => Ok(Self::Validator(Address::read_cfg(buf, &())?)),
            other => Err(CodecError::InvalidEnum(other)),
        }
    }
}

/// One parameter set to a new value (its genesis-file name; the value a canonical decimal).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamSet {
    /// The parameter.
    pub name: String,
    /// Its new value.
    pub value: String,
}

/// What a proposal does when executed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProposalKind {
    /// Set protocol parameters (all or none: each is checked, then the whole set).
    ParamChange {
        /// The changes, applied in order.
        changes: Vec<ParamSet>,
    },
    /// Block or unblock a dataset, model or offer, or bar or unbar a validator.
    Block {
        /// What it applies to.
        target: BlockTarget,
        /// `true` blocks, `false` lifts a block.
        blocked: bool,
        /// Hash of the published reasons.
        reason: Digest,
    },
    /// Pay from the treasury.
    TreasurySpend {
        /// The payee.
        to: Address,
        /// Amount, base units.
        #[serde(with = "crate::types::amount")]
        amount: u128,
    },
}

impl ProposalKind {
    /// A short name of the kind.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ParamChange { .. } => "param_change",
            Self::Block { .. } => "block",
            Self::TreasurySpend { .. } => "treasury_spend",
        }
    }

    /// Checks that need only the parameters: sizes, names and every change against the
    /// current parameter set (`params`).
    pub(crate) fn check(&self, params: &crate::Params) -> Result<(), TxError> {
        match self {
            Self::ParamChange { changes } => {
                if changes.is_empty() {
                    return Err(TxError::InvalidField {
                        field: "changes".into(),
                        reason: "a parameter change changes at least one parameter".into(),
                    });
                }
                TxError::limit("changes", changes.len(), PARAM_CHANGES_MAX)?;
                apply_changes(params, changes).map(|_| ())
            }
            Self::Block { .. } => Ok(()),
            Self::TreasurySpend { amount, .. } => TxError::positive("amount", *amount),
        }
    }
}

/// `params` with every change applied in order, each checked by [`crate::Params::with_change`].
pub(crate) fn apply_changes(
    params: &crate::Params,
    changes: &[ParamSet],
) -> Result<crate::Params, TxError> {
    let mut seen = BTreeSet::new();
    let mut out = params.clone();
    for c in changes {
        if !seen.insert(c.name.as_str()) {
            return Err(TxError::InvalidField {
                field: format!("changes.{}", c.name),
                reason: "named twice".into(),
            });
        }
        out = out
            .with_change(&c.name, &c.value)
            .map_err(|reason| TxError::InvalidField {
                field: format!("changes.{}", c.name),
                reason,
            })?;
    }
    Ok(out)
}

impl Write for ProposalKind {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            Self::ParamChange { changes } => {
                buf.put_u8(0);
                changes.len().write(buf);
                for c in changes {
                    write_str(&c.name, buf);
                    write_str(&c.value, buf);
                }
            }
            Self::Block {
                target,
                blocked,
                reason,
            } => {
                buf.put_u8(1);
                target.write(buf);
                blocked.write(buf);
                reason.write(buf);
            }
            Self::TreasurySpend { to, amount } => {
                buf.put_u8(2);
                to.write(buf);
                amount.write(buf);
            }
        }
    }
}

impl EncodeSize for ProposalKind {
    fn encode_size(&self) -> usize {
        1 + match self {
            Self::ParamChange { changes } => {
                changes.len().encode_size()
                    + changes
                        .iter()
                        .map(|c| str_size(&c.name) + str_size(&c.value))
                        .sum::<usize>()
            }
            Self::Block { target, .. } => target.encode_size() + 1 + 32,
            Self::TreasurySpend { .. } => 32 + 16,
        }
    }
}

impl Read for ProposalKind {
    type Cfg = usize;
    /// `cfg` is the longest string (`string_bytes_max`).
    fn read_cfg(buf: &mut impl Buf, max: &usize) -> Result<Self, CodecError> {
        match u8::read_cfg(buf, &())? {
            0 => {
                let n = usize::read_cfg(buf, &(..=PARAM_CHANGES_MAX).into())?;
                let mut changes = Vec::with_capacity(n);
                for _ in 0..n {
                    changes.push(ParamSet {
                        name: read_str(buf, *max)?,
                        value: read_str(buf, *max)?,
                    });
                }
                Ok(Self::ParamChange { changes })
            }
            1 => Ok(Self::Block {
                target: BlockTarget::read_cfg(buf, &())?,
                blocked: bool::read_cfg(buf, &())?,
                reason: Digest::read_cfg(buf, &())?,
            }),
            2 => Ok(Self::TreasurySpend {
                to: Address::read_cfg(buf, &())?,
                amount: u128::read_cfg(buf, &())?,
            }),
            other => Err(CodecError::InvalidEnum(other)),
        }
    }
}

/// Where a proposal stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    /// Open for votes until its end height.
    Voting,
    /// Quorum, threshold and no veto: executable after the timelock. Deposit returned.
    Passed,
    /// Quorum but not enough yes. Deposit returned.
    Rejected,
    /// More veto than `gov_veto_bps`. Deposit burned.
    Vetoed,
    /// Too little of the power voted. Deposit burned.
    NoQuorum,
    /// Passed and executed.
    Executed,
}

impl ProposalStatus {
    /// Every status, in life order.
    pub const ALL: [Self; 6] = [
        Self::Voting,
        Self::Passed,
        Self::Rejected,
        Self::Vetoed,
        Self::NoQuorum,
        Self::Executed,
    ];

    /// The status as its JSON form writes it (`no_quorum`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Voting => "voting",
            Self::Passed => "passed",
            Self::Rejected => "rejected",
            Self::Vetoed => "vetoed",
            Self::NoQuorum => "no_quorum",
            Self::Executed => "executed",
        }
    }

    /// Parses [`Self::name`]'s form.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.name() == s)
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Voting => 0,
            Self::Passed => 1,
            Self::Rejected => 2,
            Self::Vetoed => 3,
            Self::NoQuorum => 4,
            Self::Executed => 5,
        }
    }
}

/// The weights a vote ended with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Yes weight.
    #[serde(with = "crate::types::amount")]
    pub yes: u128,
    /// No weight.
    #[serde(with = "crate::types::amount")]
    pub no: u128,
    /// Abstain weight.
    #[serde(with = "crate::types::amount")]
    pub abstain: u128,
    /// Veto weight.
    #[serde(with = "crate::types::amount")]
    pub veto: u128,
    /// All voting power in the snapshot.
    #[serde(with = "crate::types::amount")]
    pub power: u128,
}

impl Tally {
    /// The weight that voted (abstain included).
    pub fn voted(&self) -> u128 {
        self.yes + self.no + self.abstain + self.veto
    }

    /// What these weights decide under the given rules (basis points).
    pub fn outcome(&self, quorum_bps: u32, threshold_bps: u32, veto_bps: u32) -> ProposalStatus {
        let bps = u128::from(BPS_SCALE);
        let voted = self.voted();
        if self.power == 0 || voted * bps < u128::from(quorum_bps) * self.power {
            return ProposalStatus::NoQuorum;
        }
        if self.veto * bps > u128::from(veto_bps) * voted {
            return ProposalStatus::Vetoed;
        }
        let deciding = self.yes + self.no + self.veto;
        if deciding > 0 && self.yes * bps > u128::from(threshold_bps) * deciding {
            ProposalStatus::Passed
        } else {
            ProposalStatus::Rejected
        }
    }
}

/// One delegation in a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegationEntry {
    /// Who delegated.
    pub delegator: Address,
    /// To whom.
    pub validator: Address,
    /// How much.
    #[serde(with = "crate::types::amount")]
    pub amount: u128,
}

/// Voting power frozen when a proposal started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerSnapshot {
    /// Each account's own bonded stake (accounts with some), by address.
    #[serde(with = "crate::types::allocations")]
    pub stake: Vec<(Address, u128)>,
    /// Every delegation, by delegator then validator.
    pub delegations: Vec<DelegationEntry>,
}

impl PowerSnapshot {
    /// All power: own stake plus delegations.
    pub fn total(&self) -> u128 {
        self.stake.iter().map(|(_, s)| s).sum::<u128>()
            + self.delegations.iter().map(|d| d.amount).sum::<u128>()
    }

    /// Whether `a` holds any power (own stake, a delegation, or stake delegated to it).
    pub fn has_power(&self, a: &Address) -> bool {
        self.stake.binary_search_by(|(x, _)| x.cmp(a)).is_ok()
            || self
                .delegations
                .iter()
                .any(|d| d.delegator == *a || d.validator == *a)
    }

    /// Each voter's weight given who voted: own stake, plus the delegations of delegators that
    /// did not vote themselves (to a validator), plus its own delegations if it voted (as a
    /// delegator).
    pub fn weights(&self, votes: &BTreeMap<Address, Choice>) -> BTreeMap<Address, u128> {
        let mut w: BTreeMap<Address, u128> = BTreeMap::new();
        for (a, s) in &self.stake {
            if votes.contains_key(a) {
                *w.entry(*a).or_default() += s;
            }
        }
        for d in &self.delegations {
            let holder = if votes.contains_key(&d.delegator) {
                d.delegator
            } else {
                d.validator
            };
            if votes.contains_key(&holder) {
                *w.entry(holder).or_default() += d.amount;
            }
        }
        w
    }

    fn digest(&self) -> Digest {
        let mut out = Vec::with_capacity(8 + self.stake.len() * 48 + self.delegations.len() * 80);
        self.stake.len().write(&mut out);
        for (a, s) in &self.stake {
            a.write(&mut out);
            s.write(&mut out);
        }
        self.delegations.len().write(&mut out);
        for d in &self.delegations {
            d.delegator.write(&mut out);
            d.validator.write(&mut out);
            d.amount.write(&mut out);
        }
        Digest::hash(&out)
    }
}

/// A governance proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Its id (dense from 1).
    pub id: u64,
    /// Who proposed it and locked the deposit.
    pub proposer: Address,
    /// What it does.
    pub kind: ProposalKind,
    /// Hash of the published description.
    pub description: Digest,
    /// The locked deposit.
    #[serde(with = "crate::types::amount")]
    pub deposit: u128,
    /// Height of the block that included the `Propose` (first height votes count).
    pub start_height: u64,
    /// Last height votes count.
    pub end_height: u64,
    /// Voting power at `start_height − 1`.
    pub power: PowerSnapshot,
    /// Each voter's current vote.
    pub votes: BTreeMap<Address, Choice>,
    /// Where it stands.
    pub status: ProposalStatus,
    /// The final weights, from the tally at `end_height + 1`.
    pub tally: Option<Tally>,
    /// First height an `Execute` may land (set when it passes).
    pub executable_from: Option<u64>,
    /// Last height an `Execute` may land (set when it passes).
    pub executable_until: Option<u64>,
    /// Height it was executed at.
    pub executed_at: Option<u64>,
}

impl Proposal {
    /// The weights as they stand now (final once the vote ended).
    pub fn current_tally(&self) -> Tally {
        if let Some(t) = self.tally {
            return t;
        }
        let weights = self.power.weights(&self.votes);
        let mut t = Tally {
            power: self.power.total(),
            ..Tally::default()
        };
        for (voter, choice) in &self.votes {
            let w = weights.get(voter).copied().unwrap_or(0);
            match choice {
                Choice::Yes => t.yes += w,
                Choice::No => t.no += w,
                Choice::Abstain => t.abstain += w,
                Choice::Veto => t.veto += w,
            }
        }
        t
    }

    /// The committed value bytes: every field, the snapshot and votes by their hashes.
    pub fn leaf_value(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.id.write(&mut out);
        self.proposer.write(&mut out);
        self.kind.write(&mut out);
        self.description.write(&mut out);
        self.deposit.write(&mut out);
        self.start_height.write(&mut out);
        self.end_height.write(&mut out);
        self.power.digest().write(&mut out);
        let mut votes = Vec::with_capacity(self.votes.len() * 33);
        for (a, c) in &self.votes {
            a.write(&mut votes);
            c.write(&mut votes);
        }
        Digest::hash(&votes).write(&mut out);
        out.put_u8(self.status.code());
        let tally = self.tally.unwrap_or_default();
        for v in [tally.yes, tally.no, tally.abstain, tally.veto, tally.power] {
            v.write(&mut out);
        }
        for h in [
            self.executable_from,
            self.executable_until,
            self.executed_at,
        ] {
            h.unwrap_or(0).write(&mut out);
        }
        out
    }
}

/// A block decision as its leaf commits to it (what `GET /v1/proofs/blocked/...` answers).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDecision {
    /// What it applies to.
    pub target: BlockTarget,
    /// Blocked now (a lifted block keeps its leaf with `false`).
    pub blocked: bool,
    /// Hash of the published reasons of the last decision.
    pub reason: Digest,
}

impl BlockDecision {
    /// The committed value bytes.
    pub fn leaf_value(&self) -> Vec<u8> {
        Governance::block_leaf(self.blocked, &self.reason)
    }
}

/// The governance part of the state.
#[derive(Clone, Debug, Default)]
pub(crate) struct Governance {
    pub(crate) proposals: BTreeMap<u64, Proposal>,
    /// target → (blocked, reason); a lifted block keeps its leaf with `false`.
    pub(crate) blocked: BTreeMap<BlockTarget, (bool, Digest)>,
    /// end height → proposals voting until then (derived).
    pub(crate) ends: BTreeMap<u64, BTreeSet<u64>>,
}

impl Governance {
    pub(crate) fn block_leaf(blocked: bool, reason: &Digest) -> Vec<u8> {
        let mut out = Vec::with_capacity(33);
        out.put_u8(u8::from(blocked));
        reason.write(&mut out);
        out
    }
}

impl State {
    /// A proposal by id.
    pub fn proposal(&self, id: u64) -> Option<&Proposal> {
        self.gov.proposals.get(&id)
    }

    pub(crate) fn proposal_checked(&self, id: u64) -> Result<&Proposal, TxError> {
        self.proposal(id).ok_or(TxError::UnknownId {
            kind: crate::error::EntityKind::Proposal,
            id,
        })
    }

    /// Every proposal by id.
    pub fn proposals(&self) -> impl Iterator<Item = &Proposal> {
        self.gov.proposals.values()
    }

    /// Whether `target` is blocked now, and why.
    pub fn blocked(&self, target: &BlockTarget) -> Option<Digest> {
        match self.gov.blocked.get(target) {
            Some((true, reason)) => Some(*reason),
            _ => None,
        }
    }

    /// Every target a decision ever applied to, with whether it is blocked now and why.
    pub fn block_decisions(&self) -> impl Iterator<Item = BlockDecision> + '_ {
        self.gov.blocked.iter().map(|(t, (b, r))| BlockDecision {
            target: *t,
            blocked: *b,
            reason: *r,
        })
    }

    /// The decision on `target`, if one was ever executed.
    pub fn block_decision(&self, target: &BlockTarget) -> Option<BlockDecision> {
        self.gov.blocked.get(target).map(|(b, r)| BlockDecision {
            target: *target,
            blocked: *b,
            reason: *r,
        })
    }

    /// Err if `target` is blocked.
    pub(crate) fn require_unblocked(&self, target: BlockTarget) -> Result<(), TxError> {
        match self.blocked(&target) {
            Some(reason) => Err(TxError::Blocked {
                target: target.to_string(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// The voting power as of now: every account's own stake and every delegation.
    pub(crate) fn power_snapshot(&self) -> PowerSnapshot {
        PowerSnapshot {
            stake: self
                .accounts
                .values()
                .filter(|a| a.staked > 0)
                .map(|a| (a.address, a.staked))
                .collect(),
            delegations: self.delegation_entries(),
        }
    }

    pub(crate) fn proposal_mut(&mut self, id: u64) -> &mut Proposal {
        self.dirty.insert(StateKey::Proposal(id));
        self.gov
            .proposals
            .get_mut(&id)
            .expect("validated: proposal exists")
    }

    pub(crate) fn insert_proposal(&mut self, p: Proposal) {
        self.dirty.insert(StateKey::Proposal(p.id));
        self.gov.ends.entry(p.end_height).or_default().insert(p.id);
        self.gov.proposals.insert(p.id, p);
    }

    pub(crate) fn set_blocked(&mut self, target: BlockTarget, blocked: bool, reason: Digest) {
        self.dirty.insert(StateKey::Blocked(target));
        self.gov.blocked.insert(target, (blocked, reason));
    }

    /// Tallies every proposal whose vote ended before `height` (called at the start of each
    /// block): decides it, and returns or burns its deposit.
    pub(crate) fn tally_due(&mut self, height: u64) -> Vec<Event> {
        let later = self.gov.ends.split_off(&height);
        let due = std::mem::replace(&mut self.gov.ends, later);
        let mut events = Vec::new();
        for id in due.into_values().flatten() {
            let p = &self.params;
            let (quorum, threshold, veto) = (p.gov_quorum_bps, p.gov_threshold_bps, p.gov_veto_bps);
            let (timelock, window) = (p.gov_timelock_blocks, p.gov_execute_window_blocks);
            let proposal = self.proposal_mut(id);
            let tally = proposal.current_tally();
            let status = tally.outcome(quorum, threshold, veto);
            proposal.tally = Some(tally);
            proposal.status = status;
            let (proposer, deposit) = (proposal.proposer, proposal.deposit);
            if status == ProposalStatus::Passed {
                let from = height.saturating_add(timelock);
                proposal.executable_from = Some(from);
                proposal.executable_until = Some(from.saturating_add(window));
            }
            let returned = matches!(status, ProposalStatus::Passed | ProposalStatus::Rejected);
            if returned {
                self.credit(&proposer, deposit);
            } else {
                self.burn(deposit);
            }
            events.push(Event::ProposalTallied {
                id,
                status,
                yes: tally.yes,
                no: tally.no,
                abstain: tally.abstain,
                veto: tally.veto,
                power: tally.power,
                deposit_returned: returned,
            });
        }
        events
    }

    /// Sum of the deposits of proposals still voting.
    pub(crate) fn proposal_deposits(&self) -> u128 {
        self.gov
            .proposals
            .values()
            .filter(|p| p.status == ProposalStatus::Voting)
            .map(|p| p.deposit)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(yes: u128, no: u128, abstain: u128, veto: u128, power: u128) -> ProposalStatus {
        Tally {
            yes,
            no,
            abstain,
            veto,
            power,
        }
        .outcome(3_340, 5_000, 3_340)
    }

    #[test]
    fn names_are_the_json_forms() {
        for st in ProposalStatus::ALL {
            assert_eq!(serde_json::to_value(st).expect("json"), st.name());
            assert_eq!(ProposalStatus::parse(st.name()), Some(st));
        }
        for c in [Choice::Yes, Choice::No, Choice::Abstain, Choice::Veto] {
            assert_eq!(serde_json::to_value(c).expect("json"), c.name());
            assert_eq!(Choice::parse(c.name()), Some(c));
        }
    }

    #[test]
    fn the_outcome_follows_quorum_veto_and_threshold_in_that_order() {
        assert_eq!(tally(0, 0, 0, 0, 0), ProposalStatus::NoQuorum);
        assert_eq!(tally(33, 0, 0, 0, 100), ProposalStatus::NoQuorum);
        assert_eq!(tally(34, 0, 0, 0, 100), ProposalStatus::Passed);
        assert_eq!(tally(0, 0, 34, 0, 100), ProposalStatus::Rejected);
        assert_eq!(tally(50, 50, 0, 0, 100), ProposalStatus::Rejected);
        assert_eq!(tally(51, 49, 0, 0, 100), ProposalStatus::Passed);
        assert_eq!(tally(60, 0, 0, 40, 100), ProposalStatus::Vetoed);
        assert_eq!(tally(67, 0, 0, 33, 100), ProposalStatus::Passed);
    }

    #[test]
    fn a_delegator_that_votes_takes_its_stake_off_its_validators_weight() {
        let (v, d, e) = (Address([1; 32]), Address([2; 32]), Address([3; 32]));
        let snap = PowerSnapshot {
            stake: vec![(v, 100)],
            delegations: vec![
                DelegationEntry {
                    delegator: d,
                    validator: v,
                    amount: 30,
                },
                DelegationEntry {
                    delegator: e,
                    validator: v,
                    amount: 20,
                },
            ],
        };
        assert_eq!(snap.total(), 150);
        let only_v = BTreeMap::from([(v, Choice::Yes)]);
        assert_eq!(snap.weights(&only_v)[&v], 150);
        let both = BTreeMap::from([(v, Choice::Yes), (d, Choice::No)]);
        let w = snap.weights(&both);
        assert_eq!((w[&v], w[&d]), (120, 30));
        let only_d = BTreeMap::from([(d, Choice::No)]);
        assert_eq!(snap.weights(&only_d).values().sum::<u128>(), 30);
        assert!(snap.has_power(&e) && !snap.has_power(&Address([9; 32])));
    }
}
