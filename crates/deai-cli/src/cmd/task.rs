//! `deai task create|watch|cancel|list|show`.

use clap::Subcommand;

use super::{
    common::SignArgs,
    query,
    tx::{self, Kind, TaskIdArgs},
};

/// Arguments of `deai task`.
pub type Args = super::common::NodeGroup<Which>;

/// The task subcommands.
#[derive(Debug, Subcommand)]
pub enum Which {
    /// Create a training task from a task file and hand it to a coordinator: datasets picked by
    /// consent, reward in escrow, validation set committed.
    Create(super::task_create::CreateArgs),
    /// Follow a task live (rounds, survivors, ε, accuracy) until it closes.
    Watch(super::task_watch::WatchArgs),
    /// Cancel a task; unspent escrow goes back to its creator.
    #[command(after_help = "Example:\n  deai task cancel --task 1 --key creator.key")]
    Cancel {
        /// The task.
        #[command(flatten)]
        args: TaskIdArgs,
        /// Signing.
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Read the ledger's entries.
    #[command(flatten)]
    Query(query::Query),
}

/// Runs `deai task`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.which {
        Which::Create(a) => super::task_create::run(a, &args.node),
        Which::Watch(a) => super::task_watch::run(a, &args.node),
        Which::Cancel { args: a, sign } => tx::send_kind(&Kind::TaskCancel(a), &sign, &args.node),
        Which::Query(q) => q.run::<deai_ledger::Task>(&args.node, "tasks"),
    }
}
