//! deai-node's integration tests, one module per concern, in one binary: every test binary links
//! the whole dependency tree again, so a crate has one.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod auth_http;
mod blobs;
mod common;
mod governance;
mod hosted_owners;
mod http_limits;
mod light_client;
mod metrics;
mod provider;
mod roles_edges;
mod tx_batch;
mod writes_and_fetches;
