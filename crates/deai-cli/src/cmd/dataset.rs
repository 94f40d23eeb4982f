//! `deai dataset import|register|update-consent|revoke|list|show`.

use clap::Subcommand;

use super::{
    common::SignArgs,
    query,
    tx::{self, ConsentUpdateArgs, DatasetIdArgs, DatasetRegisterArgs, Kind},
};

/// Arguments of `deai dataset`.
pub type Args = super::common::NodeGroup<Which>;

/// The dataset subcommands.
#[derive(Debug, Subcommand)]
pub enum Which {
    /// Read a CSV of your own data into a dataset file (checked against its schema), and
    /// register it with a consent policy in the same step if asked.
    Import(super::import::ImportArgs),
    /// Register a dataset commitment with its consent policy (the data stays here).
    #[command(after_help = "Example:
  deai dataset register --file mine.ds --purpose digit-recognition --epsilon-max 8 \\
      --expiry-height 1000000 --key .deai/dev.key")]
    Register {
        /// What to register.
        #[command(flatten)]
        args: DatasetRegisterArgs,
        /// Signing.
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Replace a dataset's consent policy.
    #[command(after_help = "Example:
  deai dataset update-consent --dataset 1 --purpose digit-recognition --epsilon-max 4 \\
      --expiry-height 2000000 --key .deai/dev.key")]
    UpdateConsent {
        /// The new policy.
        #[command(flatten)]
        args: ConsentUpdateArgs,
        /// Signing.
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Revoke consent: the dataset is never selected again.
    #[command(after_help = "Example:\n  deai dataset revoke --dataset 1 --key .deai/dev.key")]
    Revoke {
        /// The dataset.
        #[command(flatten)]
        args: DatasetIdArgs,
        /// Signing.
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Read the ledger's entries.
    #[command(flatten)]
    Query(query::Query),
}

/// Runs `deai dataset`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.which {
        Which::Import(a) => super::import::run(a, &args.node),
        Which::Register { args: a, sign } => {
            tx::send_kind(&Kind::DatasetRegister(a), &sign, &args.node)
        }
        Which::UpdateConsent { args: a, sign } => {
            tx::send_kind(&Kind::ConsentUpdate(a), &sign, &args.node)
        }
        Which::Revoke { args: a, sign } => {
            tx::send_kind(&Kind::ConsentRevoke(a), &sign, &args.node)
        }
        Which::Query(q) => q.run::<deai_ledger::Dataset>(&args.node, "datasets"),
    }
}
