//! The deai command line: one module per subcommand under [`cmd`].

pub mod cmd;
pub mod output;

use clap::{Parser, Subcommand};

/// User-owned, verifiable, decentralized machine learning.
#[derive(Debug, Parser)]
#[command(name = "deai", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `deai`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a federated-learning simulation in one process.
    Simulate(cmd::simulate::Args),
    /// Differential-privacy accounting.
    Dp(cmd::dp::Args),
    /// Secure-aggregation parameters and tools.
    Secagg(cmd::secagg::Args),
    /// Benchmarks (each prints a human summary, or one JSON object with --json).
    Bench(cmd::bench::Args),
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Simulate(args) => cmd::simulate::run(args),
        Command::Dp(args) => cmd::dp::run(args),
        Command::Secagg(args) => cmd::secagg::run(args),
        Command::Bench(args) => cmd::bench::run(args),
    }
}
