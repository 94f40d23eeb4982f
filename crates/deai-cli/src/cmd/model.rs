//! `deai model register|list|show`.

use clap::Subcommand;

use super::{
    common::{NodeArgs, SignArgs},
    query,
    tx::{self, Kind, ModelRegisterArgs},
};

/// Arguments of `deai model`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub which: Which,
    /// The node.
    #[command(flatten)]
    pub node: NodeArgs,
}

/// The model subcommands.
#[derive(Debug, Subcommand)]
pub enum Which {
    /// Register a model with its lineage and metrics.
    Register {
        /// The model.
        #[command(flatten)]
        args: ModelRegisterArgs,
        /// Signing.
        #[command(flatten)]
        sign: SignArgs,
    },
    /// List registered models.
    List,
    /// Show one model with its lineage and history.
    Show {
        /// The model id.
        id: u64,
    },
}

/// Runs `deai model`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.which {
        Which::Register { args: a, sign } => {
            tx::send_kind(&Kind::ModelRegister(a), &sign, &args.node)
        }
        Which::List => query::list::<deai_ledger::Model>(&args.node, "models"),
        Which::Show { id } => query::show::<deai_ledger::Model>(&args.node, "models", id),
    }
}
