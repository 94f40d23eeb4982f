//! One module per `deai` subcommand.

pub mod bench;
pub mod dp;
pub mod secagg;
pub mod simulate;
