//! `deai dataset register|update-consent|revoke|list|show`.

use clap::Subcommand;

use super::{
    common::{NodeArgs, SignArgs},
    query,
    tx::{self, ConsentUpdateArgs, DatasetIdArgs, DatasetRegisterArgs, Kind},
};

/// Arguments of `deai dataset`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub which: Which,
    /// The node.
    #[command(flatten)]
    pub node: NodeArgs,
}

/// The dataset subcommands.
#[derive(Debug, Subcommand)]
pub enum Which {
    /// Register a dataset commitment with its consent policy (the data stays here).
    Register {
        /// What to register.
        #[command(flatten)]
        args: DatasetRegisterArgs,
        /// Signing.
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Replace a dataset's consent policy.
    UpdateConsent {
        /// The new policy.
        #[command(flatten)]
        args: ConsentUpdateArgs,
        /// Signing.
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Revoke consent: the dataset is never selected again.
    Revoke {
        /// The dataset.
        #[command(flatten)]
        args: DatasetIdArgs,
        /// Signing.
        #[command(flatten)]
        sign: SignArgs,
    },
    /// List registered datasets.
    List,
    /// Show one dataset with its history.
    Show {
        /// The dataset id.
        id: u64,
    },
}

/// Runs `deai dataset`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.which {
        Which::Register { args: a, sign } => {
            tx::send_kind(&Kind::DatasetRegister(a), &sign, &args.node)
        }
        Which::UpdateConsent { args: a, sign } => {
            tx::send_kind(&Kind::ConsentUpdate(a), &sign, &args.node)
        }
        Which::Revoke { args: a, sign } => {
            tx::send_kind(&Kind::ConsentRevoke(a), &sign, &args.node)
        }
        Which::List => query::list::<deai_ledger::Dataset>(&args.node, "datasets"),
        Which::Show { id } => query::show::<deai_ledger::Dataset>(&args.node, "datasets", id),
    }
}
