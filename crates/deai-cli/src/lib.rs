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
    /// The main job: a validator, a coordinator and data owners (ten by default) train a model
    /// with secure aggregation and differential privacy, recorded on the ledger, then re-verify
    /// it.
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
    /// Governance: propose parameter changes, ethics blocks and treasury spends, vote, execute,
    /// follow the tallies, list what may change.
    Gov(cmd::gov::Args),
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
    /// A shell completion script for bash, zsh, fish, elvish or PowerShell.
    Completions(cmd::shell::CompletionsArgs),
    /// Man pages, generated from the command definitions.
    Man(cmd::shell::ManArgs),
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
        Command::Gov(args) => cmd::gov::run(args),
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
        Command::Completions(args) => cmd::shell::completions(args),
        Command::Man(args) => cmd::shell::man(args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::Cli;

    /// Every command without subcommands of its own, with its path (`deai tx transfer`); clap's
    /// generated `help` commands are left out.
    fn leaves<'a>(cmd: &'a clap::Command, path: &str, out: &mut Vec<(String, &'a clap::Command)>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let sub_path = format!("{path} {}", sub.get_name());
            if sub.has_subcommands() {
                leaves(sub, &sub_path, out);
            } else {
                out.push((sub_path, sub));
            }
        }
    }

    /// The commands of a help text that run `deai`: each line joined with the lines its trailing
    /// `\` continues onto, then split at `&&`.
    fn deai_lines(text: &str) -> Vec<String> {
        text.replace("\\\n", " ")
            .lines()
            .flat_map(|l| l.split("&&"))
            .map(str::trim)
            .filter(|l| l.starts_with("deai "))
            .map(String::from)
            .collect()
    }

    /// The path of the command an example line runs (`deai tx transfer`), or what is wrong with
    /// it: the words after `deai` must name a command that has no subcommands, and every `--flag`
    /// before the first shell operator must be one that command takes.
    fn check_line(root: &clap::Command, line: &str) -> Result<String, String> {
        let mut words = line
            .split_whitespace()
            .skip(1)
            .take_while(|w| !matches!(*w, "||" | "|" | ">" | ">>" | ";" | "#"))
            .peekable();
        let (mut cmd, mut path) = (root, String::from("deai"));
        while let Some(sub) = words.peek().and_then(|w| cmd.find_subcommand(w)) {
            path = format!("{path} {}", sub.get_name());
            cmd = sub;
            words.next();
        }
        if cmd.has_subcommands() {
            return Err(format!("`{path}` needs a subcommand"));
        }
        for word in words.filter_map(|w| w.strip_prefix("--")) {
            let long = word.split_once('=').map_or(word, |(l, _)| l);
            let takes = long == "help"
                || cmd.get_arguments().any(|a| {
                    a.get_long() == Some(long)
                        || a.get_all_aliases().is_some_and(|all| all.contains(&long))
                });
            if !takes {
                return Err(format!("`{path}` has no --{long}"));
            }
        }
        Ok(path)
    }

    /// `--help` of every command ends with an example that runs it, and every `deai` line of
    /// every example names a real command with flags it takes.
    #[test]
    fn every_command_help_ends_with_a_working_example() {
        let mut root = Cli::command();
        root.build();
        let mut all = Vec::new();
        leaves(&root, "deai", &mut all);
        assert!(
            all.iter().any(|(path, _)| path == "deai tx transfer"),
            "the walk missed nested commands"
        );
        let mut problems = Vec::new();
        for (path, cmd) in &all {
            let help = cmd
                .get_after_help()
                .or(cmd.get_after_long_help())
                .map(ToString::to_string)
                .unwrap_or_default();
            if !help.contains("Example") {
                problems.push(format!(
                    "{path}: no example (add #[command(after_help = ...)])"
                ));
                continue;
            }
            let (mut runs_itself, mut wrong) = (false, false);
            for line in deai_lines(&help) {
                match check_line(&root, &line) {
                    Ok(ran) => runs_itself |= &ran == path,
                    Err(e) => {
                        wrong = true;
                        problems.push(format!("{path}: example `{line}`: {e}"));
                    }
                }
            }
            if !runs_itself && !wrong {
                problems.push(format!("{path}: no example line runs `{path}`"));
            }
        }
        assert!(
            problems.is_empty(),
            "examples missing or wrong ({} commands checked):\n{}",
            all.len(),
            problems.join("\n")
        );
    }
}
