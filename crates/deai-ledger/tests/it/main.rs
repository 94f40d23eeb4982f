//! The ledger's integration tests, in one test binary (each module was a file of its own; one
//! binary links the dependency tree once). Each module's header says what it covers.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod bad_tx;
mod codec;
mod common;
mod lifecycle;
mod props;
mod vectors;
