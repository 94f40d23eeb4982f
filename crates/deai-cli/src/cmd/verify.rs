//! `deai verify task <id>`: re-verifies a closed task as a node that took no part in it.

use clap::Subcommand;
use deai_node::{audit::task as verify_task, client::Client};

use super::common::{NodeArgs, block_on};

/// Arguments of `deai verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to verify.
    #[command(subcommand)]
    pub which: Which,
    /// The node whose ledger is read.
    #[command(flatten)]
    pub node: NodeArgs,
    /// Where the blobs are fetched (default: the same node). Every blob is checked against its
    /// hash, so any node, trusted or not, may serve them.
    #[arg(long, global = true)]
    pub blobs: Option<String>,
}

/// The verify subcommands.
#[derive(Debug, Subcommand)]
pub enum Which {
    /// A closed training task: every round re-summed from the masked updates and the recorded
    /// unmasking, the strategy re-applied, model hashes and scores recomputed from the revealed
    /// validation data, rewards checked.
    #[command(after_help = "Example:\n  deai verify task 1 --node http://127.0.0.1:7650")]
    Task {
        /// The task id.
        id: u64,
    },
}

/// Runs `deai verify`; exits non-zero when anything does not match.
pub fn run(args: Args) -> anyhow::Result<()> {
    let Which::Task { id } = args.which;
    let ledger = args.node.client();
    let blobs = Client::new(args.blobs.clone().unwrap_or_else(|| args.node.node.clone()));
    let bar = crate::progress::bar(args.node.json, 0, "verifying rounds");
    let round_bar = bar.clone();
    let verdict = block_on(async move {
        verify_task::verify_task(&ledger, &blobs, id, |_| round_bar.inc(1)).await
    })??;
    bar.finish_and_clear();
    crate::output::emit(args.node.json, &verdict, |v| {
        println!(
            "task {}: {} ({} rounds checked)",
            v.task,
            if v.ok { "OK" } else { "MISMATCH" },
            v.rounds.len()
        );
        for r in &v.rounds {
            if r.ok {
                println!("  round {:>3}: ok", r.round);
            } else {
                println!("  round {:>3}: MISMATCH", r.round);
                for m in &r.mismatches {
                    println!("      - {m}");
                }
            }
        }
        for m in &v.task_mismatches {
            println!("  task: {m}");
        }
    })?;
    anyhow::ensure!(
        verdict.ok,
        "task {id} did not verify: rounds {:?} {}",
        verdict.failed_rounds,
        verdict.task_mismatches.join("; ")
    );
    Ok(())
}
