//! Events: what a transaction (or the start of a block) did, in receipts and in the per-entity
//! history of datasets, tasks and models.
//!
//! Invariant: an entity's `history_root` is the BLAKE3 hash chain of its [`HistoryEntry`]
//! encodings, so the state root commits to the full history without re-hashing it per update.

use crate::types::{Address, Digest, TxId};
use bytes::BufMut;
use commonware_codec::{EncodeSize, Write};
use serde::{Deserialize, Serialize};

/// Something that happened to the state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Funds moved between accounts.
    Transferred {
        /// Payer.
        from: Address,
        /// Payee.
        to: Address,
        /// Amount.
        #[serde(with = "crate::types::amount")]
        amount: u128,
    },
    /// Funds locked as stake.
    Staked {
        /// The staker.
        account: Address,
        /// Amount.
        #[serde(with = "crate::types::amount")]
        amount: u128,
    },
    /// Stake started unbonding.
    UnbondingStarted {
        /// The staker.
        account: Address,
        /// Amount.
        #[serde(with = "crate::types::amount")]
        amount: u128,
        /// Height at which the funds return.
        release_height: u64,
    },
    /// Unbonded funds returned to the balance at the start of a block.
    Unbonded {
        /// The staker.
        account: Address,
        /// Amount.
        #[serde(with = "crate::types::amount")]
        amount: u128,
    },
    /// A dataset was registered.
    DatasetRegistered {
        /// Its id.
        id: u64,
        /// Its owner.
        owner: Address,
        /// BLAKE3 commitment of the data.
        commitment: Digest,
    },
    /// A dataset's consent policy was replaced.
    ConsentUpdated {
        /// The dataset.
        id: u64,
    },
    /// A dataset's consent was revoked.
    ConsentRevoked {
        /// The dataset.
        id: u64,
    },
    /// A task was created and its reward escrowed.
    TaskCreated {
        /// Its id.
        id: u64,
        /// The creator.
        creator: Address,
        /// Escrowed reward.
        #[serde(with = "crate::types::amount")]
        escrow: u128,
    },
    /// A dataset was selected by a task's filter (recorded in the dataset's history).
    DatasetSelected {
        /// The dataset.
        dataset: u64,
        /// The task.
        task: u64,
    },
    /// A task was cancelled and its unspent escrow refunded.
    TaskCancelled {
        /// The task.
        id: u64,
        /// Refund to the creator.
        #[serde(with = "crate::types::amount")]
        refund: u128,
    },
    /// A model was registered.
    ModelRegistered {
        /// Its id.
        id: u64,
        /// The task it came from.
        task: u64,
        /// The model it was trained from, if any.
        parent: Option<u64>,
        /// BLAKE3 of the weights.
        model_hash: Digest,
    },
    /// A task's creator designated a coordinator.
    CoordinatorSet {
        /// The task.
        task: u64,
        /// The new coordinator.
        coordinator: Address,
    },
    /// A task's creator committed to its validation data.
    ValidationCommitted {
        /// The task.
        task: u64,
        /// The commitment.
        commitment: Digest,
    },
    /// A round was opened (recorded in the task's and each selected dataset's history).
    RoundOpened {
        /// The task.
        task: u64,
        /// The round number.
        round: u32,
        /// DP ε the round spends, fixed point.
        epsilon: u64,
        /// Datasets eligible when it opened (the denominator of its sampling rate).
        eligible: u32,
        /// Height after which anyone may expire the round if it has no result.
        deadline_height: u64,
    },
    /// A round's result was recorded (in the task's and each survivor's history).
    RoundClosed {
        /// The task.
        task: u64,
        /// The round number.
        round: u32,
        /// BLAKE3 of the new global model.
        new_model: Digest,
    },
    /// A round passed its deadline without a result and was closed as failed by `RoundExpire`
    /// (in the task's and each selected dataset's history). Its ε and δ stay charged.
    RoundExpired {
        /// The task.
        task: u64,
        /// The round number.
        round: u32,
    },
    /// A round selected a dataset and charged it its next step of the task's ε schedule (in the
    /// dataset's history, where the round's own `round_opened` would show the task's figure).
    EpsilonCharged {
        /// The dataset.
        dataset: u64,
        /// The task.
        task: u64,
        /// The round number.
        round: u32,
        /// What this dataset was charged, fixed point ([`crate::EPSILON_SCALE`]).
        epsilon: u64,
    },
    /// A contributor was paid from a task's escrow.
    RewardPaid {
        /// The task.
        task: u64,
        /// The dataset whose scores earned it.
        dataset: u64,
        /// The dataset's owner, who received it.
        owner: Address,
        /// Amount.
        #[serde(with = "crate::types::amount")]
        amount: u128,
    },
    /// A task was closed: rewards paid, the rest refunded, the final model registered.
    TaskClosed {
        /// The task.
        id: u64,
        /// Total paid to contributors.
        #[serde(with = "crate::types::amount")]
        paid: u128,
        /// Refunded to the creator (unscored share and rounding dust).
        #[serde(with = "crate::types::amount")]
        refund: u128,
        /// The registered final model (0: none, every completed round was invalidated).
        model: u64,
    },
    /// An account declared (or replaced) its validator key.
    ValidatorDeclared {
        /// The account.
        account: Address,
        /// The consensus key.
        key: Address,
    },
    /// The next epoch's validator set was chosen (at the second-to-last block of an epoch).
    ValidatorSetChosen {
        /// The epoch the set validates.
        epoch: u64,
        /// How many members it has.
        members: u32,
        /// Whether no account qualified and the previous set was kept.
        carried_over: bool,
    },
    /// An inference offer was created and its bond locked (in the offer's and the model's
    /// history).
    OfferCreated {
        /// The offer.
        id: u64,
        /// The model it serves.
        model: u64,
        /// Its provider.
        provider: Address,
        /// The bond locked.
        #[serde(with = "crate::types::amount")]
        bond: u128,
    },
    /// An offer's price, endpoint or bond changed.
    OfferUpdated {
        /// The offer.
        id: u64,
        /// The price per query now.
        #[serde(with = "crate::types::amount")]
        price_per_query: u128,
        /// Bond added from the provider's balance (may be 0).
        #[serde(with = "crate::types::amount")]
        bond_added: u128,
    },
    /// An offer was withdrawn: no new channels; its bond returns at `release_height`.
    OfferWithdrawn {
        /// The offer.
        id: u64,
        /// The height at whose start the bond returns.
        release_height: u64,
    },
    /// A withdrawn offer's bond returned to its provider at the start of a block.
    OfferBondReleased {
        /// The offer.
        offer: u64,
        /// Its provider.
        provider: Address,
        /// Amount.
        #[serde(with = "crate::types::amount")]
        amount: u128,
    },
    /// A payer opened a channel and locked its deposit.
    ChannelOpened {
        /// The channel.
        id: u64,
        /// The offer it pays for.
        offer: u64,
        /// The payer.
        payer: Address,
        /// The deposit locked.
        #[serde(with = "crate::types::amount")]
        deposit: u128,
        /// Last claimable height.
        expiry_height: u64,
    },
    /// A payer added to a channel's deposit or extended its expiry.
    ChannelToppedUp {
        /// The channel.
        id: u64,
        /// Deposit added (may be 0).
        #[serde(with = "crate::types::amount")]
        amount: u128,
        /// Last claimable height now.
        expiry_height: u64,
    },
    /// A provider redeemed a voucher: `provider_amount` to it, the royalty to contributors
    /// ([`Event::RoyaltyPaid`], one per dataset paid; rounding dust is in `provider_amount`).
    ChannelClaimed {
        /// The channel.
        id: u64,
        /// Its offer.
        offer: u64,
        /// The provider paid.
        provider: Address,
        /// Taken out of the channel (voucher minus what was claimed before).
        #[serde(with = "crate::types::amount")]
        amount: u128,
        /// Paid to the provider.
        #[serde(with = "crate::types::amount")]
        provider_amount: u128,
        /// Paid to contributors in all.
        #[serde(with = "crate::types::amount")]
        royalty: u128,
    },
    /// A royalty share of a claim was paid to a contributing dataset's owner (in the dataset's
    /// history).
    RoyaltyPaid {
        /// The offer.
        offer: u64,
        /// Its model.
        model: u64,
        /// The dataset whose scores earned it.
        dataset: u64,
        /// The dataset's owner, who received it.
        owner: Address,
        /// Amount.
        #[serde(with = "crate::types::amount")]
        amount: u128,
    },
    /// A channel was closed and the unclaimed deposit returned to its payer.
    ChannelClosed {
        /// The channel.
        id: u64,
        /// The payer.
        payer: Address,
        /// Refund.
        #[serde(with = "crate::types::amount")]
        refund: u128,
    },
    /// A dispute showed the provider wrong: its bond was slashed (the reward to the disputer,
    /// the rest burned) and the offer suspended.
    DisputeUpheld {
        /// The offer.
        offer: u64,
        /// The receipt's channel.
        channel: u64,
        /// The receipt's sequence.
        sequence: u64,
        /// Who disputed.
        disputer: Address,
        /// Why the provider was wrong.
        cause: DisputeCause,
        /// Paid to the disputer.
        #[serde(with = "crate::types::amount")]
        reward: u128,
        /// Burned.
        #[serde(with = "crate::types::amount")]
        burned: u128,
    },
    /// A dispute against a correct receipt failed: the disputer's `dispute_bond` went to the
    /// provider.
    DisputeRejected {
        /// The offer.
        offer: u64,
        /// The receipt's channel.
        channel: u64,
        /// The receipt's sequence.
        sequence: u64,
        /// Who disputed.
        disputer: Address,
        /// Paid by the disputer to the provider.
        #[serde(with = "crate::types::amount")]
        forfeit: u128,
    },
    /// A coordinator locked its bond for a task.
    CoordinatorBonded {
        /// The task.
        task: u64,
        /// The coordinator.
        coordinator: Address,
        /// Locked.
        #[serde(with = "crate::types::amount")]
        amount: u128,
    },
    /// A coordinator's bond returned to it.
    CoordinatorBondReleased {
        /// The task.
        task: u64,
        /// The coordinator.
        coordinator: Address,
        /// Returned.
        #[serde(with = "crate::types::amount")]
        amount: u128,
    },
    /// A claim of a round's result was challenged.
    RoundChallenged {
        /// The task.
        task: u64,
        /// The challenge's number within the task.
        challenge: u32,
        /// The round.
        round: u32,
        /// The claim.
        claim: crate::state::Claim,
        /// Who challenged.
        challenger: Address,
        /// The coordinator whose bond answers.
        accused: Address,
    },
    /// A validator voted on a challenge.
    ChallengeVoted {
        /// The task.
        task: u64,
        /// The challenge.
        challenge: u32,
        /// The validator's account.
        validator: Address,
        /// Whether it found the claim wrong.
        upheld: bool,
    },
    /// A challenge was decided (or its voting ended undecided).
    ChallengeResolved {
        /// The task.
        task: u64,
        /// The challenge.
        challenge: u32,
        /// Its round.
        round: u32,
        /// How it ended.
        verdict: crate::state::Verdict,
        /// Taken from the accused coordinator's bond.
        #[serde(with = "crate::types::amount")]
        slashed: u128,
        /// Of that, paid to the challenger.
        #[serde(with = "crate::types::amount")]
        reward: u128,
        /// Of that, added to the task's escrow.
        #[serde(with = "crate::types::amount")]
        to_escrow: u128,
    },
    /// A task was closed by `TaskClose` and waits for its challenge window.
    TaskSettling {
        /// The task.
        id: u64,
        /// First height it may settle at.
        settle_from: u64,
    },
    /// A governance proposal opened.
    Proposed {
        /// Its id.
        id: u64,
        /// Who proposed it.
        proposer: Address,
        /// The locked deposit.
        #[serde(with = "crate::types::amount")]
        deposit: u128,
        /// Last height votes count.
        end_height: u64,
    },
    /// A vote was cast or changed.
    Voted {
        /// The proposal.
        proposal: u64,
        /// The voter.
        voter: Address,
        /// The vote.
        choice: crate::state::Choice,
    },
    /// A proposal's vote ended and was counted.
    ProposalTallied {
        /// The proposal.
        id: u64,
        /// What the vote decided.
        status: crate::state::ProposalStatus,
        /// Yes weight.
        #[serde(with = "crate::types::amount")]
        yes: u128,
        /// No weight.
        #[serde(with = "crate::types::amount")]
        no: u128,
        /// Abstain weight.
        #[serde(with = "crate::types::amount")]
        abstain: u128,
        /// Veto weight.
        #[serde(with = "crate::types::amount")]
        veto: u128,
        /// All power in the snapshot.
        #[serde(with = "crate::types::amount")]
        power: u128,
        /// Whether the deposit went back to the proposer (else it was burned).
        deposit_returned: bool,
    },
    /// An executed proposal set a parameter.
    ParamChanged {
        /// The proposal.
        proposal: u64,
        /// The parameter.
        name: String,
        /// Its new value.
        value: String,
    },
    /// An executed proposal blocked or unblocked a target.
    BlockDecided {
        /// The proposal.
        proposal: u64,
        /// The target.
        target: crate::state::BlockTarget,
        /// Blocked (or unblocked).
        blocked: bool,
    },
    /// An executed proposal paid from the treasury.
    TreasurySpent {
        /// The proposal.
        proposal: u64,
        /// The payee.
        to: Address,
        /// Amount.
        #[serde(with = "crate::types::amount")]
        amount: u128,
    },
    /// Stake was delegated to a validator.
    Delegated {
        /// The delegator.
        delegator: Address,
        /// The validator.
        validator: Address,
        /// Amount.
        #[serde(with = "crate::types::amount")]
        amount: u128,
    },
    /// A delegation started unbonding.
    Undelegated {
        /// The delegator.
        delegator: Address,
        /// The validator.
        validator: Address,
        /// Amount.
        #[serde(with = "crate::types::amount")]
        amount: u128,
        /// Height at which the funds return.
        release_height: u64,
    },
    /// A block's emission was minted.
    Minted {
        /// Minted in all.
        #[serde(with = "crate::types::amount")]
        amount: u128,
        /// Of that, into the epoch's validator pool.
        #[serde(with = "crate::types::amount")]
        pool: u128,
    },
    /// A revoked dataset's registration bond went back to its owner.
    DatasetBondReturned {
        /// The dataset.
        id: u64,
        /// Its owner.
        owner: Address,
        /// Amount.
        #[serde(with = "crate::types::amount")]
        amount: u128,
    },
    /// Emitted tokens were paid to an account.
    EmissionPaid {
        /// The payee.
        account: Address,
        /// Amount.
        #[serde(with = "crate::types::amount")]
        amount: u128,
        /// Why it was paid.
        role: EmissionRole,
    },
}

/// Who an emission pays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmissionRole {
    /// The treasury's share.
    Treasury,
    /// A validator's share (its stake, and its commission on its delegators').
    Validator,
    /// A delegator's share through its validator.
    Delegator,
    /// A coordinator's reward for completed rounds.
    Coordinator,
    /// The reward of an upheld round challenge or receipt dispute.
    Challenger,
}

impl EmissionRole {
    fn code(self) -> u8 {
        match self {
            Self::Treasury => 0,
            Self::Validator => 1,
            Self::Delegator => 2,
            Self::Coordinator => 3,
            Self::Challenger => 4,
        }
    }
}

/// Why a dispute was upheld.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeCause {
    /// Re-execution gave other output bytes than the receipt's.
    WrongOutput,
    /// The offer's model blob needs more operations than the offer declared (so its answers
    /// could escape the bounded re-execution); shown by the blob itself, without re-executing.
    OpsUnderstated,
}

impl DisputeCause {
    fn code(self) -> u8 {
        match self {
            Self::WrongOutput => 0,
            Self::OpsUnderstated => 1,
        }
    }
}

/// One entry of an entity's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Block height.
    pub height: u64,
    /// The transaction that caused it.
    pub tx_id: TxId,
    /// What happened.
    pub event: Event,
}

impl Event {
    fn tag(&self) -> u8 {
        match self {
            Self::Transferred { .. } => 0,
            Self::Staked { .. } => 1,
            Self::UnbondingStarted { .. } => 2,
            Self::Unbonded { .. } => 3,
            Self::DatasetRegistered { .. } => 4,
            Self::ConsentUpdated { .. } => 5,
            Self::ConsentRevoked { .. } => 6,
            Self::TaskCreated { .. } => 7,
            Self::DatasetSelected { .. } => 8,
            Self::TaskCancelled { .. } => 9,
            Self::ModelRegistered { .. } => 10,
            Self::CoordinatorSet { .. } => 11,
            Self::ValidationCommitted { .. } => 12,
            Self::RoundOpened { .. } => 13,
            Self::RoundClosed { .. } => 14,
            Self::RewardPaid { .. } => 15,
            Self::TaskClosed { .. } => 16,
            Self::RoundExpired { .. } => 17,
            Self::EpsilonCharged { .. } => 18,
            Self::ValidatorDeclared { .. } => 19,
            Self::ValidatorSetChosen { .. } => 20,
            Self::OfferCreated { .. } => 21,
            Self::OfferUpdated { .. } => 22,
            Self::OfferWithdrawn { .. } => 23,
            Self::OfferBondReleased { .. } => 24,
            Self::ChannelOpened { .. } => 25,
            Self::ChannelToppedUp { .. } => 26,
            Self::ChannelClaimed { .. } => 27,
            Self::RoyaltyPaid { .. } => 28,
            Self::ChannelClosed { .. } => 29,
            Self::DisputeUpheld { .. } => 30,
            Self::DisputeRejected { .. } => 31,
            Self::CoordinatorBonded { .. } => 32,
            Self::CoordinatorBondReleased { .. } => 33,
            Self::RoundChallenged { .. } => 34,
            Self::ChallengeVoted { .. } => 35,
            Self::ChallengeResolved { .. } => 36,
            Self::TaskSettling { .. } => 37,
            Self::Proposed { .. } => 38,
            Self::Voted { .. } => 39,
            Self::ProposalTallied { .. } => 40,
            Self::ParamChanged { .. } => 41,
            Self::BlockDecided { .. } => 42,
            Self::TreasurySpent { .. } => 43,
            Self::Delegated { .. } => 44,
            Self::Undelegated { .. } => 45,
            Self::Minted { .. } => 46,
            Self::EmissionPaid { .. } => 47,
            Self::DatasetBondReturned { .. } => 48,
        }
    }
}

impl Write for Event {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.tag());
        match self {
            Self::Transferred { from, to, amount } => {
                from.write(buf);
                to.write(buf);
                amount.write(buf);
            }
            Self::Staked { account, amount } | Self::Unbonded { account, amount } => {
                account.write(buf);
                amount.write(buf);
            }
            Self::UnbondingStarted {
                account,
                amount,
                release_height,
            } => {
                account.write(buf);
                amount.write(buf);
                release_height.write(buf);
            }
            Self::DatasetRegistered {
                id,
                owner,
                commitment,
            } => {
                id.write(buf);
                owner.write(buf);
                commitment.write(buf);
            }
            Self::ConsentUpdated { id } | Self::ConsentRevoked { id } => id.write(buf),
            Self::TaskCreated {
                id,
                creator,
                escrow,
            } => {
                id.write(buf);
                creator.write(buf);
                escrow.write(buf);
            }
            Self::DatasetSelected { dataset, task } => {
                dataset.write(buf);
                task.write(buf);
            }
            Self::TaskCancelled { id, refund } => {
                id.write(buf);
                refund.write(buf);
            }
            Self::ModelRegistered {
                id,
                task,
                parent,
                model_hash,
            } => {
                id.write(buf);
                task.write(buf);
                parent.write(buf);
                model_hash.write(buf);
            }
            Self::CoordinatorSet { task, coordinator } => {
                task.write(buf);
                coordinator.write(buf);
            }
            Self::ValidationCommitted { task, commitment } => {
                task.write(buf);
                commitment.write(buf);
            }
            Self::RoundOpened {
                task,
                round,
                epsilon,
                eligible,
                deadline_height,
            } => {
                task.write(buf);
                round.write(buf);
                epsilon.write(buf);
                eligible.write(buf);
                deadline_height.write(buf);
            }
            Self::RoundExpired { task, round } => {
                task.write(buf);
                round.write(buf);
            }
            Self::EpsilonCharged {
                dataset,
                task,
                round,
                epsilon,
            } => {
                dataset.write(buf);
                task.write(buf);
                round.write(buf);
                epsilon.write(buf);
            }
            Self::RoundClosed {
                task,
                round,
                new_model,
            } => {
                task.write(buf);
                round.write(buf);
                new_model.write(buf);
            }
            Self::RewardPaid {
                task,
                dataset,
                owner,
                amount,
            } => {
                task.write(buf);
                dataset.write(buf);
                owner.write(buf);
                amount.write(buf);
            }
            Self::TaskClosed {
                id,
                paid,
                refund,
                model,
            } => {
                id.write(buf);
                paid.write(buf);
                refund.write(buf);
                model.write(buf);
            }
            Self::ValidatorDeclared { account, key } => {
                account.write(buf);
                key.write(buf);
            }
            Self::ValidatorSetChosen {
                epoch,
                members,
                carried_over,
            } => {
                epoch.write(buf);
                members.write(buf);
                carried_over.write(buf);
            }
            market @ (Self::OfferCreated { .. }
            | Self::OfferUpdated { .. }
            | Self::OfferWithdrawn { .. }
            | Self::OfferBondReleased { .. }
            | Self::ChannelOpened { .. }
            | Self::ChannelToppedUp { .. }
            | Self::ChannelClaimed { .. }
            | Self::RoyaltyPaid { .. }
            | Self::ChannelClosed { .. }
            | Self::DisputeUpheld { .. }
            | Self::DisputeRejected { .. }) => write_market(market, buf),
            governance @ (Self::Proposed { .. }
            | Self::Voted { .. }
            | Self::ProposalTallied { .. }
            | Self::ParamChanged { .. }
            | Self::BlockDecided { .. }
            | Self::TreasurySpent { .. }
            | Self::Delegated { .. }
            | Self::Undelegated { .. }
            | Self::Minted { .. }
            | Self::EmissionPaid { .. }
            | Self::DatasetBondReturned { .. }) => write_governance(governance, buf),
            accountability => write_accountability(accountability, buf),
        }
    }
}

impl EncodeSize for Event {
    fn encode_size(&self) -> usize {
        1 + match self {
            Self::Transferred { .. } => 32 + 32 + 16,
            Self::Staked { .. } | Self::Unbonded { .. } => 32 + 16,
            Self::UnbondingStarted { .. } => 32 + 16 + 8,
            Self::DatasetRegistered { .. } => 8 + 32 + 32,
            Self::ConsentUpdated { .. } | Self::ConsentRevoked { .. } => 8,
            Self::TaskCreated { .. } => 8 + 32 + 16,
            Self::DatasetSelected { .. } => 16,
            Self::TaskCancelled { .. } => 8 + 16,
            Self::ModelRegistered { parent, .. } => 8 + 8 + parent.encode_size() + 32,
            Self::CoordinatorSet { .. } | Self::ValidationCommitted { .. } => 8 + 32,
            Self::RoundOpened { .. } => 8 + 4 + 8 + 4 + 8,
            Self::RoundExpired { .. } => 8 + 4,
            Self::EpsilonCharged { .. } => 8 + 8 + 4 + 8,
            Self::RoundClosed { .. } => 8 + 4 + 32,
            Self::RewardPaid { .. } => 8 + 8 + 32 + 16,
            Self::TaskClosed { .. } => 8 + 16 + 16 + 8,
            Self::ValidatorDeclared { .. } => 32 + 32,
            Self::ValidatorSetChosen { .. } => 8 + 4 + 1,
            Self::OfferCreated { .. } => 8 + 8 + 32 + 16,
            Self::OfferUpdated { .. } => 8 + 16 + 16,
            Self::OfferWithdrawn { .. } => 8 + 8,
            Self::OfferBondReleased { .. } => 8 + 32 + 16,
            Self::ChannelOpened { .. } => 8 + 8 + 32 + 16 + 8,
            Self::ChannelToppedUp { .. } => 8 + 16 + 8,
            Self::ChannelClaimed { .. } => 8 + 8 + 32 + 16 + 16 + 16,
            Self::RoyaltyPaid { .. } => 8 + 8 + 8 + 32 + 16,
            Self::ChannelClosed { .. } => 8 + 32 + 16,
            Self::DisputeUpheld { .. } => 8 + 8 + 8 + 32 + 1 + 16 + 16,
            Self::DisputeRejected { .. } => 8 + 8 + 8 + 32 + 16,
            Self::CoordinatorBonded { .. } | Self::CoordinatorBondReleased { .. } => 8 + 32 + 16,
            Self::RoundChallenged { claim, .. } => 8 + 4 + 4 + claim.encode_size() + 32 + 32,
            Self::ChallengeVoted { .. } => 8 + 4 + 32 + 1,
            Self::ChallengeResolved { .. } => 8 + 4 + 4 + 1 + 16 + 16 + 16,
            Self::TaskSettling { .. } => 8 + 8,
            Self::Proposed { .. } => 8 + 32 + 16 + 8,
            Self::Voted { .. } => 8 + 32 + 1,
            Self::ProposalTallied { .. } => 8 + 1 + 5 * 16 + 1,
            Self::ParamChanged { name, value, .. } => {
                8 + crate::codec::str_size(name) + crate::codec::str_size(value)
            }
            Self::BlockDecided { target, .. } => 8 + target.encode_size() + 1,
            Self::TreasurySpent { .. } => 8 + 32 + 16,
            Self::Delegated { .. } => 32 + 32 + 16,
            Self::Undelegated { .. } => 32 + 32 + 16 + 8,
            Self::Minted { .. } => 16 + 16,
            Self::EmissionPaid { .. } => 32 + 16 + 1,
            Self::DatasetBondReturned { .. } => 8 + 32 + 16,
        }
    }
}

/// The encodings of the governance and economics events (tags 38..=48).
fn write_governance(event: &Event, buf: &mut impl BufMut) {
    match event {
        Event::Proposed {
            id,
            proposer,
            deposit,
            end_height,
        } => {
            id.write(buf);
            proposer.write(buf);
            deposit.write(buf);
            end_height.write(buf);
        }
        Event::Voted {
            proposal,
            voter,
            choice,
        } => {
            proposal.write(buf);
            voter.write(buf);
            choice.write(buf);
        }
        Event::ProposalTallied {
            id,
            status,
            yes,
            no,
            abstain,
            veto,
            power,
            deposit_returned,
        } => {
            id.write(buf);
            buf.put_u8(status.code());
            for v in [yes, no, abstain, veto, power] {
                v.write(buf);
            }
            buf.put_u8(u8::from(*deposit_returned));
        }
        Event::ParamChanged {
            proposal,
            name,
            value,
        } => {
            proposal.write(buf);
            crate::codec::write_str(name, buf);
            crate::codec::write_str(value, buf);
        }
        Event::BlockDecided {
            proposal,
            target,
            blocked,
        } => {
            proposal.write(buf);
            target.write(buf);
            buf.put_u8(u8::from(*blocked));
        }
        Event::TreasurySpent {
            proposal,
            to,
            amount,
        } => {
            proposal.write(buf);
            to.write(buf);
            amount.write(buf);
        }
        Event::Delegated {
            delegator,
            validator,
            amount,
        } => {
            delegator.write(buf);
            validator.write(buf);
            amount.write(buf);
        }
        Event::Undelegated {
            delegator,
            validator,
            amount,
            release_height,
        } => {
            delegator.write(buf);
            validator.write(buf);
            amount.write(buf);
            release_height.write(buf);
        }
        Event::DatasetBondReturned { id, owner, amount } => {
            id.write(buf);
            owner.write(buf);
            amount.write(buf);
        }
        Event::Minted { amount, pool } => {
            amount.write(buf);
            pool.write(buf);
        }
        Event::EmissionPaid {
            account,
            amount,
            role,
        } => {
            account.write(buf);
            amount.write(buf);
            buf.put_u8(role.code());
        }
        _ => unreachable!("only governance events are written here"),
    }
}

/// The encodings of the coordinator-accountability events (tags 32..=37).
fn write_accountability(event: &Event, buf: &mut impl BufMut) {
    match event {
        Event::CoordinatorBonded {
            task,
            coordinator,
            amount,
        }
        | Event::CoordinatorBondReleased {
            task,
            coordinator,
            amount,
        } => {
            task.write(buf);
            coordinator.write(buf);
            amount.write(buf);
        }
        Event::RoundChallenged {
            task,
            challenge,
            round,
            claim,
            challenger,
            accused,
        } => {
            task.write(buf);
            challenge.write(buf);
            round.write(buf);
            claim.write(buf);
            challenger.write(buf);
            accused.write(buf);
        }
        Event::ChallengeVoted {
            task,
            challenge,
            validator,
            upheld,
        } => {
            task.write(buf);
            challenge.write(buf);
            validator.write(buf);
            buf.put_u8(u8::from(*upheld));
        }
        Event::ChallengeResolved {
            task,
            challenge,
            round,
            verdict,
            slashed,
            reward,
            to_escrow,
        } => {
            task.write(buf);
            challenge.write(buf);
            round.write(buf);
            verdict.write(buf);
            slashed.write(buf);
            reward.write(buf);
            to_escrow.write(buf);
        }
        Event::TaskSettling { id, settle_from } => {
            id.write(buf);
            settle_from.write(buf);
        }
        _ => unreachable!("only accountability events are written here"),
    }
}

/// The encodings of the inference-market events (tags 21..=31).
fn write_market(event: &Event, buf: &mut impl BufMut) {
    match event {
        Event::OfferCreated {
            id,
            model,
            provider,
            bond,
        } => {
            id.write(buf);
            model.write(buf);
            provider.write(buf);
            bond.write(buf);
        }
        Event::OfferUpdated {
            id,
            price_per_query,
            bond_added,
        } => {
            id.write(buf);
            price_per_query.write(buf);
            bond_added.write(buf);
        }
        Event::OfferWithdrawn { id, release_height } => {
            id.write(buf);
            release_height.write(buf);
        }
        Event::OfferBondReleased {
            offer,
            provider,
            amount,
        } => {
            offer.write(buf);
            provider.write(buf);
            amount.write(buf);
        }
        Event::ChannelOpened {
            id,
            offer,
            payer,
            deposit,
            expiry_height,
        } => {
            id.write(buf);
            offer.write(buf);
            payer.write(buf);
            deposit.write(buf);
            expiry_height.write(buf);
        }
        Event::ChannelToppedUp {
            id,
            amount,
            expiry_height,
        } => {
            id.write(buf);
            amount.write(buf);
            expiry_height.write(buf);
        }
        Event::ChannelClaimed {
            id,
            offer,
            provider,
            amount,
            provider_amount,
            royalty,
        } => {
            id.write(buf);
            offer.write(buf);
            provider.write(buf);
            amount.write(buf);
            provider_amount.write(buf);
            royalty.write(buf);
        }
        Event::RoyaltyPaid {
            offer,
            model,
            dataset,
            owner,
            amount,
        } => {
            offer.write(buf);
            model.write(buf);
            dataset.write(buf);
            owner.write(buf);
            amount.write(buf);
        }
        Event::ChannelClosed { id, payer, refund } => {
            id.write(buf);
            payer.write(buf);
            refund.write(buf);
        }
        Event::DisputeUpheld {
            offer,
            channel,
            sequence,
            disputer,
            cause,
            reward,
            burned,
        } => {
            offer.write(buf);
            channel.write(buf);
            sequence.write(buf);
            disputer.write(buf);
            buf.put_u8(cause.code());
            reward.write(buf);
            burned.write(buf);
        }
        Event::DisputeRejected {
            offer,
            channel,
            sequence,
            disputer,
            forfeit,
        } => {
            offer.write(buf);
            channel.write(buf);
            sequence.write(buf);
            disputer.write(buf);
            forfeit.write(buf);
        }
        // `Event::write` hands only the variants above here.
        _ => unreachable!("the other events are written by Event::write"),
    }
}

impl HistoryEntry {
    /// The next link of a history hash chain.
    pub fn chain(&self, previous: &Digest) -> Digest {
        let mut h = blake3::Hasher::new();
        h.update(&previous.0);
        h.update(&self.height.to_be_bytes());
        h.update(&self.tx_id.0);
        let mut bytes = Vec::with_capacity(self.event.encode_size());
        self.event.write(&mut bytes);
        h.update(&bytes);
        Digest(*h.finalize().as_bytes())
    }
}
