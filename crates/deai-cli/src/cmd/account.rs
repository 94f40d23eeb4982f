//! `deai account show`: balance, nonce, stake and unbonding of an account.

use std::path::PathBuf;

use clap::Subcommand;
use deai_ledger::Address;

use super::common::block_on;

/// Arguments of `deai account`.
pub type Args = super::common::NodeGroup<Which>;

/// The account subcommands.
#[derive(Debug, Subcommand)]
pub enum Which {
    /// Show an account, by address or by key file.
    Show {
        /// The address (hex).
        #[arg(value_parser = super::tx::parse_address, required_unless_present = "key")]
        address: Option<Address>,
        /// Or the key file whose account to show.
        #[arg(long, conflicts_with = "address")]
        key: Option<PathBuf>,
    },
}

/// Runs `deai account`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let Which::Show { address, key } = args.which;
    let address = match (address, key) {
        (Some(a), _) => a,
        (None, Some(k)) => deai_node::keyfile::address(&deai_node::keyfile::read(&k)?),
        (None, None) => anyhow::bail!("give an address or --key FILE"),
    };
    let client = args.node.client();
    let v = block_on(async move { client.account(&address).await })??;
    crate::output::emit(args.node.json, &v, |v| {
        let a = &v.account;
        println!("account {address} at height {}", v.height);
        println!(
            "  balance {}  nonce {}  staked {}",
            a.balance, a.nonce, a.staked
        );
    })
}
