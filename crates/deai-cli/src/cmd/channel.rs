//! `deai channel open|top-up|close|list|show`: a payer's deposit for one offer, spent by
//! vouchers off-chain (`deai infer`) and claimed by the provider.

use clap::Subcommand;
use deai_ledger::{
    Address, Channel, TxBody,
    tx::{ChannelClose, ChannelOpen, ChannelTopUp},
};
use serde::Serialize;

use super::common::{NodeArgs, SignArgs, block_on, send};
use super::tx::parse_address;

/// Arguments of `deai channel`.
pub type Args = super::common::NodeGroup<Which>;

/// The channel subcommands.
#[derive(Debug, Subcommand)]
pub enum Which {
    /// Open a channel to an offer's provider, locking a deposit until an expiry height.
    Open(OpenArgs),
    /// Add to a channel's deposit or move its expiry later (payer only).
    #[command(after_help = "Example:\n  deai channel top-up 1 --amount 1000 --key .deai/dev.key")]
    TopUp {
        /// The channel.
        id: u64,
        /// Add this much to the deposit, base units.
        #[arg(long, default_value_t = 0)]
        amount: u128,
        /// The new expiry height (at least the current one).
        #[arg(long)]
        expiry_height: Option<u64>,
        /// Signing.
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Close a channel and take back what was not claimed (payer after expiry, or provider).
    #[command(after_help = "Example:\n  deai channel close 1 --key .deai/dev.key")]
    Close {
        /// The channel.
        id: u64,
        /// Signing.
        #[command(flatten)]
        sign: SignArgs,
    },
    /// List the channels of a payer or of an offer.
    #[command(after_help = "Examples:
  deai channel list --offer 1
  deai channel list --payer ADDR")]
    List {
        /// Channels this account opened.
        #[arg(long, value_parser = parse_address, required_unless_present = "offer")]
        payer: Option<Address>,
        /// Channels paying this offer.
        #[arg(long)]
        offer: Option<u64>,
    },
    /// Show one channel.
    #[command(after_help = "Example:\n  deai channel show 1")]
    Show {
        /// The channel.
        id: u64,
    },
}

/// `deai channel open`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Example:
  deai channel open --offer 1 --deposit 1000 --blocks 2000 --key .deai/dev.key")]
pub struct OpenArgs {
    /// The offer to pay.
    #[arg(long)]
    pub offer: u64,
    /// Deposit, base units.
    #[arg(long)]
    pub deposit: u128,
    /// Blocks from now until the channel expires (the provider claims before then).
    #[arg(long, default_value_t = 1_000, conflicts_with = "expiry_height")]
    pub blocks: u64,
    /// Expire at this height instead.
    #[arg(long)]
    pub expiry_height: Option<u64>,
    /// Signing.
    #[command(flatten)]
    pub sign: SignArgs,
}

/// What `deai channel open --json` prints.
#[derive(Debug, Serialize)]
pub struct Opened {
    /// The new channel.
    pub channel: u64,
    /// Its transaction.
    pub tx: deai_ledger::TxId,
    /// Where it finalized.
    pub height: u64,
    /// Its last claimable height.
    pub expiry_height: u64,
}

/// Runs `deai channel`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let node = &args.node;
    match args.which {
        Which::Open(a) => {
            let opened = block_on(open(node, &a))??;
            crate::output::emit(node.json, &opened, |o| {
                println!(
                    "channel {} opened at height {} on offer {}: deposit {} (base units), expires at height {}\n  query with: deai infer --offer {} --channel {} --input FILE",
                    o.channel, o.height, a.offer, a.deposit, o.expiry_height, a.offer, o.channel
                )
            })
        }
        Which::TopUp {
            id,
            amount,
            expiry_height,
            sign,
        } => {
            let client = node.client();
            let current: Channel =
                block_on(async move { client.get(&format!("/v1/channels/{id}")).await })??;
            let body = TxBody::ChannelTopUp(ChannelTopUp {
                channel: id,
                amount,
                expiry_height: expiry_height.unwrap_or(current.expiry_height),
            });
            let sent = block_on(send(node, &sign, body))??;
            super::common::report_sent(node.json, &format!("channel {id} topped up"), &sent)
        }
        Which::Close { id, sign } => {
            let body = TxBody::ChannelClose(ChannelClose { channel: id });
            let sent = block_on(send(node, &sign, body))??;
            super::common::report_sent(node.json, &format!("channel {id} closed"), &sent)
        }
        Which::List { payer, offer } => {
            let mut query = Vec::new();
            if let Some(p) = payer {
                query.push(format!("payer={p}"));
            }
            if let Some(o) = offer {
                query.push(format!("offer={o}"));
            }
            let path = format!("/v1/channels?{}", query.join("&"));
            let client = node.client();
            let channels: Vec<Channel> = block_on(async move { client.get(&path).await })??;
            crate::output::emit(node.json, &channels, |cs| {
                super::listing::print_table("channels", cs, false)
            })
        }
        Which::Show { id } => super::query::show::<Channel>(node, "channels", id, false),
    }
}

/// Opens the channel `a` describes and waits for it; its id and expiry.
pub async fn open(node: &NodeArgs, a: &OpenArgs) -> anyhow::Result<Opened> {
    let expiry_height = match a.expiry_height {
        Some(h) => h,
        None => node
            .client()
            .status()
            .await?
            .height
            .saturating_add(a.blocks),
    };
    let body = TxBody::ChannelOpen(ChannelOpen {
        offer: a.offer,
        deposit: a.deposit,
        expiry_height,
    });
    let sent = send(node, &a.sign, body).await?;
    let Some(deai_node::api::types::TxState::Finalized {
        receipt, height, ..
    }) = sent.state
    else {
        anyhow::bail!(
            "channel open submitted in {} but not waited for; find it with `deai channel list --payer`",
            sent.id
        );
    };
    Ok(Opened {
        channel: deai_node::roles::setup::created_id(&receipt, "channel_opened")?,
        tx: sent.id,
        height,
        expiry_height,
    })
}
