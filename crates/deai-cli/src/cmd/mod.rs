//! One module per `deai` subcommand.

pub mod account;
pub mod agent;
pub mod bench;
pub mod channel;
pub mod common;
pub mod dataset;
pub mod demo;
pub mod dp;
pub mod infer;
pub mod init;
pub mod key;
pub mod ledger;
pub mod lineage;
pub mod model;
pub mod node;
pub mod offer;
pub mod quantize;
pub mod query;
pub mod secagg;
pub mod simulate;
pub mod task;
pub mod testnet;
pub mod tx;
pub mod validator;
pub mod verify;
