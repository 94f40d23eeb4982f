//! `deai bench …`: measured performance, with `--json` for scripts.

pub mod chain;
pub mod challenge;
pub mod fed_robust;
pub mod fl;
pub mod infer;
pub mod ledger;
pub mod robust;
pub mod secagg;
pub mod soak;

use clap::Subcommand;

/// Arguments of `deai bench`.
pub type Args = super::common::Group<Which>;

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum Which {
    /// Signed transfers through mempool, consensus, execution and durable storage on one validator.
    Ledger(ledger::Args),
    /// A validator network of separate processes on loopback against one validator, same load.
    Chain(chain::Args),
    /// Federated digits-100 against its centralised equivalent, and a cross-device scale case.
    Fl(fl::Args),
    /// Paid inference: the integer engine against burn, paid against unpaid queries over
    /// HTTP, voucher checks, a dispute's re-execution per model kind.
    Infer(infer::Args),
    /// Every attack against every robust rule; writes the robustness table.
    Robust(robust::Args),
    /// Owner attacks against the robust rules through the real round protocol (SecAgg+
    /// groups, noise, group means), with and without 20 % attackers.
    FedRobust(fed_robust::Args),
    /// One full SecAgg+ round: all clients and the server in one process.
    Secagg(secagg::Args),
    /// What a validator's re-check of a challenged round claim costs, per claim kind.
    Challenge(challenge::Args),
    /// A real node process under honest load and every known attack at once: does it hold?
    Soak(soak::Args),
}

/// Runs `deai bench`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.which {
        Which::Ledger(a) => ledger::run(a),
        Which::Chain(a) => chain::run(a),
        Which::Fl(a) => fl::run(a),
        Which::Infer(a) => infer::run(a),
        Which::Robust(a) => robust::run(a),
        Which::FedRobust(a) => fed_robust::run(a),
        Which::Secagg(a) => secagg::run(a),
        Which::Challenge(a) => challenge::run(a),
        Which::Soak(a) => soak::run(a),
    }
}
