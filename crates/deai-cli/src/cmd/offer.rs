//! `deai offer create|update|withdraw|list|show`: a provider offers a registered model's
//! quantized blob for paid queries.

use clap::Subcommand;
use deai_infer::QuantModel;
use deai_ledger::{
    Address, Offer, OfferStatus, TxBody,
    tx::{OfferCreate, OfferUpdate, OfferWithdraw},
};
use serde::Serialize;

use super::common::{NodeArgs, SignArgs, block_on, send};
use super::tx::parse_address;
use crate::output::short;

/// Arguments of `deai offer`.
pub type Args = super::common::NodeGroup<Which>;

/// The offer subcommands.
#[derive(Debug, Subcommand)]
pub enum Which {
    /// Offer a registered model's quantized blob (made by `deai model quantize`) for paid
    /// queries, locking a bond; uploads the blob to the node so anyone can re-execute answers.
    Create(CreateArgs),
    /// Change an active offer's price or endpoint, or add to its bond (provider only).
    Update(UpdateArgs),
    /// Withdraw an offer: no new channels; the bond returns after the unbonding delay.
    #[command(after_help = "Example:\n  deai offer withdraw 1 --key provider.key")]
    Withdraw {
        /// The offer.
        id: u64,
        /// Signing.
        #[command(flatten)]
        sign: SignArgs,
    },
    /// List offers, optionally of one model, provider or status.
    #[command(after_help = "Examples:
  deai offer list
  deai offer list --model 1 --status active")]
    List {
        /// Only offers of this model.
        #[arg(long)]
        model: Option<u64>,
        /// Only offers of this provider (address).
        #[arg(long, value_parser = parse_address)]
        provider: Option<Address>,
        /// Only offers in this status: active, suspended or withdrawn.
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one offer with its history.
    #[command(after_help = "Example:\n  deai offer show 1")]
    Show {
        /// The offer.
        id: u64,
    },
}

/// `deai offer create`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  deai offer create --model 1 --quantized m.qm --price 10 --bond 10000000000000000000 \\
      --endpoint http://127.0.0.1:7700 --key provider.key")]
pub struct CreateArgs {
    /// The registered model it serves (its lineage decides the royalties).
    #[arg(long)]
    pub model: u64,
    /// The quantized model file (`deai model quantize --out`).
    #[arg(long)]
    pub quantized: std::path::PathBuf,
    /// Price of one query, base units.
    #[arg(long)]
    pub price: u128,
    /// Bond locked behind the answers, base units (at least the chain's `offer_bond_min`).
    #[arg(long)]
    pub bond: u128,
    /// Where the provider node answers (its roles API, e.g. http://127.0.0.1:7700).
    #[arg(long)]
    pub endpoint: String,
    /// Share of every claimed payment paid to the training datasets' owners, basis points (at
    /// least what their consent asks).
    #[arg(long, default_value_t = 0)]
    pub royalty_bps: u32,
    /// Signing.
    #[command(flatten)]
    pub sign: SignArgs,
}

/// `deai offer update`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  deai offer update 1 --price 20 --key provider.key")]
pub struct UpdateArgs {
    /// The offer.
    pub id: u64,
    /// New price per query, base units.
    #[arg(long)]
    pub price: Option<u128>,
    /// New endpoint.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Add this much to the bond, base units.
    #[arg(long, default_value_t = 0)]
    pub bond_top_up: u128,
    /// Signing.
    #[command(flatten)]
    pub sign: SignArgs,
}

/// What `deai offer create --json` prints.
#[derive(Debug, Serialize)]
struct Created {
    offer: u64,
    tx: deai_ledger::TxId,
    height: Option<u64>,
    quant_hash: deai_ledger::Digest,
    ops: u64,
}

/// Runs `deai offer`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let node = &args.node;
    match args.which {
        Which::Create(a) => create(node, a),
        Which::Update(a) => {
            let body = TxBody::OfferUpdate(OfferUpdate {
                offer: a.id,
                price_per_query: a.price,
                endpoint: a.endpoint,
                bond_top_up: a.bond_top_up,
            });
            let sent = block_on(send(node, &a.sign, body))??;
            super::common::report_sent(node.json, &format!("offer {} updated", a.id), &sent)
        }
        Which::Withdraw { id, sign } => {
            let sent = block_on(send(
                node,
                &sign,
                TxBody::OfferWithdraw(OfferWithdraw { offer: id }),
            ))??;
            super::common::report_sent(node.json, &format!("offer {id} withdrawn"), &sent)
        }
        Which::List {
            model,
            provider,
            status,
        } => list(node, model, provider, status),
        Which::Show { id } => show(node, id),
    }
}

fn create(node: &NodeArgs, a: CreateArgs) -> anyhow::Result<()> {
    let blob = std::fs::read(&a.quantized)
        .map_err(|e| anyhow::anyhow!("--quantized {}: {e}", a.quantized.display()))?;
    let model = QuantModel::decode(&blob).map_err(|e| {
        anyhow::anyhow!(
            "--quantized {} is not a quantized model ({e}); make one with `deai model quantize`",
            a.quantized.display()
        )
    })?;
    let key = deai_node::keyfile::read(a.sign.key_file()?)?;
    let quant_hash = deai_ledger::Digest(model.hash());
    let ops = model.ops();
    let body = TxBody::OfferCreate(OfferCreate {
        model: a.model,
        quant_hash,
        ops,
        price_per_query: a.price,
        bond: a.bond,
        endpoint: a.endpoint,
        royalty_bps: a.royalty_bps,
    });
    let client = node.client();
    let sign = a.sign.clone();
    let node2 = node.clone();
    let sent = block_on(async move {
        // The blob first: a dispute needs it, and validators refuse nothing for its absence.
        client.put_blob(&key, &blob).await?;
        send(&node2, &sign, body).await
    })??;
    let offer = match sent.state.as_ref() {
        Some(deai_node::api::types::TxState::Finalized { receipt, .. }) => Some(
            deai_node::roles::setup::created_id(receipt, "offer_created")?,
        ),
        _ => None,
    };
    let out = Created {
        offer: offer.unwrap_or(0),
        tx: sent.id,
        height: sent.state.as_ref().and_then(|s| s.height()),
        quant_hash,
        ops,
    };
    crate::output::emit(node.json, &out, |c| match offer {
        Some(id) => println!(
            "offer {id} created at height {}: model {} ({}), {ops} operations per query\n  serve it with a node whose config has [roles.provider]; buyers: deai infer --offer {id} --input FILE",
            c.height.unwrap_or(0),
            a.model,
            short(&quant_hash.to_string()),
        ),
        None => println!("offer submitted in {} (not waiting for finality)", c.tx),
    })
}

fn list(
    node: &NodeArgs,
    model: Option<u64>,
    provider: Option<Address>,
    status: Option<String>,
) -> anyhow::Result<()> {
    if let Some(s) = &status
        && ![
            OfferStatus::Active,
            OfferStatus::Suspended,
            OfferStatus::Withdrawn,
        ]
        .iter()
        .any(|st| st.name() == s)
    {
        anyhow::bail!("--status {s}: use active, suspended or withdrawn");
    }
    let mut query = Vec::new();
    if let Some(m) = model {
        query.push(format!("model={m}"));
    }
    if let Some(p) = provider {
        query.push(format!("provider={p}"));
    }
    if let Some(s) = status {
        query.push(format!("status={s}"));
    }
    let path = format!("/v1/offers?{}", query.join("&"));
    let client = node.client();
    let offers: Vec<Offer> = block_on(async move { client.get(&path).await })??;
    crate::output::emit(node.json, &offers, |offers| {
        super::listing::print_table("offers", offers, false)
    })
}

fn show(node: &NodeArgs, id: u64) -> anyhow::Result<()> {
    super::query::show::<Offer>(node, "offers", id, false)
}
