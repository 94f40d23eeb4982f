//! Error types. Every [`TxError`] variant carries the offending values and has a stable
//! machine-readable [`TxError::code`] that the node's API and metrics use.

use crate::types::{Address, Digest};
use serde::{Deserialize, Serialize};

/// Which kind of entity an id refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// A registered dataset.
    Dataset,
    /// A training task.
    Task,
    /// A registered model.
    Model,
    /// An inference offer.
    Offer,
    /// A payment channel.
    Channel,
    /// A governance proposal.
    Proposal,
}

impl core::fmt::Display for EntityKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Dataset => "dataset",
            Self::Task => "task",
            Self::Model => "model",
            Self::Offer => "offer",
            Self::Channel => "channel",
            Self::Proposal => "proposal",
        })
    }
}

/// Why a transaction was rejected. A rejected transaction changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum TxError {
    /// The ed25519 signature does not verify against the sender.
    #[error("bad signature from {sender}")]
    BadSignature {
        /// The claimed sender.
        sender: Address,
    },
    /// The transaction names another chain.
    #[error("wrong chain id: expected {expected:?}, got {got:?}")]
    WrongChainId {
        /// This chain's id.
        expected: String,
        /// The id in the transaction.
        got: String,
    },
    /// The encoded transaction is larger than `tx_bytes_max`.
    #[error("transaction is {size} bytes, limit {max}")]
    Oversized {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The fee is below `fee_min`.
    #[error("fee {fee} below minimum {min}")]
    FeeTooLow {
        /// Offered fee.
        #[serde(with = "crate::types::amount")]
        fee: u128,
        /// Minimum fee.
        #[serde(with = "crate::types::amount")]
        min: u128,
    },
    /// The nonce was already used.
    #[error("nonce {got} already used; next nonce is {expected}")]
    NonceReplayed {
        /// The sender's next nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The nonce is ahead of the sender's next nonce.
    #[error("nonce {got} is in the future; next nonce is {expected}")]
    NonceFuture {
        /// The sender's next nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The sender cannot pay amount plus fee.
    #[error("insufficient funds: need {needed}, have {available}")]
    InsufficientFunds {
        /// Amount plus fee.
        #[serde(with = "crate::types::amount")]
        needed: u128,
        /// Spendable balance.
        #[serde(with = "crate::types::amount")]
        available: u128,
    },
    /// The sender has less stake than it tries to unstake.
    #[error("insufficient stake: need {needed}, have {available}")]
    InsufficientStake {
        /// Requested amount.
        #[serde(with = "crate::types::amount")]
        needed: u128,
        /// Staked amount.
        #[serde(with = "crate::types::amount")]
        available: u128,
    },
    /// An amount that must be positive is zero.
    #[error("{field} must be positive")]
    ZeroAmount {
        /// The field.
        field: String,
    },
    /// A list or string is longer than its limit.
    #[error("{field} has {len} entries/bytes, limit {max}")]
    LimitExceeded {
        /// The field.
        field: String,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A field holds a value outside its allowed range.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No entity with that id exists.
    #[error("unknown {kind} {id}")]
    UnknownId {
        /// Kind of entity.
        kind: EntityKind,
        /// The id.
        id: u64,
    },
    /// The sender does not own the entity.
    #[error("{sender} is not the owner of {kind} {id} (owner {owner})")]
    NotOwner {
        /// Kind of entity.
        kind: EntityKind,
        /// The id.
        id: u64,
        /// Its owner.
        owner: Address,
        /// The sender.
        sender: Address,
    },
    /// The dataset's consent has expired.
    #[error("consent of dataset {dataset} expired at height {expiry_height} (now {height})")]
    ConsentExpired {
        /// The dataset.
        dataset: u64,
        /// Its expiry height.
        expiry_height: u64,
        /// The current height.
        height: u64,
    },
    /// The dataset's consent was revoked.
    #[error("consent of dataset {dataset} was revoked")]
    ConsentRevoked {
        /// The dataset.
        dataset: u64,
    },
    /// The task does not satisfy the dataset's consent policy.
    #[error("task violates consent of dataset {dataset}: {reason}")]
    ConsentViolated {
        /// The dataset.
        dataset: u64,
        /// Which rule failed, with the values.
        reason: String,
    },
    /// The task is not open (cancelled).
    #[error("task {id} is not open")]
    TaskNotOpen {
        /// The task.
        id: u64,
    },
    /// The block already holds `block_txs_max` transactions.
    #[error("block already holds {max} transactions")]
    BlockFull {
        /// The limit.
        max: usize,
    },
    /// The sender is not the task's coordinator (or creator, where either may act).
    #[error("{sender} is not the coordinator of task {task} (coordinator {coordinator})")]
    NotCoordinator {
        /// The task.
        task: u64,
        /// Its coordinator.
        coordinator: Address,
        /// The sender.
        sender: Address,
    },
    /// The round number is not the next one, or the task has no rounds left.
    #[error("task {task}: round {got} cannot be opened (expected {expected}, task has {rounds})")]
    WrongRound {
        /// The task.
        task: u64,
        /// The round the transaction names.
        got: u32,
        /// The next round number.
        expected: u32,
        /// The task's number of rounds.
        rounds: u32,
    },
    /// A round is still open (a new round or closing the task must wait for its result).
    #[error("task {task}: round {round} is still open")]
    RoundStillOpen {
        /// The task.
        task: u64,
        /// The open round.
        round: u32,
    },
    /// The round named is not the task's open round.
    #[error("task {task}: round {round} is not open")]
    RoundNotOpen {
        /// The task.
        task: u64,
        /// The round named.
        round: u32,
    },
    /// The task's DP budget would be exceeded (basic composition: the rounds' sum).
    #[error("task {task}: {what} spent {spent} + round {round} exceeds budget {budget}")]
    BudgetExceeded {
        /// The task.
        task: u64,
        /// `"epsilon"` or `"delta"`.
        what: String,
        /// Already spent.
        spent: u64,
        /// This round's spend.
        round: u64,
        /// The task's budget.
        budget: u64,
    },
    /// A dataset's own maximum ε would be exceeded.
    #[error("dataset {dataset}: epsilon spent {spent} + round {round} exceeds its maximum {max}")]
    DatasetBudgetExceeded {
        /// The dataset.
        dataset: u64,
        /// Already spent on it.
        spent: u64,
        /// This round's ε.
        round: u64,
        /// Its policy's `epsilon_max`.
        max: u64,
    },
    /// A dataset named where it may not be (not in the filter, not selected, not a survivor).
    #[error("dataset {dataset} cannot appear in {field}: {reason}")]
    InvalidParticipant {
        /// The dataset.
        dataset: u64,
        /// Where it appeared (`selected`, `survivors`, `scores`).
        field: String,
        /// Why it is not allowed there.
        reason: String,
    },
    /// The revealed validation data does not match the task's commitment (or none was made).
    #[error("task {task}: validation reveal {got} does not match commitment {committed:?}")]
    ValidationMismatch {
        /// The task.
        task: u64,
        /// The commitment, if any.
        committed: Option<Digest>,
        /// The commitment the reveal hashes to.
        got: Digest,
    },
    /// An arithmetic overflow (a balance past `u128::MAX`, an id past `u64::MAX`).
    #[error("overflow in {what}")]
    Overflow {
        /// What overflowed.
        what: String,
    },
    /// A round's ε is above a dataset's per-round cap (`policy.epsilon_round_max`).
    #[error("dataset {dataset}: round epsilon {round} exceeds its per-round maximum {max}")]
    DatasetRoundEpsilonExceeded {
        /// The dataset.
        dataset: u64,
        /// The round's ε, fixed point.
        round: u64,
        /// Its policy's `epsilon_round_max`.
        max: u64,
    },
    /// A `RoundOpen` asks for more datasets than are eligible for the round.
    #[error(
        "task {task} round {round}: asks for {asked} datasets but only {eligible} are eligible"
    )]
    TooFewEligible {
        /// The task.
        task: u64,
        /// The round.
        round: u32,
        /// How many the transaction asks for.
        asked: u32,
        /// How many the ledger finds eligible.
        eligible: u32,
    },
    /// The data commitment is already registered.
    #[error("commitment {commitment} is already registered as dataset {existing}")]
    DuplicateCommitment {
        /// The commitment.
        commitment: Digest,
        /// The dataset that registered it.
        existing: u64,
    },
    /// The validator key is already declared by another account.
    #[error("validator key {key} is already declared by account {account}")]
    ValidatorKeyTaken {
        /// The key.
        key: Address,
        /// The account that declared it.
        account: Address,
    },
    /// The round was closed as failed by `RoundExpire`: no result can be recorded for it.
    #[error("task {task}: round {round} expired at height {expired_height}")]
    RoundExpired {
        /// The task.
        task: u64,
        /// The round.
        round: u32,
        /// Height of the `RoundExpire`.
        expired_height: u64,
    },
    /// `RoundExpire` before the round's deadline has passed.
    #[error("task {task}: round {round} can expire after height {deadline_height} (now {height})")]
    RoundNotExpired {
        /// The task.
        task: u64,
        /// The round.
        round: u32,
        /// The round's deadline: expiry is allowed from `deadline_height + 1`.
        deadline_height: u64,
        /// The height of the block the transaction is in.
        height: u64,
    },
    /// The offer is suspended or withdrawn where it must be active.
    #[error("offer {offer} is {status}")]
    OfferNotActive {
        /// The offer.
        offer: u64,
        /// Its status (`suspended`, `withdrawn`).
        status: String,
    },
    /// The channel was closed.
    #[error("channel {channel} is closed")]
    ChannelNotOpen {
        /// The channel.
        channel: u64,
    },
    /// A claim or extension after the channel's expiry.
    #[error("channel {channel} expired at height {expiry_height} (now {height})")]
    ChannelExpired {
        /// The channel.
        channel: u64,
        /// Its last claimable height.
        expiry_height: u64,
        /// The height of the block the transaction is in.
        height: u64,
    },
    /// The payer closes a channel before its expiry.
    #[error(
        "channel {channel} can be closed by its payer after height {expiry_height} (now {height})"
    )]
    ChannelNotExpired {
        /// The channel.
        channel: u64,
        /// Its last claimable height.
        expiry_height: u64,
        /// The height of the block the transaction is in.
        height: u64,
    },
    /// A voucher whose cumulative amount is not above what the channel already paid (a replay
    /// or an older voucher).
    #[error("voucher for channel {channel}: {amount} is not above the {claimed} already claimed")]
    VoucherNotNewer {
        /// The channel.
        channel: u64,
        /// The voucher's cumulative amount.
        #[serde(with = "crate::types::amount")]
        amount: u128,
        /// Already claimed.
        #[serde(with = "crate::types::amount")]
        claimed: u128,
    },
    /// A voucher above the channel's deposit.
    #[error("voucher for channel {channel}: {amount} is above the deposit {deposit}")]
    VoucherOverdrawn {
        /// The channel.
        channel: u64,
        /// The voucher's cumulative amount.
        #[serde(with = "crate::types::amount")]
        amount: u128,
        /// The channel's deposit.
        #[serde(with = "crate::types::amount")]
        deposit: u128,
    },
    /// A voucher not signed by the channel's payer.
    #[error("voucher for channel {channel} is not signed by its payer {payer}")]
    VoucherBadSignature {
        /// The channel.
        channel: u64,
        /// The channel's payer.
        payer: Address,
    },
    /// A receipt not signed by the offer's provider.
    #[error("receipt for offer {offer} is not signed by its provider {provider}")]
    ReceiptBadSignature {
        /// The offer.
        offer: u64,
        /// Its provider.
        provider: Address,
    },
    /// An offer's royalty is below what a training dataset's consent policy asks.
    #[error(
        "royalty {royalty_bps} bps for model {model} is below the {floor} bps dataset {dataset} asks"
    )]
    RoyaltyBelowFloor {
        /// The model.
        model: u64,
        /// The dataset asking the most.
        dataset: u64,
        /// What it asks, basis points.
        floor: u32,
        /// What the offer sets.
        royalty_bps: u32,
    },
    /// The receipt of this channel and sequence was already disputed.
    #[error("channel {channel}: the receipt of sequence {sequence} was already disputed")]
    AlreadyDisputed {
        /// The channel.
        channel: u64,
        /// The receipt's sequence.
        sequence: u64,
    },
    /// The channel's receipts can no longer be disputed.
    #[error("channel {channel}: disputes ended at height {deadline_height} (now {height})")]
    DisputeWindowClosed {
        /// The channel.
        channel: u64,
        /// The last height a dispute was accepted.
        deadline_height: u64,
        /// The height of the block the transaction is in.
        height: u64,
    },
    /// The offer holds no bond to answer a dispute (slashed or released).
    #[error("offer {offer} holds no bond (slashed or released)")]
    DisputeUnbacked {
        /// The offer.
        offer: u64,
    },
    /// A model whose re-execution would cost more than `dispute_ops_max`.
    #[error("model of {ops} operations is above dispute_ops_max {max}")]
    DisputeTooCostly {
        /// Its operations.
        ops: u64,
        /// The limit.
        max: u64,
    },
    /// The task's rounds can no longer be challenged (settled, cancelled, or its challenge
    /// window ended).
    #[error("task {task}: its rounds can no longer be challenged")]
    ChallengeWindowClosed {
        /// The task.
        task: u64,
    },
    /// The challenge is not waiting for votes (resolved, or its voting ended).
    #[error("task {task}: challenge {challenge} is not open for votes")]
    ChallengeNotPending {
        /// The task.
        task: u64,
        /// The challenge.
        challenge: u32,
    },
    /// A governance decision blocked the dataset, model, offer or validator.
    #[error("{target} is blocked by governance (reason {reason})")]
    Blocked {
        /// What is blocked.
        target: String,
        /// Hash of the published reasons.
        reason: Digest,
    },
    /// The proposal is not open for votes.
    #[error("proposal {proposal} is not open for votes")]
    ProposalNotVoting {
        /// The proposal.
        proposal: u64,
    },
    /// The voter held no stake, delegation or delegated stake when the proposal started.
    #[error("{voter} had no voting power when proposal {proposal} started")]
    NoVotingPower {
        /// The proposal.
        proposal: u64,
        /// The voter.
        voter: Address,
    },
    /// The proposal cannot be executed now.
    #[error("proposal {proposal} cannot be executed: {reason}")]
    NotExecutable {
        /// The proposal.
        proposal: u64,
        /// Why.
        reason: String,
    },
    /// The sender is not a validator of the epoch the challenge was filed in.
    #[error("{sender} is not a validator of epoch {epoch}")]
    NotValidator {
        /// The sender.
        sender: Address,
        /// The epoch whose set votes.
        epoch: u64,
    },
}

impl TxError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadSignature { .. } => "bad_signature",
            Self::WrongChainId { .. } => "wrong_chain_id",
            Self::Oversized { .. } => "oversized",
            Self::FeeTooLow { .. } => "fee_too_low",
            Self::NonceReplayed { .. } => "nonce_replayed",
            Self::NonceFuture { .. } => "nonce_future",
            Self::InsufficientFunds { .. } => "insufficient_funds",
            Self::InsufficientStake { .. } => "insufficient_stake",
            Self::ZeroAmount { .. } => "zero_amount",
            Self::LimitExceeded { .. } => "limit_exceeded",
            Self::InvalidField { .. } => "invalid_field",
            Self::UnknownId { .. } => "unknown_id",
            Self::NotOwner { .. } => "not_owner",
            Self::ConsentExpired { .. } => "consent_expired",
            Self::ConsentRevoked { .. } => "consent_revoked",
            Self::ConsentViolated { .. } => "consent_violated",
            Self::TaskNotOpen { .. } => "task_not_open",
            Self::BlockFull { .. } => "block_full",
            Self::Overflow { .. } => "overflow",
            Self::NotCoordinator { .. } => "not_coordinator",
            Self::WrongRound { .. } => "wrong_round",
            Self::RoundStillOpen { .. } => "round_still_open",
            Self::RoundNotOpen { .. } => "round_not_open",
            Self::BudgetExceeded { .. } => "budget_exceeded",
            Self::DatasetBudgetExceeded { .. } => "dataset_budget_exceeded",
            Self::InvalidParticipant { .. } => "invalid_participant",
            Self::ValidationMismatch { .. } => "validation_mismatch",
            Self::DatasetRoundEpsilonExceeded { .. } => "dataset_round_epsilon_exceeded",
            Self::DuplicateCommitment { .. } => "duplicate_commitment",
            Self::ValidatorKeyTaken { .. } => "validator_key_taken",
            Self::RoundExpired { .. } => "round_expired",
            Self::RoundNotExpired { .. } => "round_not_expired",
            Self::TooFewEligible { .. } => "too_few_eligible",
            Self::OfferNotActive { .. } => "offer_not_active",
            Self::ChannelNotOpen { .. } => "channel_not_open",
            Self::ChannelExpired { .. } => "channel_expired",
            Self::ChannelNotExpired { .. } => "channel_not_expired",
            Self::VoucherNotNewer { .. } => "voucher_not_newer",
            Self::VoucherOverdrawn { .. } => "voucher_overdrawn",
            Self::VoucherBadSignature { .. } => "voucher_bad_signature",
            Self::ReceiptBadSignature { .. } => "receipt_bad_signature",
            Self::RoyaltyBelowFloor { .. } => "royalty_below_floor",
            Self::AlreadyDisputed { .. } => "already_disputed",
            Self::DisputeWindowClosed { .. } => "dispute_window_closed",
            Self::DisputeUnbacked { .. } => "dispute_unbacked",
            Self::DisputeTooCostly { .. } => "dispute_too_costly",
            Self::ChallengeWindowClosed { .. } => "challenge_window_closed",
            Self::ChallengeNotPending { .. } => "challenge_not_pending",
            Self::NotValidator { .. } => "not_validator",
            Self::Blocked { .. } => "blocked",
            Self::ProposalNotVoting { .. } => "proposal_not_voting",
            Self::NoVotingPower { .. } => "no_voting_power",
            Self::NotExecutable { .. } => "not_executable",
        }
    }

    /// Every code [`Self::code`] can return (for metrics labels and docs).
    pub const CODES: &'static [&'static str] = &[
        "bad_signature",
        "wrong_chain_id",
        "oversized",
        "fee_too_low",
        "nonce_replayed",
        "nonce_future",
        "insufficient_funds",
        "insufficient_stake",
        "zero_amount",
        "limit_exceeded",
        "invalid_field",
        "unknown_id",
        "not_owner",
        "consent_expired",
        "consent_revoked",
        "consent_violated",
        "task_not_open",
        "block_full",
        "overflow",
        "not_coordinator",
        "wrong_round",
        "round_still_open",
        "round_not_open",
        "budget_exceeded",
        "dataset_budget_exceeded",
        "invalid_participant",
        "validation_mismatch",
        "dataset_round_epsilon_exceeded",
        "duplicate_commitment",
        "validator_key_taken",
        "round_expired",
        "round_not_expired",
        "too_few_eligible",
        "offer_not_active",
        "channel_not_open",
        "channel_expired",
        "channel_not_expired",
        "voucher_not_newer",
        "voucher_overdrawn",
        "voucher_bad_signature",
        "receipt_bad_signature",
        "royalty_below_floor",
        "already_disputed",
        "dispute_window_closed",
        "dispute_unbacked",
        "dispute_too_costly",
        "challenge_window_closed",
        "challenge_not_pending",
        "not_validator",
        "blocked",
        "proposal_not_voting",
        "no_voting_power",
        "not_executable",
    ];

    pub(crate) fn limit(field: &str, len: usize, max: usize) -> Result<(), Self> {
        if len > max {
            return Err(Self::LimitExceeded {
                field: field.to_string(),
                len,
                max,
            });
        }
        Ok(())
    }

    pub(crate) fn positive(field: &str, v: u128) -> Result<(), Self> {
        if v == 0 {
            return Err(Self::ZeroAmount {
                field: field.to_string(),
            });
        }
        Ok(())
    }

    pub(crate) fn overflow(what: &str) -> Self {
        Self::Overflow {
            what: what.to_string(),
        }
    }
}

/// A byte string that is not a valid canonical encoding within the limits.
#[derive(Debug, thiserror::Error)]
#[error("decode: {0}")]
pub struct DecodeError(#[from] pub commonware_codec::Error);

/// A genesis that cannot start a chain.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The JSON does not parse.
    #[error("genesis JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The chain id is empty or too long.
    #[error("chain id {chain_id:?} must be 1..={max} bytes")]
    ChainId {
        /// The id.
        chain_id: String,
        /// The limit.
        max: usize,
    },
    /// An address appears twice in balances or validators.
    #[error("address {0} listed twice in {1}")]
    Duplicate(Address, &'static str),
    /// The total supply does not fit in a `u128`.
    #[error("total supply overflows u128")]
    SupplyOverflow,
    /// A genesis validator holds less than `validator_stake_min`.
    #[error(
        "genesis validator {validator} stakes {stake} base units, below validator_stake_min {min}"
    )]
    ValidatorStake {
        /// The validator.
        validator: Address,
        /// Its stake.
        stake: u128,
        /// The minimum.
        min: u128,
    },
    /// A parameter is unusable (zero where a positive value is needed).
    #[error("parameter {name} = {value} is invalid: {reason}")]
    Param {
        /// The parameter.
        name: &'static str,
        /// Its value.
        value: String,
        /// Why.
        reason: &'static str,
    },
}

/// Why an inclusion proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The proof does not lead to the expected root.
    #[error("proof of {key} does not match root {root}")]
    RootMismatch {
        /// The key the proof claims.
        key: String,
        /// The root it was checked against.
        root: Digest,
    },
    /// The proof is structurally invalid (location past the leaf count, too many digests).
    #[error("malformed proof: {0}")]
    Malformed(String),
    /// An entry sent with a proof is not the one the proof commits to.
    #[error("{key}: {what}")]
    EntryMismatch {
        /// The entry's key.
        key: String,
        /// How it differs.
        what: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_of_each() -> Vec<TxError> {
        let a = Address([1; 32]);
        let s = || "x".to_string();
        vec![
            TxError::BadSignature { sender: a },
            TxError::WrongChainId {
                expected: s(),
                got: s(),
            },
            TxError::Oversized { size: 2, max: 1 },
            TxError::FeeTooLow { fee: 0, min: 1 },
            TxError::NonceReplayed {
                expected: 2,
                got: 1,
            },
            TxError::NonceFuture {
                expected: 1,
                got: 2,
            },
            TxError::InsufficientFunds {
                needed: 2,
                available: 1,
            },
            TxError::InsufficientStake {
                needed: 2,
                available: 1,
            },
            TxError::ZeroAmount { field: s() },
            TxError::LimitExceeded {
                field: s(),
                len: 2,
                max: 1,
            },
            TxError::InvalidField {
                field: s(),
                reason: s(),
            },
            TxError::UnknownId {
                kind: EntityKind::Task,
                id: 1,
            },
            TxError::NotOwner {
                kind: EntityKind::Dataset,
                id: 1,
                owner: a,
                sender: a,
            },
            TxError::ConsentExpired {
                dataset: 1,
                expiry_height: 1,
                height: 2,
            },
            TxError::ConsentRevoked { dataset: 1 },
            TxError::ConsentViolated {
                dataset: 1,
                reason: s(),
            },
            TxError::TaskNotOpen { id: 1 },
            TxError::BlockFull { max: 1 },
            TxError::Overflow { what: s() },
            TxError::NotCoordinator {
                task: 1,
                coordinator: a,
                sender: a,
            },
            TxError::WrongRound {
                task: 1,
                got: 3,
                expected: 2,
                rounds: 5,
            },
            TxError::RoundStillOpen { task: 1, round: 1 },
            TxError::RoundNotOpen { task: 1, round: 1 },
            TxError::BudgetExceeded {
                task: 1,
                what: s(),
                spent: 1,
                round: 1,
                budget: 1,
            },
            TxError::DatasetBudgetExceeded {
                dataset: 1,
                spent: 1,
                round: 1,
                max: 1,
            },
            TxError::InvalidParticipant {
                dataset: 1,
                field: s(),
                reason: s(),
            },
            TxError::ValidationMismatch {
                task: 1,
                committed: None,
                got: Digest([0; 32]),
            },
            TxError::DatasetRoundEpsilonExceeded {
                dataset: 1,
                round: 2,
                max: 1,
            },
            TxError::DuplicateCommitment {
                commitment: Digest([1; 32]),
                existing: 1,
            },
            TxError::ValidatorKeyTaken {
                key: Address([2; 32]),
                account: Address([3; 32]),
            },
            TxError::RoundExpired {
                task: 1,
                round: 1,
                expired_height: 9,
            },
            TxError::RoundNotExpired {
                task: 1,
                round: 1,
                deadline_height: 9,
                height: 5,
            },
            TxError::TooFewEligible {
                task: 1,
                round: 1,
                asked: 9,
                eligible: 8,
            },
            TxError::OfferNotActive {
                offer: 1,
                status: s(),
            },
            TxError::ChannelNotOpen { channel: 1 },
            TxError::ChannelExpired {
                channel: 1,
                expiry_height: 2,
                height: 3,
            },
            TxError::ChannelNotExpired {
                channel: 1,
                expiry_height: 3,
                height: 2,
            },
            TxError::VoucherNotNewer {
                channel: 1,
                amount: 1,
                claimed: 2,
            },
            TxError::VoucherOverdrawn {
                channel: 1,
                amount: 3,
                deposit: 2,
            },
            TxError::VoucherBadSignature {
                channel: 1,
                payer: a,
            },
            TxError::ReceiptBadSignature {
                offer: 1,
                provider: a,
            },
            TxError::RoyaltyBelowFloor {
                model: 1,
                dataset: 2,
                floor: 300,
                royalty_bps: 100,
            },
            TxError::AlreadyDisputed {
                channel: 1,
                sequence: 4,
            },
            TxError::DisputeWindowClosed {
                channel: 1,
                deadline_height: 2,
                height: 3,
            },
            TxError::DisputeUnbacked { offer: 1 },
            TxError::DisputeTooCostly { ops: 2, max: 1 },
            TxError::ChallengeWindowClosed { task: 1 },
            TxError::ChallengeNotPending {
                task: 1,
                challenge: 2,
            },
            TxError::NotValidator {
                sender: a,
                epoch: 3,
            },
            TxError::Blocked {
                target: "dataset 1".into(),
                reason: Digest([3; 32]),
            },
            TxError::ProposalNotVoting { proposal: 1 },
            TxError::NoVotingPower {
                proposal: 1,
                voter: a,
            },
            TxError::NotExecutable {
                proposal: 1,
                reason: "too early".into(),
            },
        ]
    }

    #[test]
    fn codes_are_stable_listed_and_match_json() {
        let errors = one_of_each();
        let codes: Vec<&str> = errors.iter().map(TxError::code).collect();
        assert_eq!(codes, TxError::CODES);
        for e in errors {
            let json = serde_json::to_value(&e).expect("serializes");
            assert_eq!(json["code"], e.code(), "{json}");
            let back: TxError = serde_json::from_value(json).expect("deserializes");
            assert_eq!(back, e);
        }
    }
}
