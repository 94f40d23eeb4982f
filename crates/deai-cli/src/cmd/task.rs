//! `deai task create|cancel|list|show`.

use clap::Subcommand;

use super::{
    common::{NodeArgs, SignArgs},
    query,
    tx::{self, Kind, TaskCreateArgs, TaskIdArgs},
};

/// Arguments of `deai task`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub which: Which,
    /// The node.
    #[command(flatten)]
    pub node: NodeArgs,
}

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
    /// List tasks.
    List,
    /// Show one task with its history.
    Show {
        /// The task id.
        id: u64,
    },
}

/// Runs `deai task`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.which {
        Which::Create { args: a, sign } => tx::send_kind(&Kind::TaskCreate(a), &sign, &args.node),
        Which::Cancel { args: a, sign } => tx::send_kind(&Kind::TaskCancel(a), &sign, &args.node),
        Which::List => query::list::<deai_ledger::Task>(&args.node, "tasks"),
        Which::Show { id } => query::show::<deai_ledger::Task>(&args.node, "tasks", id),
    }
}
