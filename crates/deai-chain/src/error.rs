//! Errors of the chain: starting it, and submitting transactions.

use crate::mempool::PoolError;
use deai_ledger::TxError;

/// Why the chain could not start.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The genesis file does not describe a valid state.
    #[error("invalid genesis: {0}")]
    Genesis(String),
    /// A participant has no known network address.
    #[error("no address for participant {0}")]
    MissingAddress(String),
    /// The participant list repeats a key or is empty.
    #[error("invalid participant set: {0}")]
    Participants(String),
    /// A snapshot could not be written or read.
    #[error("snapshot: {0}")]
    Snapshot(String),
    /// The finalized history (executed blocks, transaction index) could not be opened, read or
    /// written.
    #[error("history storage: {0}")]
    History(String),
    /// A stored block failed to replay (corrupt or foreign storage).
    #[error("stored block at height {height} does not replay: {reason}")]
    Replay {
        /// Height of the offending block.
        height: u64,
        /// What was wrong.
        reason: String,
    },
}

/// Why a transaction was not admitted to the mempool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// The transaction fails the ledger's checks (signature, chain id, size, fee, nonce, ...).
    #[error("transaction rejected: {0}")]
    Invalid(TxError),
    /// The mempool's policy refused it (duplicate, nonce window, full, ...).
    #[error("mempool: {0}")]
    Pool(#[from] PoolError),
    /// The transaction is already in a finalized block.
    #[error("transaction already finalized at height {height}")]
    AlreadyFinalized {
        /// The block height that includes it.
        height: u64,
    },
}

impl From<TxError> for MempoolError {
    fn from(e: TxError) -> Self {
        Self::Invalid(e)
    }
}

impl MempoolError {
    /// A stable machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(e) => e.code(),
            Self::Pool(PoolError::Duplicate) => "duplicate_tx",
            Self::Pool(PoolError::NonceTooLow { .. }) => "nonce_too_low",
            Self::Pool(PoolError::NonceTooHigh { .. }) => "nonce_too_high",
            Self::Pool(PoolError::ReplacementUnderpriced { .. }) => "replacement_underpriced",
            Self::Pool(PoolError::SenderFull { .. }) => "sender_mempool_full",
            Self::Pool(PoolError::Unaffordable { .. }) => "pending_unaffordable",
            Self::Pool(PoolError::Full { .. }) => "mempool_full",
            Self::Pool(PoolError::TooLarge { .. }) => "tx_too_large",
            Self::AlreadyFinalized { .. } => "already_finalized",
        }
    }
}
