//! The deai command line: one module per subcommand under [`cmd`].

// Every command prints through these instead of std's, which panic when stdout is a closed pipe
// (`deai ledger status | head -1`) or a full disk: see [`output::write_stdout`]. Defined before
// the modules so that their textual scope covers all of them.
macro_rules! println {
    () => {
        $crate::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

macro_rules! print {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))
    };
}

macro_rules! eprintln {
    ($($arg:tt)*) => {
        $crate::output::write_stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub mod cmd;
mod files;
mod local_network;
mod node_process;
pub mod output;
pub mod plot;
pub mod progress;
pub mod query_input;
pub mod table;

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
    /// The main job: a validator, a coordinator and ten data owners train a model with secure
    /// aggregation and differential privacy, recorded on the ledger, then re-verify it.
    Demo(cmd::demo::Args),
    /// A local network that stays up until Ctrl-C: validator(s), a coordinator, owners with
    /// registered data, funded accounts, a ready task file.
    Up(cmd::up::Args),
    /// Make a data directory: node key, dev genesis with a funded account, config.
    Init(cmd::init::Args),
    /// Run a validator with its HTTP API.
    Node(cmd::node::Args),
    /// A local validator network: write its directories, run it as one process per validator.
    Testnet(cmd::testnet::Args),
    /// Key files.
    Key(cmd::key::Args),
    /// Sign and submit a transaction (one subcommand per kind).
    Tx(cmd::tx::Args),
    /// Accounts.
    Account(cmd::account::Args),
    /// Validators: declare a node's key for an account's stake, list the sets by epoch.
    Validator(cmd::validator::Args),
    /// Dataset schemas: what a dataset of each tag holds.
    Schema(cmd::schema::Args),
    /// Datasets: import a CSV, register commitments with consent policies, update or revoke consent, list.
    Dataset(cmd::dataset::Args),
    /// Training tasks: create with escrow, cancel, list.
    Task(cmd::task::Args),
    /// Models: register, list, show.
    Model(cmd::model::Args),
    /// Inference offers: a provider serves a quantized model for paid queries.
    Offer(cmd::offer::Args),
    /// Payment channels: a payer's deposit for one offer, spent by vouchers off-chain.
    Channel(cmd::channel::Args),
    /// Paid queries to an offer, each answer's receipt checked (and re-executed with --check).
    Infer(cmd::infer::Args),
    /// Buy answers for a folder of inputs within a budget: pick offers, check a sample by
    /// re-execution, dispute a cheater.
    Agent(cmd::agent::Args),
    /// The chain: status, blocks, transactions, proofs, and the full audit.
    Ledger(cmd::ledger::Args),
    /// Where a model came from: task, rounds, contributing datasets, rewards, ε spent.
    Lineage(cmd::lineage::Args),
    /// Re-verify a closed task from the ledger and the blobs, as a node that took no part.
    Verify(cmd::verify::Args),
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
        Command::Demo(args) => cmd::demo::run(args),
        Command::Up(args) => cmd::up::run(args),
        Command::Init(args) => cmd::init::run(args),
        Command::Node(args) => cmd::node::run(args),
        Command::Testnet(args) => cmd::testnet::run(args),
        Command::Key(args) => cmd::key::run(args),
        Command::Tx(args) => cmd::tx::run(args),
        Command::Account(args) => cmd::account::run(args),
        Command::Validator(args) => cmd::validator::run(args),
        Command::Schema(args) => cmd::schema::run(args),
        Command::Dataset(args) => cmd::dataset::run(args),
        Command::Task(args) => cmd::task::run(args),
        Command::Model(args) => cmd::model::run(args),
        Command::Offer(args) => cmd::offer::run(args),
        Command::Channel(args) => cmd::channel::run(args),
        Command::Infer(args) => cmd::infer::run(args),
        Command::Agent(args) => cmd::agent::run(args),
        Command::Ledger(args) => cmd::ledger::run(args),
        Command::Lineage(args) => cmd::lineage::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Simulate(args) => cmd::simulate::run(args),
        Command::Dp(args) => cmd::dp::run(args),
        Command::Secagg(args) => cmd::secagg::run(args),
        Command::Bench(args) => cmd::bench::run(args),
    }
}
