//! Coordinator accountability: the bond a coordinator locks, challenges against the claims of
//! its `RoundResult`s, the validators' votes on them, and the settlement of a closed task once
//! nobody can challenge it any more.
//!
//! The ledger does not re-check a claim itself: that needs the round's blobs (masked updates,
//! unmasking record, aggregate, models, validation data), which live in the blob stores, not
//! in the state, and a replica's state transition may not depend on what its blob store holds.
//! Each validator re-checks the one challenged claim off the state machine (bounded work: one
//! group, one strategy step or one group's score) and votes; the ledger counts stake.
//!
//! Rules:
//! - a coordinator locks [`crate::Params::coordinator_bond`] with every `RoundOpen`: each round
//!   is backed by its own bond (as each assertion of an optimistic oracle is), so a coordinator
//!   that lies in several rounds loses a bond for each lie, however late the challenges come.
//!   The bond answers for the round its coordinator opened (and so reported: the coordinator
//!   cannot change while a round is open). A genesis with a bond of 0 records one entry per
//!   coordinator instead;
//! - any completed round may be challenged (one pending challenge per round and claim) from its
//!   result until the task settles; the challenger locks [`crate::Params::challenge_deposit`];
//! - the validators of the epoch the challenge was filed in vote once each; more than two thirds
//!   of that set's stake on one side decides it at once;
//! - **upheld**: the round is invalid (its scores earn nothing, its model is not the task's), the
//!   bond that answers for it is slashed whole: `challenge_reward_bps` of it to the challenger,
//!   the rest into the task's escrow; the deposit returns;
//! - **rejected**: the deposit goes to the coordinator the challenge accused;
//! - **undecided** (no side past two thirds when `challenge_vote_blocks` have passed): the
//!   deposit returns, nothing else happens;
//! - a `TaskClose` opens the window: from `close height + challenge_window_blocks`, once no
//!   challenge is pending, the task settles at the start of a block: rewards from the valid
//!   rounds' scores, the refund, the final model (of the last valid completed round), and the
//!   bonds back to their coordinators. With a window of 0 and nothing pending, `TaskClose`
//!   settles at once.
//!
//! Invariant: `State::accountable` holds exactly the tasks that are settling or have a pending
//! challenge (derived; a restored snapshot rebuilds it).

use super::{Metric, Model, State, Task, TaskStatus};
use crate::codec::write_list;
use crate::error::EntityKind;
use crate::event::Event;
use crate::tx::Env;
use crate::types::{Address, Digest, TxId};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// What a `RoundResult` claimed that a challenge disputes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Claim {
    /// The unmasked sum of one scoring group (index in the round's plan).
    GroupSum {
        /// The group.
        group: u32,
    },
    /// The aggregate (the group sums together).
    Aggregate,
    /// The new global model (the strategy step from the previous model and the aggregate).
    Model,
    /// The score of one group.
    Score {
        /// The group.
        group: u32,
    },
}

impl Claim {
    /// A short name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::GroupSum { .. } => "group_sum",
            Self::Aggregate => "aggregate",
            Self::Model => "model",
            Self::Score { .. } => "score",
        }
    }

    /// The group it names, if any.
    pub fn group(&self) -> Option<u32> {
        match *self {
            Self::GroupSum { group } | Self::Score { group } => Some(group),
            Self::Aggregate | Self::Model => None,
        }
    }
}

impl Write for Claim {
    fn write(&self, buf: &mut impl BufMut) {
        match *self {
            Self::GroupSum { group } => {
                buf.put_u8(0);
                group.write(buf);
            }
            Self::Aggregate => buf.put_u8(1),
            Self::Model => buf.put_u8(2),
            Self::Score { group } => {
                buf.put_u8(3);
                group.write(buf);
            }
        }
    }
}

impl EncodeSize for Claim {
    fn encode_size(&self) -> usize {
        1 + if self.group().is_some() { 4 } else { 0 }
    }
}

impl Read for Claim {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        match u8::read_cfg(buf, &())? {
            0 => Ok(Self::GroupSum {
                group: u32::read_cfg(buf, &())?,
            }),
            1 => Ok(Self::Aggregate),
            2 => Ok(Self::Model),
            3 => Ok(Self::Score {
                group: u32::read_cfg(buf, &())?,
            }),
            other => Err(CodecError::InvalidEnum(other)),
        }
    }
}

/// How a challenge ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The claim was wrong (or its blobs could not be fetched): the round is invalid.
    Upheld,
    /// The claim was right: the deposit went to the coordinator.
    Rejected,
    /// The validators did not decide in time: the deposit returned.
    Undecided,
}

impl Verdict {
    fn code(self) -> u8 {
        match self {
            Self::Upheld => 0,
            Self::Rejected => 1,
            Self::Undecided => 2,
        }
    }
}

impl Write for Verdict {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.code());
    }
}

impl EncodeSize for Verdict {
    fn encode_size(&self) -> usize {
        1
    }
}

/// One validator's vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The validator's account.
    pub validator: Address,
    /// Whether it found the claim wrong.
    pub upheld: bool,
}

/// A challenge against one claim of one round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// Its number within the task (from 1).
    pub id: u32,
    /// The round challenged.
    pub round: u32,
    /// The claim.
    pub claim: Claim,
    /// Who filed it.
    pub challenger: Address,
    /// The coordinator whose bond answers for the round.
    pub accused: Address,
    /// Locked from the challenger.
    #[serde(with = "crate::types::amount")]
    pub deposit: u128,
    /// Height of the `RoundChallenge`.
    pub filed_height: u64,
    /// Last height a vote is accepted.
    pub vote_deadline: u64,
    /// The epoch whose validator set votes.
    pub epoch: u64,
    /// Votes so far, in arrival order.
    pub votes: Vec<Vote>,
    /// `None` while pending.
    pub verdict: Option<Verdict>,
}

impl Challenge {
    /// Whether it still waits for votes.
    pub fn is_pending(&self) -> bool {
        self.verdict.is_none()
    }
}

impl Write for Challenge {
    fn write(&self, buf: &mut impl BufMut) {
        self.id.write(buf);
        self.round.write(buf);
        self.claim.write(buf);
        self.challenger.write(buf);
        self.accused.write(buf);
        self.deposit.write(buf);
        self.filed_height.write(buf);
        self.vote_deadline.write(buf);
        self.epoch.write(buf);
        (self.votes.len() as u32).write(buf);
        for v in &self.votes {
            v.validator.write(buf);
            buf.put_u8(u8::from(v.upheld));
        }
        self.verdict.write(buf);
    }
}

impl EncodeSize for Challenge {
    fn encode_size(&self) -> usize {
        4 + 4
            + self.claim.encode_size()
            + 32
            + 32
            + 16
            + 8
            + 8
            + 8
            + 4
            + 33 * self.votes.len()
            + self.verdict.encode_size()
    }
}

/// A coordinator's bond in one task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinatorBond {
    /// The coordinator.
    pub coordinator: Address,
    /// Still locked (0 once slashed or released).
    #[serde(with = "crate::types::amount")]
    pub amount: u128,
    /// The rounds it answers for (the ones its coordinator opened while it was locked).
    pub rounds: Vec<u32>,
}

impl Write for CoordinatorBond {
    fn write(&self, buf: &mut impl BufMut) {
        self.coordinator.write(buf);
        self.amount.write(buf);
        write_list(&self.rounds, buf);
    }
}

impl EncodeSize for CoordinatorBond {
    fn encode_size(&self) -> usize {
        32 + 16 + crate::codec::list_size(&self.rounds)
    }
}

/// What a `TaskClose` fixed for the settlement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closing {
    /// Height of the `TaskClose`.
    pub closed_height: u64,
    /// First height the task may settle at (`closed_height + challenge_window_blocks`).
    pub settle_from: u64,
    /// The model the task trained from, if any.
    pub parent: Option<u64>,
    /// Final metrics in fixed point.
    pub metrics: Vec<Metric>,
    /// The `TaskClose` transaction (what the settlement's events name).
    pub tx_id: TxId,
}

impl Write for Closing {
    fn write(&self, buf: &mut impl BufMut) {
        self.closed_height.write(buf);
        self.settle_from.write(buf);
        self.parent.write(buf);
        write_list(&self.metrics, buf);
        self.tx_id.write(buf);
    }
}

impl EncodeSize for Closing {
    fn encode_size(&self) -> usize {
        16 + self.parent.encode_size() + crate::codec::list_size(&self.metrics) + 32
    }
}

impl Task {
    /// Whether an upheld challenge made round `number` invalid.
    pub fn round_invalid(&self, number: u32) -> bool {
        self.challenges
            .iter()
            .any(|c| c.round == number && c.verdict == Some(Verdict::Upheld))
    }

    /// The last completed round no challenge invalidated, if any: its model is the task's.
    pub fn last_valid_round(&self) -> Option<&super::Round> {
        self.round_log
            .iter()
            .rev()
            .find(|r| r.outcome.is_some() && !self.round_invalid(r.number))
    }

    /// Whether any challenge waits for votes.
    pub fn has_pending_challenge(&self) -> bool {
        self.challenges.iter().any(Challenge::is_pending)
    }

    /// The coordinator whose bond answers for round `number`.
    pub fn answerable_for(&self, number: u32) -> Option<Address> {
        self.bonds
            .iter()
            .find(|b| b.rounds.contains(&number))
            .map(|b| b.coordinator)
    }

    /// Tokens the task locks besides its escrow: live bonds and pending deposits.
    pub fn locked(&self) -> u128 {
        let bonds: u128 = self.bonds.iter().map(|b| b.amount).sum();
        let deposits: u128 = self
            .challenges
            .iter()
            .filter(|c| c.is_pending())
            .map(|c| c.deposit)
            .sum();
        bonds + deposits
    }

    /// Whether its rounds may still be challenged at `height`.
    pub fn challengeable(&self, height: u64) -> bool {
        match self.status {
            TaskStatus::Open => true,
            TaskStatus::Settling => self
                .closing
                .as_ref()
                .is_some_and(|c| height < c.settle_from),
            TaskStatus::Closed | TaskStatus::Cancelled => false,
        }
    }
}

impl State {
    /// Locks the coordinator bond of `coordinator` for `round` of `task`. The caller checked the
    /// funds ([`Self::bond_needed`]).
    pub(crate) fn bond_for_round(
        &mut self,
        task: u64,
        coordinator: Address,
        round: u32,
        env: &Env,
    ) -> Vec<Event> {
        let amount = self.params.coordinator_bond;
        let t = self.task_mut(task);
        // A genesis without bonds keeps one entry per coordinator instead of one per round.
        if amount == 0 {
            match t.bonds.iter_mut().find(|b| b.coordinator == coordinator) {
                Some(b) => b.rounds.push(round),
                None => t.bonds.push(CoordinatorBond {
                    coordinator,
                    amount,
                    rounds: vec![round],
                }),
            }
            return Vec::new();
        }
        t.bonds.push(CoordinatorBond {
            coordinator,
            amount,
            rounds: vec![round],
        });
        self.debit(&coordinator, amount);
        let event = Event::CoordinatorBonded {
            task,
            coordinator,
            amount,
        };
        self.record(EntityKind::Task, task, env, event.clone());
        vec![event]
    }

    /// What a coordinator must lock to open a round: one bond per round.
    pub(crate) fn bond_needed(&self) -> u128 {
        self.params.coordinator_bond
    }

    /// Adds a validator's vote and decides the challenge if one side now holds more than two
    /// thirds of the voting set's stake.
    pub(crate) fn vote(&mut self, task: u64, challenge: u32, vote: Vote, env: &Env) -> Vec<Event> {
        let index = challenge as usize - 1;
        let event = Event::ChallengeVoted {
            task,
            challenge,
            validator: vote.validator,
            upheld: vote.upheld,
        };
        self.record(EntityKind::Task, task, env, event.clone());
        let mut events = vec![event];
        let c = {
            let t = self.task_mut(task);
            t.challenges[index].votes.push(vote);
            t.challenges[index].clone()
        };
        let Some(set) = self.validator_set(c.epoch) else {
            return events;
        };
        let total: u128 = set.members.iter().map(|m| m.stake).sum();
        let stake_of = |upheld: bool| -> u128 {
            c.votes
                .iter()
                .filter(|v| v.upheld == upheld)
                .filter_map(|v| set.members.iter().find(|m| m.account == v.validator))
                .map(|m| m.stake)
                .sum()
        };
        let decided = |side: u128| side.saturating_mul(3) > total.saturating_mul(2);
        let verdict = if decided(stake_of(true)) {
            Some(Verdict::Upheld)
        } else if decided(stake_of(false)) {
            Some(Verdict::Rejected)
        } else {
            None
        };
        if let Some(v) = verdict {
            events.extend(self.resolve(task, challenge, v, env));
        }
        events
    }

    /// Ends a pending challenge with `verdict` and moves what it moves.
    fn resolve(&mut self, task: u64, challenge: u32, verdict: Verdict, env: &Env) -> Vec<Event> {
        let index = challenge as usize - 1;
        let c = {
            let t = self.task_mut(task);
            t.challenges[index].verdict = Some(verdict);
            t.challenges[index].clone()
        };
        let (mut slashed, mut reward, mut to_escrow) = (0u128, 0u128, 0u128);
        let mut extra = Vec::new();
        match verdict {
            Verdict::Upheld => {
                self.credit(&c.challenger, c.deposit);
                let t = self.task_mut(task);
                if let Some(b) = t.bonds.iter_mut().find(|b| b.rounds.contains(&c.round)) {
                    slashed = std::mem::take(&mut b.amount);
                }
                reward = super::share(
                    slashed,
                    u128::from(self.params.challenge_reward_bps),
                    u128::from(crate::params::BPS_SCALE),
                )
                .unwrap_or(0);
                to_escrow = slashed - reward;
                self.task_mut(task).escrow += to_escrow;
                self.credit(&c.challenger, reward);
                let minted = self.params.challenge_emission_reward;
                if let Some(e) = self.mint_reward(
                    &c.challenger,
                    minted,
                    crate::event::EmissionRole::Challenger,
                ) {
                    self.record(EntityKind::Task, task, env, e.clone());
                    extra.push(e);
                }
            }
            Verdict::Rejected => self.credit(&c.accused, c.deposit),
            Verdict::Undecided => self.credit(&c.challenger, c.deposit),
        }
        let event = Event::ChallengeResolved {
            task,
            challenge,
            round: c.round,
            verdict,
            slashed,
            reward,
            to_escrow,
        };
        self.record(EntityKind::Task, task, env, event.clone());
        let mut events = vec![event];
        events.append(&mut extra);
        events
    }

    /// At the start of the block at `height`: challenges whose voting ended are undecided, and
    /// closed tasks whose window passed with nothing pending settle.
    pub(crate) fn settle_due(&mut self, height: u64) -> Vec<Event> {
        let mut events = Vec::new();
        let due: Vec<u64> = self.accountable.iter().copied().collect();
        for task in due {
            let Some(t) = self.task(task) else { continue };
            let expired: Vec<u32> = t
                .challenges
                .iter()
                .filter(|c| c.is_pending() && c.vote_deadline < height)
                .map(|c| c.id)
                .collect();
            let env = Env {
                sender: t.creator,
                fee: 0,
                height,
                tx_id: TxId::default(),
                beacon: Digest::default(),
            };
            for id in expired {
                events.extend(self.resolve(task, id, Verdict::Undecided, &env));
            }
            let t = self.task(task).expect("listed tasks exist");
            let ready = t.status == TaskStatus::Settling
                && t.closing.as_ref().is_some_and(|c| height >= c.settle_from)
                && !t.has_pending_challenge();
            if ready {
                let env = Env {
                    tx_id: t.closing.as_ref().map_or_else(TxId::default, |c| c.tx_id),
                    ..env
                };
                events.extend(self.settle(task, &env));
            }
            self.refresh_accountable(task);
        }
        events
    }

    /// The pending challenges `validator` may vote on in a block at `height` and has not voted
    /// on: filed in an epoch whose set holds it, their voting not yet over. In filing order,
    /// each with its task's id. What a validator's automatic voter works through.
    pub fn challenges_awaiting(&self, validator: &Address, height: u64) -> Vec<(u64, Challenge)> {
        let member = |epoch: u64| {
            self.validator_set(epoch)
                .is_some_and(|set| set.members.iter().any(|m| m.account == *validator))
        };
        let mut awaiting: Vec<(u64, Challenge)> = self
            .accountable
            .iter()
            .filter_map(|id| self.task(*id))
            .flat_map(|t| t.challenges.iter().map(move |c| (t.id, c)))
            .filter(|(_, c)| {
                c.is_pending()
                    && height <= c.vote_deadline
                    && member(c.epoch)
                    && !c.votes.iter().any(|v| v.validator == *validator)
            })
            .map(|(t, c)| (t, c.clone()))
            .collect();
        awaiting.sort_by_key(|(t, c)| (c.filed_height, *t, c.id));
        awaiting
    }

    /// Keeps `accountable` exact for `task`.
    pub(crate) fn refresh_accountable(&mut self, task: u64) {
        let listed = self
            .task(task)
            .is_some_and(|t| t.status == TaskStatus::Settling || t.has_pending_challenge());
        if listed {
            self.accountable.insert(task);
        } else {
            self.accountable.remove(&task);
        }
    }

    /// Pays a closing task's rewards from its valid rounds, refunds the rest, registers its
    /// final model and releases the bonds; the task is `Closed` after.
    pub(crate) fn settle(&mut self, task: u64, env: &Env) -> Vec<Event> {
        let (pays, creator, escrow, model_hash, closing) = {
            let t = self.task(task).expect("settling task exists");
            let pays = crate::tx::payouts(t).unwrap_or_default();
            let model_hash = t
                .last_valid_round()
                .and_then(|r| r.outcome.as_ref())
                .map(|o| o.new_model);
            (
                pays,
                t.creator,
                t.escrow,
                model_hash,
                t.closing.clone().expect("a settling task has its closing"),
            )
        };
        let mut events = Vec::new();
        let mut paid = 0u128;
        for (dataset, amount) in pays {
            let owner = self.dataset(dataset).expect("scored datasets exist").owner;
            self.credit(&owner, amount);
            paid += amount;
            let event = Event::RewardPaid {
                task,
                dataset,
                owner,
                amount,
            };
            self.record(EntityKind::Task, task, env, event.clone());
            self.record(EntityKind::Dataset, dataset, env, event.clone());
            events.push(event);
        }
        let refund = escrow - paid;
        self.credit(&creator, refund);
        let (coordinator, completed) = {
            let t = self.task(task).expect("settling task exists");
            let completed = t
                .round_log
                .iter()
                .filter(|r| r.outcome.is_some() && !t.round_invalid(r.number))
                .count();
            (t.coordinator(), completed as u64)
        };
        if let Some(event) = self.pay_coordinator(&coordinator, completed) {
            self.record(EntityKind::Task, task, env, event.clone());
            events.push(event);
        }
        events.extend(self.release_bonds(task, env));
        let model = model_hash
            .map(|hash| self.register_final_model(task, creator, hash, &closing, env, &mut events));
        let t = self.task_mut(task);
        t.escrow = 0;
        t.status = TaskStatus::Closed;
        t.final_model = model;
        let closed = Event::TaskClosed {
            id: task,
            paid,
            refund,
            model: model.unwrap_or(0),
        };
        self.record(EntityKind::Task, task, env, closed.clone());
        events.push(closed);
        events
    }

    /// Returns every live bond of `task` to its coordinator.
    pub(crate) fn release_bonds(&mut self, task: u64, env: &Env) -> Vec<Event> {
        let released: Vec<(Address, u128)> = self
            .task_mut(task)
            .bonds
            .iter_mut()
            .filter(|b| b.amount > 0)
            .map(|b| (b.coordinator, std::mem::take(&mut b.amount)))
            .collect();
        let mut events = Vec::new();
        for (coordinator, amount) in released {
            self.credit(&coordinator, amount);
            let event = Event::CoordinatorBondReleased {
                task,
                coordinator,
                amount,
            };
            self.record(EntityKind::Task, task, env, event.clone());
            events.push(event);
        }
        events
    }

    fn register_final_model(
        &mut self,
        task: u64,
        creator: Address,
        model_hash: Digest,
        closing: &Closing,
        env: &Env,
        events: &mut Vec<Event>,
    ) -> u64 {
        let id = self
            .next_id(EntityKind::Model)
            .expect("model ids are u64 and dense: the next one exists");
        self.insert_model(Model {
            id,
            owner: creator,
            model_hash,
            task,
            parent: closing.parent,
            metrics: closing.metrics.clone(),
            registered_height: env.height,
            history_root: Digest::default(),
            history: Vec::new(),
        });
        let event = Event::ModelRegistered {
            id,
            task,
            parent: closing.parent,
            model_hash,
        };
        self.record(EntityKind::Model, id, env, event.clone());
        self.record(EntityKind::Task, task, env, event.clone());
        events.push(event);
        id
    }
}
