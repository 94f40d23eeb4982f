//! Protocol parameters: every limit the ledger enforces, by name, read from genesis.
//!
//! Fixed-point scales (no floats anywhere in the ledger):
//! - DP ε: [`EPSILON_SCALE`] = 1e6 (ε = 1.5 is `1_500_000`).
//! - DP δ: [`DELTA_SCALE`] = 1e12 (δ = 1e-5 is `10_000_000`).
//! - model metrics: [`METRIC_SCALE`] = 1e6 (accuracy 0.9731 is `973_100`), signed.
//! - DP noise multiplier σ: [`NOISE_SCALE`] = 1e6 (σ = 1.1 is `1_100_000`).

use crate::error::GenesisError;
use serde::{Deserialize, Serialize};

/// ε is stored as `ε · EPSILON_SCALE`.
pub const EPSILON_SCALE: u64 = 1_000_000;
/// δ is stored as `δ · DELTA_SCALE`.
pub const DELTA_SCALE: u64 = 1_000_000_000_000;
/// Model metrics are stored as `value · METRIC_SCALE` in an `i64`.
pub const METRIC_SCALE: i64 = 1_000_000;
/// The DP noise multiplier σ (noise standard deviation over the clipping norm) is stored as
/// `σ · NOISE_SCALE`.
pub const NOISE_SCALE: u64 = 1_000_000;

/// Default of [`Params::round_timeout_blocks`].
///
/// An idle chain makes a block at least every `block_idle_wait` (0.5 s, `deai-chain`
/// `Config::single`) plus consensus latency, a busy one faster: 7 200 blocks are about one hour
/// on an idle chain, and still minutes when blocks come ten times faster. An honest round needs
/// four secure-aggregation message phases, each bounded by the node's 20 s peer timeout, plus
/// local training (seconds to minutes in the demo), so it reports well inside the deadline;
/// a coordinator that stalls frees its task after about an hour.
pub const ROUND_TIMEOUT_BLOCKS_DEFAULT: u64 = 7_200;

fn round_timeout_blocks_default() -> u64 {
    ROUND_TIMEOUT_BLOCKS_DEFAULT
}

/// Default of [`Params::epoch_blocks`]: about eight minutes of an idle chain (a block every
/// 0.5 s), less under load. Long enough that a set change is rare next to the blocks it covers,
/// short enough that new stake takes effect within minutes.
pub const EPOCH_BLOCKS_DEFAULT: u64 = 1_000;
/// The shortest epoch [`Params::epoch_blocks`] allows: the next set is chosen at the
/// second-to-last block of an epoch, so its last block (certified by the outgoing set) commits
/// to it, and that block must come after genesis.
pub const EPOCH_BLOCKS_MIN: u64 = 4;
/// Default of [`Params::validators_max`].
pub const VALIDATORS_MAX_DEFAULT: u32 = 100;
/// Default of [`Params::validator_stake_min`]: 100 tokens.
pub const VALIDATOR_STAKE_MIN_DEFAULT: u128 = 100 * crate::genesis::TOKEN;

/// Default of [`Params::offer_bond_min`]: 10 tokens.
pub const OFFER_BOND_MIN_DEFAULT: u128 = 10 * crate::genesis::TOKEN;
/// Default of [`Params::channel_expiry_max`]: about 12 hours of an idle chain (a block every
/// 0.5 s). A payer's deposit is locked at most this long.
pub const CHANNEL_EXPIRY_MAX_DEFAULT: u64 = 86_400;
/// Default of [`Params::dispute_window_blocks`]: about an hour of an idle chain after a channel
/// expires, time enough for an agent that re-checks a sample of its answers.
pub const DISPUTE_WINDOW_BLOCKS_DEFAULT: u64 = 7_200;
/// Default of [`Params::offer_unbond_blocks`]: one block past the longest channel plus the
/// dispute window, so every receipt of a withdrawn offer can still reach its bond.
pub const OFFER_UNBOND_BLOCKS_DEFAULT: u64 =
    CHANNEL_EXPIRY_MAX_DEFAULT + DISPUTE_WINDOW_BLOCKS_DEFAULT + 1;
/// Default of [`Params::dispute_ops_max`]: 16 M multiply-accumulates, a few milliseconds of
/// integer work; the deai models (digits MLP ≈ 10 k, Fashion-MNIST CNN ≈ 0.3 M, MLP ≈ 0.1 M
/// operations) are far below it.
pub const DISPUTE_OPS_MAX_DEFAULT: u64 = 1 << 24;
/// Largest [`Params::dispute_ops_max`] a genesis may set: about a second of one core, the most
/// a dispute may cost every validator.
pub const DISPUTE_OPS_MAX_LIMIT: u64 = 1 << 30;
/// Default of [`Params::dispute_model_bytes_max`]: 256 KiB holds every model deai trains (the
/// character LSTM is about 139 KB, most of it its precomputed input projection; the 784-128-10
/// MLP about 103 KB).
pub const DISPUTE_MODEL_BYTES_MAX_DEFAULT: u32 = 256 * 1024;
/// Largest [`Params::dispute_model_bytes_max`] a genesis may set (a dispute is one transaction
/// every validator downloads and keeps).
pub const DISPUTE_MODEL_BYTES_MAX_LIMIT: u32 = 16 * 1024 * 1024;
/// Default bound on the bytes of one block's transactions.
pub(crate) const BLOCK_BYTES_MAX_DEFAULT: u64 = 16 * 1024 * 1024;
/// Largest `block_bytes_max` a genesis may set: what one consensus message can carry.
pub(crate) const BLOCK_BYTES_MAX_LIMIT: u64 = 256 * 1024 * 1024;
/// Default of [`Params::dispute_input_bytes_max`]: a 28×28 image is 784 bytes, a character
/// model's window at most 4096.
pub const DISPUTE_INPUT_BYTES_MAX_DEFAULT: u32 = 4_096;
/// Default of [`Params::receipt_output_bytes_max`]: 8 header bytes and 4 per logit, so up to 510
/// classes (the character model has at most 256).
pub const RECEIPT_OUTPUT_BYTES_MAX_DEFAULT: u32 = 2_048;
/// Default of [`Params::dispute_reward_bps`]: half of a slashed bond to the disputer.
pub const DISPUTE_REWARD_BPS_DEFAULT: u32 = 5_000;
/// Default of [`Params::dispute_bond`]: 1 token, forfeited to the provider by a failed dispute.
pub const DISPUTE_BOND_DEFAULT: u128 = crate::genesis::TOKEN;
/// Default of [`Params::dispute_fee_per_byte`]: one base unit per byte of model and input.
pub const DISPUTE_FEE_PER_BYTE_DEFAULT: u128 = 1;
/// Default of [`Params::offer_endpoint_bytes_max`].
pub const OFFER_ENDPOINT_BYTES_MAX_DEFAULT: u32 = 256;
/// Default of [`Params::coordinator_bond`]: 10 tokens.
pub const COORDINATOR_BOND_DEFAULT: u128 = 10 * crate::genesis::TOKEN;
/// Default of [`Params::challenge_deposit`]: 1 token, forfeited to the coordinator by a
/// rejected challenge.
pub const CHALLENGE_DEPOSIT_DEFAULT: u128 = crate::genesis::TOKEN;
/// Default of [`Params::challenge_vote_blocks`]: about five minutes of an idle chain for the
/// validators to fetch a round's blobs and re-check one claim.
pub const CHALLENGE_VOTE_BLOCKS_DEFAULT: u64 = 600;
/// Default of [`Params::challenge_reward_bps`]: half of a slashed coordinator bond to the
/// challenger.
pub const CHALLENGE_REWARD_BPS_DEFAULT: u32 = 5_000;
/// Basis points in one whole (royalty shares, dispute rewards).
pub const BPS_SCALE: u32 = 10_000;
/// Default of [`Params::gov_deposit_min`]: 100 tokens.
pub const GOV_DEPOSIT_MIN_DEFAULT: u128 = 100 * crate::genesis::TOKEN;
/// Default of [`Params::gov_voting_blocks`]: about an hour of an idle chain.
pub const GOV_VOTING_BLOCKS_DEFAULT: u64 = 7_200;
/// Default of [`Params::gov_timelock_blocks`]: about an hour of an idle chain between a vote
/// passing and its change taking effect.
pub const GOV_TIMELOCK_BLOCKS_DEFAULT: u64 = 7_200;
/// Default of [`Params::gov_execute_window_blocks`]: about a day of an idle chain.
pub const GOV_EXECUTE_WINDOW_BLOCKS_DEFAULT: u64 = 172_800;
/// Default of [`Params::gov_quorum_bps`]: a third of the bonded stake must vote.
pub const GOV_QUORUM_BPS_DEFAULT: u32 = 3_340;
/// Default of [`Params::gov_threshold_bps`]: more than half of the yes, no and veto weight.
pub const GOV_THRESHOLD_BPS_DEFAULT: u32 = 5_000;
/// Default of [`Params::gov_veto_bps`]: more than a third of the voting weight vetoes.
pub const GOV_VETO_BPS_DEFAULT: u32 = 3_340;
/// Default of [`Params::emission_treasury_bps`]: a tenth of every emission to the treasury.
pub const EMISSION_TREASURY_BPS_DEFAULT: u32 = 1_000;
/// Default of [`Params::validator_commission_bps`]: a validator keeps a tenth of what its
/// delegators' stake earns.
pub const VALIDATOR_COMMISSION_BPS_DEFAULT: u32 = 1_000;
/// Default of [`Params::task_epsilon_max`]: ε = 1,000 (no practical cap; a chain lowers it).
pub const TASK_EPSILON_MAX_DEFAULT: u64 = 1_000 * EPSILON_SCALE;

/// Serde defaults of the governance and economics parameters.
mod gov_defaults {
    use super::*;
    pub(super) fn deposit_min() -> u128 {
        GOV_DEPOSIT_MIN_DEFAULT
    }
    pub(super) fn voting_blocks() -> u64 {
        GOV_VOTING_BLOCKS_DEFAULT
    }
    pub(super) fn timelock_blocks() -> u64 {
        GOV_TIMELOCK_BLOCKS_DEFAULT
    }
    pub(super) fn execute_window_blocks() -> u64 {
        GOV_EXECUTE_WINDOW_BLOCKS_DEFAULT
    }
    pub(super) fn quorum_bps() -> u32 {
        GOV_QUORUM_BPS_DEFAULT
    }
    pub(super) fn threshold_bps() -> u32 {
        GOV_THRESHOLD_BPS_DEFAULT
    }
    pub(super) fn veto_bps() -> u32 {
        GOV_VETO_BPS_DEFAULT
    }
    pub(super) fn emission_treasury_bps() -> u32 {
        EMISSION_TREASURY_BPS_DEFAULT
    }
    pub(super) fn validator_commission_bps() -> u32 {
        VALIDATOR_COMMISSION_BPS_DEFAULT
    }
    pub(super) fn task_epsilon_max() -> u64 {
        TASK_EPSILON_MAX_DEFAULT
    }
}

fn epoch_blocks_default() -> u64 {
    EPOCH_BLOCKS_DEFAULT
}

fn validators_max_default() -> u32 {
    VALIDATORS_MAX_DEFAULT
}

fn validator_stake_min_default() -> u128 {
    VALIDATOR_STAKE_MIN_DEFAULT
}

fn block_bytes_max_default() -> u64 {
    BLOCK_BYTES_MAX_DEFAULT
}

/// Serde defaults of the inference-market parameters, so genesis files written before them load.
mod market_defaults {
    use super::*;
    pub(super) fn offer_bond_min() -> u128 {
        OFFER_BOND_MIN_DEFAULT
    }
    pub(super) fn offer_endpoint_bytes_max() -> u32 {
        OFFER_ENDPOINT_BYTES_MAX_DEFAULT
    }
    pub(super) fn offer_unbond_blocks() -> u64 {
        OFFER_UNBOND_BLOCKS_DEFAULT
    }
    pub(super) fn channel_expiry_max() -> u64 {
        CHANNEL_EXPIRY_MAX_DEFAULT
    }
    pub(super) fn dispute_window_blocks() -> u64 {
        DISPUTE_WINDOW_BLOCKS_DEFAULT
    }
    pub(super) fn dispute_ops_max() -> u64 {
        DISPUTE_OPS_MAX_DEFAULT
    }
    pub(super) fn dispute_model_bytes_max() -> u32 {
        DISPUTE_MODEL_BYTES_MAX_DEFAULT
    }
    pub(super) fn dispute_input_bytes_max() -> u32 {
        DISPUTE_INPUT_BYTES_MAX_DEFAULT
    }
    pub(super) fn receipt_output_bytes_max() -> u32 {
        RECEIPT_OUTPUT_BYTES_MAX_DEFAULT
    }
    pub(super) fn dispute_reward_bps() -> u32 {
        DISPUTE_REWARD_BPS_DEFAULT
    }
    pub(super) fn dispute_bond() -> u128 {
        DISPUTE_BOND_DEFAULT
    }
    pub(super) fn dispute_fee_per_byte() -> u128 {
        DISPUTE_FEE_PER_BYTE_DEFAULT
    }
}

/// Serde defaults of the coordinator-accountability parameters.
mod challenge_defaults {
    use super::*;
    pub(super) fn coordinator_bond() -> u128 {
        COORDINATOR_BOND_DEFAULT
    }
    pub(super) fn challenge_deposit() -> u128 {
        CHALLENGE_DEPOSIT_DEFAULT
    }
    pub(super) fn challenge_vote_blocks() -> u64 {
        CHALLENGE_VOTE_BLOCKS_DEFAULT
    }
    pub(super) fn challenge_reward_bps() -> u32 {
        CHALLENGE_REWARD_BPS_DEFAULT
    }
}

/// Every protocol limit, named. Part of genesis; the same for every replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Largest encoded signed transaction, bytes, of every kind but `ReceiptDispute`, which may
    /// be larger by the receipt output, model and input it carries
    /// ([`Params::dispute_tx_bytes_max`]).
    pub tx_bytes_max: u32,
    /// Most transactions in one block.
    pub block_txs_max: u32,
    /// Most bytes of one block's encoded transactions. It bounds a block on its own: a dispute
    /// may be far larger than other transactions, and `block_txs_max` disputes would be gigabytes.
    #[serde(default = "block_bytes_max_default")]
    pub block_bytes_max: u64,
    /// Smallest fee a transaction may pay, base units.
    #[serde(with = "crate::types::amount")]
    pub fee_min: u128,
    /// Blocks between an `Unstake` and the funds returning to the balance.
    pub unbonding_delay_blocks: u64,
    /// Longest chain id, bytes.
    pub chain_id_bytes_max: u32,
    /// Longest short string (schema tag, purpose, metric name), bytes.
    pub string_bytes_max: u32,
    /// Most purposes in one consent policy.
    pub dataset_purposes_max: u32,
    /// Most named task creators in one consent policy.
    pub consent_creators_max: u32,
    /// Most dataset ids in one task's dataset filter.
    pub task_datasets_max: u32,
    /// Most training rounds in one task.
    pub task_rounds_max: u32,
    /// Most metrics in one model registration.
    pub model_metrics_max: u32,
    /// Most unbonding entries one account may have in flight.
    pub unbonding_entries_max: u32,
    /// Blocks a round may stay open: a round opened at height `h` gets the deadline
    /// `h + round_timeout_blocks`, and from height `deadline + 1` anyone may close it as failed
    /// with `RoundExpire`. Positive. Absent from older genesis files, which get
    /// [`ROUND_TIMEOUT_BLOCKS_DEFAULT`].
    #[serde(default = "round_timeout_blocks_default")]
    pub round_timeout_blocks: u64,
    /// Blocks per validator epoch: epoch `e` covers heights `e·E ..= e·E + E − 1` (genesis is
    /// in epoch 0). The set of epoch `e + 1` is chosen by stake when the block at height
    /// `e·E + E − 2` is applied. At least [`EPOCH_BLOCKS_MIN`]; absent from older genesis files,
    /// which get [`EPOCH_BLOCKS_DEFAULT`].
    #[serde(default = "epoch_blocks_default")]
    pub epoch_blocks: u64,
    /// Most validators in one epoch's set (the top ones by stake). Positive.
    #[serde(default = "validators_max_default")]
    pub validators_max: u32,
    /// Least bonded stake, base units, for an account with a declared validator key to be
    /// chosen for a set. Genesis validators must hold it too.
    #[serde(default = "validator_stake_min_default", with = "crate::types::amount")]
    pub validator_stake_min: u128,
    /// Smallest bond an inference offer locks, base units (positive).
    #[serde(
        default = "market_defaults::offer_bond_min",
        with = "crate::types::amount"
    )]
    pub offer_bond_min: u128,
    /// Longest offer endpoint (a URL), bytes.
    #[serde(default = "market_defaults::offer_endpoint_bytes_max")]
    pub offer_endpoint_bytes_max: u32,
    /// Blocks between an `OfferWithdraw` and its bond returning to the provider. Greater than
    /// `channel_expiry_max + dispute_window_blocks`, so every receipt of a channel open at the
    /// withdrawal can still be disputed while the bond is there.
    #[serde(default = "market_defaults::offer_unbond_blocks")]
    pub offer_unbond_blocks: u64,
    /// Farthest a channel's expiry may lie ahead of the block that opens (or extends) it, blocks.
    /// Positive.
    #[serde(default = "market_defaults::channel_expiry_max")]
    pub channel_expiry_max: u64,
    /// Blocks after a channel's expiry during which its receipts may still be disputed.
    #[serde(default = "market_defaults::dispute_window_blocks")]
    pub dispute_window_blocks: u64,
    /// Most integer operations ([`deai_infer::QuantModel::ops`]) of an offered model: what one
    /// dispute's re-execution may cost every validator. `1..=`[`DISPUTE_OPS_MAX_LIMIT`].
    #[serde(default = "market_defaults::dispute_ops_max")]
    pub dispute_ops_max: u64,
    /// Largest quantized model blob a `ReceiptDispute` carries, bytes.
    /// `1..=`[`DISPUTE_MODEL_BYTES_MAX_LIMIT`].
    #[serde(default = "market_defaults::dispute_model_bytes_max")]
    pub dispute_model_bytes_max: u32,
    /// Largest query input a `ReceiptDispute` carries, bytes. Positive.
    #[serde(default = "market_defaults::dispute_input_bytes_max")]
    pub dispute_input_bytes_max: u32,
    /// Largest output a query receipt carries, bytes (at least 12: one logit).
    #[serde(default = "market_defaults::receipt_output_bytes_max")]
    pub receipt_output_bytes_max: u32,
    /// Share of a slashed bond paid to the disputer, basis points (`0..=10_000`); the rest is
    /// burned (not paid to the treasury, so no vote can profit from slashing a provider).
    #[serde(default = "market_defaults::dispute_reward_bps")]
    pub dispute_reward_bps: u32,
    /// What a failed dispute costs its sender on top of its fee, base units, paid to the
    /// provider it wrongly accused.
    #[serde(
        default = "market_defaults::dispute_bond",
        with = "crate::types::amount"
    )]
    pub dispute_bond: u128,
    /// Fee a `ReceiptDispute` pays per byte of the model and input it carries, on top of
    /// `fee_min`, base units: validators download, store and decode those bytes.
    #[serde(
        default = "market_defaults::dispute_fee_per_byte",
        with = "crate::types::amount"
    )]
    pub dispute_fee_per_byte: u128,
    /// What a coordinator locks, base units, with every round it opens: what a challenge upheld
    /// against that round takes. Returned when the task settles or is cancelled.
    #[serde(
        default = "challenge_defaults::coordinator_bond",
        with = "crate::types::amount"
    )]
    pub coordinator_bond: u128,
    /// Blocks after a `TaskClose` during which its rounds may still be challenged; rewards are
    /// paid and the model registered only after it (and after every challenge is resolved).
    /// 0 settles at the `TaskClose` itself: rounds can then be challenged only while the task
    /// trains.
    #[serde(default)]
    pub challenge_window_blocks: u64,
    /// What a `RoundChallenge` locks, base units, on top of its fee: returned if the challenge
    /// is upheld or undecided, paid to the coordinator if rejected.
    #[serde(
        default = "challenge_defaults::challenge_deposit",
        with = "crate::types::amount"
    )]
    pub challenge_deposit: u128,
    /// Blocks the validators have to vote on a challenge; one not decided by then is undecided
    /// (its deposit returns, nothing is slashed). Positive.
    #[serde(default = "challenge_defaults::challenge_vote_blocks")]
    pub challenge_vote_blocks: u64,
    /// Share of a slashed coordinator bond paid to the challenger, basis points
    /// (`0..=10_000`); the rest goes into the task's escrow.
    #[serde(default = "challenge_defaults::challenge_reward_bps")]
    pub challenge_reward_bps: u32,
    /// Smallest deposit a `Propose` locks, base units (positive): returned when the vote
    /// reaches quorum and is not vetoed, burned otherwise.
    #[serde(default = "gov_defaults::deposit_min", with = "crate::types::amount")]
    pub gov_deposit_min: u128,
    /// Blocks a proposal is open for votes, counted from the block that includes it. Positive.
    #[serde(default = "gov_defaults::voting_blocks")]
    pub gov_voting_blocks: u64,
    /// Blocks between the end of a passed vote and the first height its `Execute` may land.
    #[serde(default = "gov_defaults::timelock_blocks")]
    pub gov_timelock_blocks: u64,
    /// Blocks after the timelock during which a passed proposal may be executed; after that it
    /// expires unexecuted. Positive.
    #[serde(default = "gov_defaults::execute_window_blocks")]
    pub gov_execute_window_blocks: u64,
    /// Share of the bonded stake at a proposal's start that must vote (abstain counts) for the
    /// vote to count, basis points (`1..=10_000`).
    #[serde(default = "gov_defaults::quorum_bps")]
    pub gov_quorum_bps: u32,
    /// A proposal passes when its yes weight is more than this share of yes + no + veto,
    /// basis points (`0..10_000`, so a unanimous yes always passes).
    #[serde(default = "gov_defaults::threshold_bps")]
    pub gov_threshold_bps: u32,
    /// A proposal is vetoed (and its deposit burned) when its veto weight is more than this
    /// share of all the weight that voted, basis points (`1..=10_000`).
    #[serde(default = "gov_defaults::veto_bps")]
    pub gov_veto_bps: u32,
    /// Tokens minted with every block, base units; 0 turns emissions off.
    #[serde(default, with = "crate::types::amount")]
    pub emission_per_block: u128,
    /// Share of each block's emission paid to the treasury, basis points (`0..=10_000`); the
    /// rest goes to the epoch's validators and their delegators at the epoch's end.
    #[serde(default = "gov_defaults::emission_treasury_bps")]
    pub emission_treasury_bps: u32,
    /// Share of what delegated stake earns that its validator keeps, basis points
    /// (`0..=10_000`).
    #[serde(default = "gov_defaults::validator_commission_bps")]
    pub validator_commission_bps: u32,
    /// Minted to a task's coordinator for each round that completed, when the task settles
    /// (after its challenge window), base units. 0 pays nothing.
    #[serde(default, with = "crate::types::amount")]
    pub coordinator_round_reward: u128,
    /// What registering a dataset locks, base units: returned when its consent is revoked. The
    /// anti-Sybil price of an identity in the owner set (docs/governance.md).
    #[serde(default, with = "crate::types::amount")]
    pub dataset_bond: u128,
    /// Largest total ε (fixed point, [`EPSILON_SCALE`]) a task may ask for. Positive.
    #[serde(default = "gov_defaults::task_epsilon_max")]
    pub task_epsilon_max: u64,
    /// Minted to the sender of every upheld round challenge or receipt dispute, on top of its
    /// share of the slashed bond, base units. Below what a slash burns or returns to the escrow
    /// (checked), so a liar and its own challenger lose more than they mint.
    #[serde(default, with = "crate::types::amount")]
    pub challenge_emission_reward: u128,
    /// The smallest royalty share any offer pays its model's data owners, basis points
    /// (`0..=10_000`), whatever the consent policies ask (each may ask more).
    #[serde(default)]
    pub royalty_floor_bps: u32,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            tx_bytes_max: 4096,
            block_txs_max: 10_000,
            block_bytes_max: BLOCK_BYTES_MAX_DEFAULT,
            fee_min: 1,
            unbonding_delay_blocks: 100,
            chain_id_bytes_max: 64,
            string_bytes_max: 64,
            dataset_purposes_max: 16,
            consent_creators_max: 32,
            task_datasets_max: 64,
            task_rounds_max: 10_000,
            model_metrics_max: 16,
            unbonding_entries_max: 32,
            round_timeout_blocks: ROUND_TIMEOUT_BLOCKS_DEFAULT,
            epoch_blocks: EPOCH_BLOCKS_DEFAULT,
            validators_max: VALIDATORS_MAX_DEFAULT,
            validator_stake_min: VALIDATOR_STAKE_MIN_DEFAULT,
            offer_bond_min: OFFER_BOND_MIN_DEFAULT,
            offer_endpoint_bytes_max: OFFER_ENDPOINT_BYTES_MAX_DEFAULT,
            offer_unbond_blocks: OFFER_UNBOND_BLOCKS_DEFAULT,
            channel_expiry_max: CHANNEL_EXPIRY_MAX_DEFAULT,
            dispute_window_blocks: DISPUTE_WINDOW_BLOCKS_DEFAULT,
            dispute_ops_max: DISPUTE_OPS_MAX_DEFAULT,
            dispute_model_bytes_max: DISPUTE_MODEL_BYTES_MAX_DEFAULT,
            dispute_input_bytes_max: DISPUTE_INPUT_BYTES_MAX_DEFAULT,
            receipt_output_bytes_max: RECEIPT_OUTPUT_BYTES_MAX_DEFAULT,
            dispute_reward_bps: DISPUTE_REWARD_BPS_DEFAULT,
            dispute_bond: DISPUTE_BOND_DEFAULT,
            dispute_fee_per_byte: DISPUTE_FEE_PER_BYTE_DEFAULT,
            coordinator_bond: COORDINATOR_BOND_DEFAULT,
            challenge_window_blocks: 0,
            challenge_deposit: CHALLENGE_DEPOSIT_DEFAULT,
            challenge_vote_blocks: CHALLENGE_VOTE_BLOCKS_DEFAULT,
            challenge_reward_bps: CHALLENGE_REWARD_BPS_DEFAULT,
            gov_deposit_min: GOV_DEPOSIT_MIN_DEFAULT,
            gov_voting_blocks: GOV_VOTING_BLOCKS_DEFAULT,
            gov_timelock_blocks: GOV_TIMELOCK_BLOCKS_DEFAULT,
            gov_execute_window_blocks: GOV_EXECUTE_WINDOW_BLOCKS_DEFAULT,
            gov_quorum_bps: GOV_QUORUM_BPS_DEFAULT,
            gov_threshold_bps: GOV_THRESHOLD_BPS_DEFAULT,
            gov_veto_bps: GOV_VETO_BPS_DEFAULT,
            emission_per_block: 0,
            emission_treasury_bps: EMISSION_TREASURY_BPS_DEFAULT,
            validator_commission_bps: VALIDATOR_COMMISSION_BPS_DEFAULT,
            coordinator_round_reward: 0,
            dataset_bond: 0,
            task_epsilon_max: TASK_EPSILON_MAX_DEFAULT,
            royalty_floor_bps: 0,
            challenge_emission_reward: 0,
        }
    }
}

impl Params {
    /// Checks every rule a parameter set must satisfy on its own (what a genesis and every
    /// governance change must keep).
    pub fn validate(&self) -> Result<(), GenesisError> {
        let positive = [
            ("tx_bytes_max", u64::from(self.tx_bytes_max)),
            ("block_txs_max", u64::from(self.block_txs_max)),
            ("string_bytes_max", u64::from(self.string_bytes_max)),
            ("round_timeout_blocks", self.round_timeout_blocks),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(GenesisError::Param {
                    name,
                    value: value.to_string(),
                    reason: "must be positive",
                });
            }
        }
        if self.epoch_blocks < crate::params::EPOCH_BLOCKS_MIN {
            return Err(GenesisError::Param {
                name: "epoch_blocks",
                value: self.epoch_blocks.to_string(),
                reason: "must be at least 4 (the next set is chosen two blocks before an epoch ends)",
            });
        }
        if self.validators_max == 0 {
            return Err(GenesisError::Param {
                name: "validators_max",
                value: self.validators_max.to_string(),
                reason: "must be positive",
            });
        }
        validate_market(self)?;
        validate_governance(self)
    }

    /// The epoch height `height` belongs to.
    pub fn epoch_of(&self, height: u64) -> u64 {
        height / self.epoch_blocks.max(1)
    }

    /// The last height of epoch `epoch` (the boundary block its set certifies last), or `None`
    /// past `u64::MAX`.
    pub fn epoch_last(&self, epoch: u64) -> Option<u64> {
        epoch
            .checked_add(1)?
            .checked_mul(self.epoch_blocks.max(1))?
            .checked_sub(1)
    }

    /// Whether applying the block at `height` chooses the next epoch's set (the second-to-last
    /// height of its epoch).
    pub fn chooses_next_set(&self, height: u64) -> bool {
        let e = self.epoch_blocks.max(1);
        height % e == e.saturating_sub(2)
    }

    /// Largest encoded `ReceiptDispute` transaction, bytes: `tx_bytes_max` plus the receipt
    /// output, model and input it may carry at their bounds (saturating).
    pub fn dispute_tx_bytes_max(&self) -> usize {
        (self.tx_bytes_max as usize)
            .saturating_add(self.receipt_output_bytes_max as usize)
            .saturating_add(self.dispute_model_bytes_max as usize)
            .saturating_add(self.dispute_input_bytes_max as usize)
    }

    /// The decoding bounds derived from these parameters.
    pub fn limits(&self) -> Limits {
        Limits {
            tx_bytes_max: self.dispute_tx_bytes_max().max(self.tx_bytes_max as usize),
            tx_standard_bytes_max: self.tx_bytes_max as usize,
            receipt_output_bytes_max: self.receipt_output_bytes_max as usize,
            dispute_model_bytes_max: self.dispute_model_bytes_max as usize,
            dispute_input_bytes_max: self.dispute_input_bytes_max as usize,
            offer_endpoint_bytes_max: self.offer_endpoint_bytes_max as usize,
            block_txs_max: self.block_txs_max as usize,
            block_bytes_max: usize::try_from(self.block_bytes_max).unwrap_or(usize::MAX),
            chain_id_bytes_max: self.chain_id_bytes_max as usize,
            string_bytes_max: self.string_bytes_max as usize,
            dataset_purposes_max: self.dataset_purposes_max as usize,
            consent_creators_max: self.consent_creators_max as usize,
            task_datasets_max: self.task_datasets_max as usize,
            model_metrics_max: self.model_metrics_max as usize,
        }
    }
}

/// Decoding bounds (the codec `Read::Cfg` of transactions and blocks), derived from [`Params`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest encoded signed transaction of any kind, bytes: a `ReceiptDispute` at its bound
    /// ([`Params::dispute_tx_bytes_max`]). What a block or gossip decoder bounds one
    /// transaction's length by.
    pub tx_bytes_max: usize,
    /// Largest encoded signed transaction of every other kind ([`Params::tx_bytes_max`]).
    pub tx_standard_bytes_max: usize,
    /// Largest receipt output, bytes.
    pub receipt_output_bytes_max: usize,
    /// Largest model blob a dispute carries, bytes.
    pub dispute_model_bytes_max: usize,
    /// Largest query input a dispute carries, bytes.
    pub dispute_input_bytes_max: usize,
    /// Longest offer endpoint, bytes.
    pub offer_endpoint_bytes_max: usize,
    /// Most transactions in one block.
    pub block_txs_max: usize,
    /// Longest chain id, bytes.
    pub chain_id_bytes_max: usize,
    /// Longest short string, bytes.
    pub string_bytes_max: usize,
    /// Most purposes in one consent policy.
    pub dataset_purposes_max: usize,
    /// Most named task creators in one consent policy.
    pub consent_creators_max: usize,
    /// Most dataset ids in a task filter.
    pub task_datasets_max: usize,
    /// Most metrics in a model registration.
    pub model_metrics_max: usize,
    /// Most bytes of one block's encoded transactions.
    pub block_bytes_max: usize,
}

fn validate_market(p: &Params) -> Result<(), GenesisError> {
    let param = |name, value: String, reason| GenesisError::Param {
        name,
        value,
        reason,
    };
    let positive = [
        ("offer_bond_min", p.offer_bond_min),
        (
            "offer_endpoint_bytes_max",
            u128::from(p.offer_endpoint_bytes_max),
        ),
        ("channel_expiry_max", u128::from(p.channel_expiry_max)),
        (
            "dispute_input_bytes_max",
            u128::from(p.dispute_input_bytes_max),
        ),
        ("challenge_vote_blocks", u128::from(p.challenge_vote_blocks)),
    ];
    for (name, value) in positive {
        if value == 0 {
            return Err(param(name, value.to_string(), "must be positive"));
        }
    }
    if !(1..=DISPUTE_OPS_MAX_LIMIT).contains(&p.dispute_ops_max) {
        return Err(param(
            "dispute_ops_max",
            p.dispute_ops_max.to_string(),
            "must be in 1..=2^30 (a dispute's re-execution is bounded work for every validator)",
        ));
    }
    if !(1..=DISPUTE_MODEL_BYTES_MAX_LIMIT).contains(&p.dispute_model_bytes_max) {
        return Err(param(
            "dispute_model_bytes_max",
            p.dispute_model_bytes_max.to_string(),
            "must be in 1..=16 MiB",
        ));
    }
    let block_bytes = usize::try_from(p.block_bytes_max).unwrap_or(usize::MAX);
    if p.block_bytes_max > BLOCK_BYTES_MAX_LIMIT || block_bytes < p.dispute_tx_bytes_max() {
        return Err(param(
            "block_bytes_max",
            p.block_bytes_max.to_string(),
            "must be at most 256 MiB and hold the largest dispute (tx_bytes_max + \
             receipt_output_bytes_max + dispute_model_bytes_max + dispute_input_bytes_max)",
        ));
    }
    if p.receipt_output_bytes_max < 12 {
        return Err(param(
            "receipt_output_bytes_max",
            p.receipt_output_bytes_max.to_string(),
            "must be at least 12 (an output of one logit)",
        ));
    }
    for (name, bps) in [
        ("dispute_reward_bps", p.dispute_reward_bps),
        ("challenge_reward_bps", p.challenge_reward_bps),
    ] {
        if bps > BPS_SCALE {
            return Err(param(
                name,
                bps.to_string(),
                "must be at most 10000 (the whole bond)",
            ));
        }
    }
    let reach = p
        .channel_expiry_max
        .checked_add(p.dispute_window_blocks)
        .filter(|&reach| p.offer_unbond_blocks > reach);
    if reach.is_none() {
        return Err(param(
            "offer_unbond_blocks",
            p.offer_unbond_blocks.to_string(),
            "must exceed channel_expiry_max + dispute_window_blocks, so a dispute can still reach \
             a withdrawn offer's bond",
        ));
    }
    Ok(())
}

fn validate_governance(p: &Params) -> Result<(), GenesisError> {
    let param = |name, value: String, reason| GenesisError::Param {
        name,
        value,
        reason,
    };
    let positive = [
        ("gov_deposit_min", p.gov_deposit_min),
        ("gov_voting_blocks", u128::from(p.gov_voting_blocks)),
        (
            "gov_execute_window_blocks",
            u128::from(p.gov_execute_window_blocks),
        ),
        ("task_epsilon_max", u128::from(p.task_epsilon_max)),
        ("gov_quorum_bps", u128::from(p.gov_quorum_bps)),
        ("gov_veto_bps", u128::from(p.gov_veto_bps)),
    ];
    for (name, value) in positive {
        if value == 0 {
            return Err(param(name, value.to_string(), "must be positive"));
        }
    }
    for (name, bps) in [
        ("gov_quorum_bps", p.gov_quorum_bps),
        ("gov_veto_bps", p.gov_veto_bps),
        ("emission_treasury_bps", p.emission_treasury_bps),
        ("validator_commission_bps", p.validator_commission_bps),
        ("royalty_floor_bps", p.royalty_floor_bps),
    ] {
        if bps > BPS_SCALE {
            return Err(param(
                name,
                bps.to_string(),
                "must be at most 10000 (the whole)",
            ));
        }
    }
    // A liar colluding with its challenger loses the unrewarded part of the smallest bond a
    // slash takes; the minted reward must stay below it, or lying and challenging pays.
    let kept = |bond: u128, bps: u32| {
        bond.saturating_mul(u128::from(BPS_SCALE.saturating_sub(bps))) / u128::from(BPS_SCALE)
    };
    let reward = p.challenge_emission_reward;
    if reward > 0
        && (reward >= kept(p.coordinator_bond, p.challenge_reward_bps)
            || reward >= kept(p.offer_bond_min, p.dispute_reward_bps))
    {
        return Err(param(
            "challenge_emission_reward",
            reward.to_string(),
            "must stay below the unrewarded part of coordinator_bond and of offer_bond_min, so \
             that lying and challenging oneself never pays",
        ));
    }
    if p.gov_threshold_bps >= BPS_SCALE {
        return Err(param(
            "gov_threshold_bps",
            p.gov_threshold_bps.to_string(),
            "must be below 10000, or no proposal could pass",
        ));
    }
    Ok(())
}
