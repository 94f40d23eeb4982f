//! The crate's error type: every variant carries the offending values.

use std::path::PathBuf;

/// Everything that can go wrong in deai-learn.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// A parameter or update vector does not have the model's length.
    #[error("wrong length: expected {expected} values, got {found}")]
    WrongLength {
        /// Length the model needs.
        expected: usize,
        /// Length received.
        found: usize,
    },
    /// A vector holds NaN or an infinity.
    #[error("non-finite value {value} at index {index}")]
    NonFinite {
        /// Position of the first bad value.
        index: usize,
        /// The bad value.
        value: f32,
    },
    /// A reply claims zero training samples, so it cannot be weighted.
    #[error("client {client} reported zero samples")]
    ZeroSamples {
        /// The client.
        client: u64,
    },
    /// A client has no data to train on.
    #[error("client {client} holds no samples")]
    EmptyClient {
        /// The client.
        client: usize,
    },
    /// A round ended with nothing to aggregate.
    #[error("round {round}: no replies to aggregate")]
    NoReplies {
        /// The round.
        round: u64,
    },
    /// A robust rule needs more replies than it got.
    #[error("{rule} needs at least {needed} replies, got {got}")]
    TooFewReplies {
        /// The rule.
        rule: &'static str,
        /// How many it needs.
        needed: usize,
        /// How many it got.
        got: usize,
    },
    /// A data file is missing; `hint` says how to get it.
    #[error("missing data file {path}: {hint}")]
    MissingData {
        /// The file looked for.
        path: PathBuf,
        /// How to install it.
        hint: &'static str,
    },
    /// A data file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A data file's content is not what the loader expects.
    #[error("bad data in {file}: {reason}")]
    BadData {
        /// The file (or data set) name.
        file: String,
        /// What was wrong.
        reason: String,
    },
    /// A configuration value is out of range or unknown.
    #[error("bad config {field} = {value}: {reason}")]
    BadConfig {
        /// The field.
        field: &'static str,
        /// The value given.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// A task file could not be found or parsed.
    #[error("unknown task {0:?} (known: digits-100)")]
    UnknownTask(String),
}

impl LearnError {
    /// Shorthand for a [`LearnError::BadConfig`].
    pub fn config(field: &'static str, value: impl ToString, reason: impl ToString) -> Self {
        Self::BadConfig {
            field,
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }

    /// Shorthand for a [`LearnError::BadData`].
    pub fn data(file: impl ToString, reason: impl ToString) -> Self {
        Self::BadData {
            file: file.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, LearnError>;
