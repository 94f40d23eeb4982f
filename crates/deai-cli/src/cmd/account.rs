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
    #[command(after_help = "Examples:
  deai account show --key .deai/dev.key
  deai account show ADDR --verify testnet/node0/genesis.json")]
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
    let light = args.node.light_client()?;
    let verified = light.is_some();
    let v = block_on(async move {
        let Some(light) = light else {
            return anyhow::Ok(client.account(&address).await?);
        };
        light.check_chain().await?;
        match light
            .read::<deai_ledger::Account>(deai_ledger::StateKey::Account(address))
            .await
        {
            Ok(v) => Ok(deai_node::api::types::AccountView {
                address,
                height: v.height,
                account: v.entry,
            }),
            Err(deai_node::light_client::ReadError::Upstream(
                deai_node::client::ClientError::Api { status: 404, .. },
            )) => anyhow::bail!(
                "account {address} is not in the node's state (an account that never received funds); a light client cannot verify absence"
            ),
            Err(e) => Err(e.into()),
        }
    })??;
    crate::output::emit(args.node.json, &v, |v| {
        let a = &v.account;
        let how = if verified { " (verified)" } else { "" };
        println!("account {address} at height {}{how}", v.height);
        println!(
            "  balance {} tokens  nonce {}  staked {} tokens",
            crate::output::tokens(a.balance),
            a.nonce,
            crate::output::tokens(a.staked)
        );
    })
}
