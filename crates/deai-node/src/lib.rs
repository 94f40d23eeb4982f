//! The deai node daemon: HTTP API, blob store and roles wired to the chain.
//!
//! [`run::run`] starts a validator on the Commonware tokio runtime with the HTTP API ([`api`]) beside
//! it; [`init::init`] makes a data directory; [`client::Client`] talks to a node's API.

pub mod api;
pub mod audit;
pub mod auth;
pub mod blobs;
pub mod client;
pub mod config;
pub mod fed;
pub mod init;
pub mod keyfile;
pub mod run;
