//! The replicated deai ledger: Commonware simplex consensus, mempool, durable storage and queries.
//!
//! A validator runs Commonware `simplex` consensus (ed25519 votes, round-robin leaders) with
//! `marshal` delivering finalized blocks in height order. Each finalized block is appended to a
//! fsynced block store, then applied to the [`deai_ledger::State`], then acknowledged, then recorded
//! (receipts, transaction index) on disk, with a state snapshot every few thousand transactions;
//! a restart restores the newest snapshot, replays the stored blocks after it and resumes at the last
//! durable height with the same state root. Memory holds the state and a window of recent blocks,
//! not the history. One validator finalizes alone over the same code path as many.
//!
//! Entry points: [`start`] (real network, `p2p::authenticated`) and [`start_with_network`]
//! (caller-provided channels, e.g. `p2p::simulated` under the deterministic runtime). Both
//! return a [`Handle`] for submitting transactions and reading finalized state.
//!
//! Modules: [`block`] (format and codec), [`mempool`] (pure admission/selection policy),
//! `application` (propose/verify), `executor` (durable execution), `engine` (wiring), `epochs`
//! (one consensus engine per validator set),
//! `telemetry` (the `deai_*` metrics, registered in the runtime's registry beside Commonware's).

pub mod blob_exchange;
pub mod block;
mod config;
mod error;
mod handle;
pub mod light;
pub mod mempool;

mod application;
mod engine;
mod epochs;
mod executor;
#[cfg(feature = "test-utils")]
pub mod faults;
mod gossip;
mod history;
mod network;
mod replica;
mod snapshot;
mod stores;
mod telemetry;

pub use block::{Block, BlockCfg, BlockDigest};
pub use config::Config;
pub use engine::{Channels, channel, max_message_size, start_with_network};
pub use epochs::PeerSets;
pub use error::{ChainError, MempoolError};
pub use handle::{ChainMetrics, Finality, FinalizedBlock, Handle, SetChange, Status, TxStatus};
pub use history::SnapshotPolicy;
pub use network::start;
