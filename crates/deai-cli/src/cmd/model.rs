//! `deai model register|list|show|quantize`.

use clap::Subcommand;

use super::{
    common::SignArgs,
    query,
    tx::{self, Kind, ModelRegisterArgs},
};

/// Arguments of `deai model`.
pub type Args = super::common::NodeGroup<Which>;

/// The model subcommands.
#[derive(Debug, Subcommand)]
pub enum Which {
    /// Register a model with its lineage and metrics.
    #[command(after_help = "Example:
  deai model register --model-hash HASH --task 1 --metric accuracy=0.93 --key coord/node.key")]
    Register {
        /// The model.
        #[command(flatten)]
        args: ModelRegisterArgs,
        /// Signing.
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Convert a trained float model to the integer model providers serve (offline).
    Quantize(super::quantize::Args),
    /// Read the ledger's entries.
    #[command(flatten)]
    Query(query::Query),
}

/// Runs `deai model`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.which {
        Which::Register { args: a, sign } => {
            tx::send_kind(&Kind::ModelRegister(a), &sign, &args.node)
        }
        Which::Quantize(a) => super::quantize::run(a),
        Which::Query(q) => q.run::<deai_ledger::Model>(&args.node, "models"),
    }
}
