//! deai-chain's integration tests, one module per concern, in one binary: every test binary links
//! the whole dependency tree again, so a crate has one.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;
mod epochs;
mod faults;
mod history;
mod light;
mod mempool_admission;
mod replicas;
mod single_validator;
mod slow_executor;
