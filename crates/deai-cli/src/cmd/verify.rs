//! `deai verify task <id>`: re-verifies a closed task as a node that took no part in it.
//! `deai verify challenge`: re-checks the claim a round challenge names, and with `--vote`
//! sends the validator's vote.

use clap::Subcommand;
use deai_ledger::{TxBody, tx::ChallengeVote};
use deai_node::{
    audit::{challenge as verify_challenge, task as verify_task},
    client::Client,
};

use super::common::{NodeArgs, SignArgs, block_on, report_sent, send};

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
    /// A round challenge: re-checks the round it names from the ledger and the blobs and says
    /// whether the challenged claim is wrong (a blob it needs that nobody serves makes it
    /// wrong). With `--vote`, a validator sends `ChallengeVote` with that verdict.
    #[command(after_help = "Examples:
  deai verify challenge --task 1 --challenge 1
  deai verify challenge --task 1 --challenge 1 --vote --key validator/node.key")]
    Challenge {
        /// The task.
        #[arg(long)]
        task: u64,
        /// The challenge's number within the task (from 1).
        #[arg(long)]
        challenge: u32,
        /// Send the verdict as this validator's vote (needs `--key`).
        #[arg(long)]
        vote: bool,
        /// The voter's key and fee.
        #[command(flatten)]
        sign: SignArgs,
    },
}

/// Runs `deai verify`; exits non-zero when anything does not match.
pub fn run(args: Args) -> anyhow::Result<()> {
    let id = match args.which {
        Which::Task { id } => id,
        Which::Challenge {
            task,
            challenge,
            vote,
            ref sign,
        } => return run_challenge(&args, task, challenge, vote, sign),
    };
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
            let caught = if r.invalidated {
                " (invalidated by an upheld challenge: it earned nothing, its coordinator was slashed)"
            } else {
                ""
            };
            if r.ok {
                println!("  round {:>3}: ok{caught}", r.round);
            } else {
                println!("  round {:>3}: MISMATCH{caught}", r.round);
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

/// `deai verify challenge`.
fn run_challenge(
    args: &Args,
    task: u64,
    challenge: u32,
    vote: bool,
    sign: &SignArgs,
) -> anyhow::Result<()> {
    let ledger = args.node.client();
    let blobs = Client::new(args.blobs.clone().unwrap_or_else(|| args.node.node.clone()));
    let check =
        block_on(
            async move { verify_challenge::check_claim(&ledger, &blobs, task, challenge).await },
        )??;
    if vote {
        // The vote's report is the command's output; the verdict goes to stderr beside it.
        eprintln!(
            "task {task} challenge {challenge}: the {} claim of round {} is {}",
            check.claim.name(),
            check.round,
            if check.wrong { "WRONG" } else { "right" }
        );
        let body = TxBody::ChallengeVote(ChallengeVote {
            task,
            challenge,
            upheld: check.wrong,
        });
        let sent = block_on(send(&args.node, sign, body))??;
        return report_sent(args.node.json, "challenge vote", &sent);
    }
    crate::output::emit(args.node.json, &check, |c| {
        let group = c
            .claim
            .group()
            .map(|g| format!(" of group {g}"))
            .unwrap_or_default();
        println!(
            "task {} challenge {}: the {} claim{group} of round {} is {}",
            c.task,
            c.challenge,
            c.claim.name(),
            c.round,
            if c.wrong {
                "WRONG (vote upheld)"
            } else {
                "right (vote rejected)"
            }
        );
        for r in &c.reasons {
            println!("  - {r}");
        }
    })
}
