//! The `deai` binary's integration tests, in one test binary (each module was a file of its own;
//! one binary links the dependency tree once). Each module's header says what it covers.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod bench_smoke;
mod common;
mod crash;
mod demo;
mod explorer;
mod federation;
mod gov;
mod http_errors;
mod limits;
