//! Federated rounds between real nodes, pure and deterministic: the same code runs in the
//! in-process `harness` (feature `harness`) and between data-owner and coordinator nodes over
//! HTTP (the node's roles drive it; `deai_node::fed` re-exports this crate).
//!
//! No I/O, clocks, threads or sockets here: bytes in, bytes out, randomness from seeds or RNGs
//! passed in. Cargo keeps it so (no async runtime, HTTP or chain dependency) and `clippy.toml`
//! bans clocks, ambient randomness and threads.
//!
//! - [`spec`]: the task spec (what `TaskCreate.model_spec` hashes) and its δ split;
//! - [`weights`], [`data`], [`record`]: the blob formats (safetensors weights, datasets, the
//!   unmasking record, the aggregate);
//! - [`groups`]: the round plan every party recomputes (scoring groups, SecAgg parameters,
//!   quantizer, noise);
//! - [`privacy`]: the ε schedule a task records (per dataset, no amplification), recomputed
//!   from the spec (owners refuse a task whose schedule undercharges);
//! - [`owner`] and [`coordinator`]: the two sides of a round, in `deai-secagg`'s sans-IO shape
//!   (`handle_*` in, `poll_transmit` out, `advance` at the driver's deadline);
//! - [`strategy`] and [`score`]: the server step (the spec's `deai_learn` strategy over the
//!   groups' sums, state kept across rounds) and contribution scores;
//! - [`verify`]: re-verification of a recorded round from its blobs;
//! - [`contribution`]: each owner's contribution estimated from group scores across rounds;
//! - [`attack`]: owners that poison the model from inside the protocol (robustness tests and
//!   `deai bench fed-robust`);
//! - `harness` (feature `harness`): a whole task in one process, the template for the HTTP roles.
//!
//! A round, as the ledger sees it: `RoundOpen` (a count and the plan's
//! [`groups::RoundPlan::secagg`]; the ledger draws the selection and charges each dataset from
//! the schedule of [`privacy::schedule`]) →
//! owners and coordinator exchange SecAgg messages → `RoundResult`
//! ([`coordinator::RoundOutcome::round_result`]) with the blobs stored by hash.

#[cfg(test)]
mod adversary;
pub mod attack;
pub mod claim_check;
pub mod contribution;
pub mod coordinator;
pub mod data;
pub mod groups;
#[cfg(any(test, feature = "harness"))]
pub mod harness;
pub mod import;
pub mod int_loss;
pub mod lies;
pub mod owner;
pub mod privacy;
pub mod record;
#[cfg(any(test, feature = "harness"))]
pub mod robustness;
pub mod schema;
pub mod score;
pub mod spec;
pub mod strategy;
pub mod verify;
pub mod weights;

use std::collections::BTreeMap;

use deai_ledger::Digest;
use ed25519_dalek::VerifyingKey;
use thiserror::Error;

pub use claim_check::{ClaimCheckError, check_claim, claim_blobs};
pub use coordinator::{CoordinatorRound, Phase, Rejected, RoundOutcome};
pub use deai_secagg::msg::Step;
pub use owner::OwnerRound;
pub use spec::{SpecError, TaskSpec};
pub use verify::{Mismatch, RecordedRound, RoundCheck, check_round, verify_round};

/// The public facts of a round, all from the ledger (`RoundOpen` and the dataset registry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundInfo {
    /// The task.
    pub task: u64,
    /// The round number (from 1).
    pub round: u32,
    /// The ledger's round seed (`Round::seed`).
    pub seed: Digest,
    /// BLAKE3 of the global model the round trains from.
    pub global_model: Digest,
    /// Selected dataset ids, strictly ascending.
    pub selected: Vec<u64>,
    /// Each selected dataset's owner identity (the node key that signs its SecAgg adverts).
    pub identities: BTreeMap<u64, VerifyingKey>,
}

/// Why a round step failed.
#[derive(Debug, Error)]
pub enum FedError {
    /// The task spec is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The validation loss could not be computed in integers.
    #[error("score: {0}")]
    Score(#[from] int_loss::IntLossError),
    /// Weights did not encode or decode.
    #[error("weights: {0}")]
    Weights(#[from] weights::WeightsError),
    /// A dataset blob was refused.
    #[error("dataset: {0}")]
    Data(#[from] data::DataError),
    /// A record or aggregate blob was refused.
    #[error("record: {0}")]
    Record(#[from] record::RecordError),
    /// The recorded privacy spending or the spec's σ is refused.
    #[error("privacy: {0}")]
    Privacy(#[from] privacy::PrivacyError),
    /// The selection is malformed.
    #[error("selection: {0}")]
    Selection(String),
    /// Too few datasets were selected to form one scoring group.
    #[error("{got} datasets selected, a round needs at least {need} (group_size_min)")]
    TooFewSelected {
        /// Datasets selected.
        got: usize,
        /// Smallest group.
        need: u32,
    },
    /// The coordinator asked an owner to sign a survivor list shorter than its group may have.
    #[error("{have} survivors listed, the group needs {need} before its members unmask it")]
    TooFewSurvivors {
        /// Survivors listed.
        have: usize,
        /// Survivors required.
        need: u32,
    },
    /// A selected dataset has no owner identity in the round info.
    #[error("no owner identity for selected dataset {0}")]
    NoIdentity(u64),
    /// The dataset is not selected for this round.
    #[error("dataset {0} is not selected for this round")]
    NotSelected(u64),
    /// The signing key is not the identity registered for the dataset.
    #[error("signing key is not the registered owner identity of dataset {0}")]
    WrongIdentity(u64),
    /// The global model has the wrong number of parameters.
    #[error("global model has {got} parameters, the spec's model has {expected}")]
    GlobalLength {
        /// Parameters of the model.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// The global model holds NaN or an infinity.
    #[error("global model value {index} is not finite")]
    GlobalNonFinite {
        /// Index of the first bad value.
        index: usize,
    },
    /// A global-model blob does not hash to the round's recorded global model.
    #[error("global model blob hashes to {got}, the round names {expected}")]
    ModelHash {
        /// Recorded hash.
        expected: Digest,
        /// Hash of the bytes.
        got: Digest,
    },
    /// The local data does not fit the model or is empty.
    #[error("local data: {0}")]
    LocalData(String),
    /// Local training produced a non-finite update.
    #[error("local training diverged: update value {index} is not finite (lower the lr)")]
    Diverged {
        /// Index of the first bad value.
        index: usize,
    },
    /// The noise standard deviation is unusable.
    #[error("noise std {0} is not finite and positive")]
    Noise(f64),
    /// Quantization failed.
    #[error("quantization: {0}")]
    Quant(#[from] deai_secagg::quant::QuantError),
    /// A group's SecAgg configuration is inconsistent.
    #[error("secagg config: {0}")]
    Config(#[from] deai_secagg::config::ConfigError),
    /// The SecAgg client refused a server message (the owner's round is over).
    #[error("secagg client: {0}")]
    Client(#[from] deai_secagg::client::ClientError),
    /// A server message did not decode.
    #[error("server message does not decode: {0}")]
    ServerMessage(deai_secagg::wire::DecodeError),
    /// An internal protocol invariant broke.
    #[error("protocol invariant: {0}")]
    Protocol(&'static str),
    /// A group sum has the wrong length.
    #[error("group sum of {got} words, expected {expected}")]
    AggregateLength {
        /// Words expected.
        expected: usize,
        /// Words found.
        got: usize,
    },
    /// The server state was asked to step a round out of order.
    #[error("strategy state expects round {expected}, was given round {got}")]
    StrategyOrder {
        /// The next round it can step.
        expected: u32,
        /// The round given.
        got: u32,
    },
    /// The strategy refused the round's group means.
    #[error("strategy: {0}")]
    Strategy(String),
    /// `finish` before every group ended.
    #[error("round not finished: some group still runs (advance first)")]
    NotFinished,
    /// An attack for robustness tests is unknown or unusable.
    #[error("attack: {0}")]
    Attack(String),
}
