//! `deai task create|cancel|list|show`.

use clap::Subcommand;

use super::{
    common::SignArgs,
    query,
    tx::{self, Kind, TaskCreateArgs, TaskIdArgs},
};

/// Arguments of `deai task`.
pub type Args = super::common::NodeGroup<Which>;

/// The task subcommands.
#[derive(Debug, Subcommand)]
pub enum Which {
    /// Create a training task with its reward in escrow.
    Create {
        /// The task.
        #[command(flatten)]
        args: TaskCreateArgs,
        /// Signing.
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Cancel a task; unspent escrow goes back to its creator.
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
        Which::Create { args: a, sign } => tx::send_kind(&Kind::TaskCreate(a), &sign, &args.node),
        Which::Cancel { args: a, sign } => tx::send_kind(&Kind::TaskCancel(a), &sign, &args.node),
        Which::Query(q) => q.run::<deai_ledger::Task>(&args.node, "tasks"),
    }
}
