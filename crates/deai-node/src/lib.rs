//! The deai node daemon: HTTP API, blob store and roles wired to the chain.
//!
//! [`run::run`] starts a validator on the Commonware tokio runtime with the HTTP API ([`api`]) beside
//! it; [`init::init`] makes a data directory; [`client::Client`] talks to a node's API and sends
//! transactions ([`client::Client::send`]), reading answers into the types of [`api::types`]
//! (also served as OpenAPI at `/v1/openapi.json`).
//! [`blobs`] stores models and updates by their BLAKE3 hash; [`auth`] signs and checks every
//! message between nodes. [`roles`] runs the data owner and coordinator over HTTP, driving the
//! pure round protocol of [`fed`] (the `deai-fed` crate); [`audit`] holds the checks anyone
//! runs from public data (chain replay, task re-verification, model lineage); [`light_client`]
//! reads the ledger from a validator it need not trust (certified roots, checked entries); [`config`],
//! [`init`] and [`keyfile`] make and read a node's data directory.

pub mod agent;
pub mod api;
pub mod audit;
pub mod auth;
pub mod blob_access;
pub mod blob_exchange;
pub mod blobs;
pub mod challenge_voter;
pub mod client;
pub mod config;
pub mod explorer;
pub mod http;
pub mod init;
pub mod keyfile;
pub mod light_client;
pub mod roles;
pub mod run;
pub mod testnet;

/// The federated-round protocol (its own pure crate; re-exported for the roles and the CLI).
pub use deai_fed as fed;
