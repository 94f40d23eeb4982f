//! `deai infer --offer N --input FILE`: paid queries to a provider, each answer checked (a
//! well-formed output under a fresh sequence, its receipt rebuilt here and found in the batch
//! the provider signs before the command ends) and, with `--check`, re-executed here and
//! disputed when it is wrong.

use std::path::PathBuf;

use deai_infer::QuantModel;
use deai_ledger::{Address, Channel, ChannelStatus, Digest, Genesis, Offer, OfferStatus};
use deai_node::{
    agent::{Agent, DisputeReport, fetch_model},
    client::Client,
    roles::provider::client::PaidSession,
};
use serde::Serialize;

use super::channel::{OpenArgs, open};
use super::common::{NodeArgs, SignArgs, block_on};
use crate::output::amount;
use crate::query_input::{self, QueryInput};

/// A channel needs at least this many blocks left for a provider to claim before it expires.
const EXPIRY_MARGIN: u64 = 25;

/// Arguments of `deai infer`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  deai infer --offer 1 --input digit.png --check --key .deai/dev.key")]
pub struct Args {
    /// The offer to query.
    #[arg(long)]
    pub offer: u64,
    /// A .png image, a .json array (or array of arrays) of input bytes, a .txt text for the
    /// character model, a .bin of raw inputs, or a directory of them.
    #[arg(long)]
    pub input: PathBuf,
    /// Pay through this channel (default: an open one of yours on the offer, else a new one).
    #[arg(long)]
    pub channel: Option<u64>,
    /// Deposit of a new channel, base units (default: 100 queries' worth, or the queries').
    #[arg(long)]
    pub deposit: Option<u128>,
    /// Lifetime of a new channel, blocks.
    #[arg(long, default_value_t = 1_000)]
    pub blocks: u64,
    /// Read images as dark ink on a light background.
    #[arg(long)]
    pub invert: bool,
    /// Queries per request.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Re-execute every answer with the public model and dispute the first wrong one.
    #[arg(long)]
    pub check: bool,
    /// Signing (the payer's key).
    #[command(flatten)]
    pub sign: SignArgs,
    /// The node.
    #[command(flatten)]
    pub node: NodeArgs,
}

/// One answer in the report.
#[derive(Debug, Serialize)]
struct Line {
    input: String,
    class: u32,
    logits: Vec<i32>,
    sequence: u64,
    /// With `--check`: whether re-execution agreed.
    #[serde(skip_serializing_if = "Option::is_none")]
    agrees: Option<bool>,
}

/// What `deai infer --json` prints.
#[derive(Debug, Serialize)]
struct Report {
    offer: u64,
    channel: u64,
    model_hash: Digest,
    queries: usize,
    #[serde(with = "deai_ledger::amount")]
    price: u128,
    /// The channel's spent total after these queries (the provider's count).
    #[serde(with = "deai_ledger::amount")]
    spent: u128,
    /// The highest voucher signed.
    #[serde(with = "deai_ledger::amount")]
    voucher: u128,
    answers: Vec<Line>,
    dispute: Option<DisputeReport>,
    /// Answers whose receipts the provider never signed (they cannot be disputed).
    unsigned: u64,
}

/// Runs `deai infer`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let key = deai_node::keyfile::read(args.sign.key_file()?)?;
    let node = args.node.client();
    let report = block_on(query(&args, node, key))??;
    crate::output::emit(args.node.json, &report, |r| {
        for a in &r.answers {
            let check = match a.agrees {
                Some(true) => "  (re-executed: agrees)",
                Some(false) => "  (re-executed: WRONG)",
                None => "",
            };
            println!("{}: class {}{check}", a.input, a.class);
        }
        println!(
            "{} queries on offer {} through channel {}: {} each; the channel has spent {} (voucher {})",
            r.queries,
            r.offer,
            r.channel,
            amount(r.price),
            amount(r.spent),
            amount(r.voucher)
        );
        if r.unsigned > 0 {
            println!(
                "warning: the provider did not sign the receipts of {} answers (it may have \
                 restarted); those answers cannot be disputed",
                r.unsigned
            );
        }
        if let Some(d) = &r.dispute {
            println!(
                "disputed receipt {} of channel {} in {}: {}",
                d.sequence,
                d.channel,
                d.tx,
                if d.upheld {
                    format!(
                        "upheld, the provider's bond slashed ({} to you)",
                        amount(d.reward)
                    )
                } else {
                    "rejected".to_string()
                }
            );
        }
    })
}

async fn query(
    args: &Args,
    node: Client,
    key: ed25519_dalek::SigningKey,
) -> anyhow::Result<Report> {
    let offer: Offer = node.get(&format!("/v1/offers/{}", args.offer)).await?;
    if offer.status == OfferStatus::Suspended {
        anyhow::bail!(
            "offer {} is suspended (it lost a dispute); pick another with `deai offer list --status active`",
            offer.id
        );
    }
    let model = fetch_model(&node, &offer).await?;
    let inputs = query_input::read(&args.input, &model, args.invert)?;
    let genesis: Genesis = node.get("/v1/genesis").await?;
    let channel = pick_channel(args, &node, &offer, &key, inputs.len()).await?;
    let mut session = PaidSession::new(
        key.clone(),
        genesis.chain_id.clone(),
        offer.clone(),
        channel.clone(),
        genesis.params.limits(),
    );
    // At least what the ledger shows claimed was spent; the provider corrects the rest.
    session.set_spent(channel.claimed);
    let mut answers = Vec::new();
    let mut dispute = None;
    for chunk in inputs.chunks(args.batch.max(1)) {
        let refs: Vec<&[u8]> = chunk.iter().map(|i| i.bytes.as_slice()).collect();
        let got = session.query(&refs).await?;
        for (input, a) in chunk.iter().zip(got) {
            let agrees = args.check.then(|| reexecute(&model, input) == a.output);
            if agrees == Some(false) && dispute.is_none() {
                let signed = session.signed_receipt(&a.receipt).await?;
                let agent = Agent::new(node.clone(), key.clone()).await?;
                dispute = Some(agent.dispute(signed, &input.bytes, &model).await?);
            }
            answers.push(Line {
                input: input.name.clone(),
                class: a.output.class,
                logits: a.output.logits.clone(),
                sequence: a.receipt.sequence,
                agrees,
            });
        }
        if dispute.is_some() {
            break;
        }
    }
    // Every answer leaves with its receipt signed: the provider's batch is collected now.
    session.settle().await?;
    Ok(Report {
        offer: offer.id,
        channel: channel.id,
        model_hash: offer.quant_hash,
        queries: answers.len(),
        price: offer.price_per_query,
        spent: session.spent(),
        voucher: session.voucher().map_or(0, |v| v.voucher.cumulative_amount),
        answers,
        dispute,
        unsigned: session.lost(),
    })
}

fn reexecute(model: &QuantModel, input: &QueryInput) -> deai_infer::Output {
    let x = deai_infer::decode_input(model, &input.bytes).expect("checked when read");
    deai_infer::infer(model, &x)
}

/// `--channel`, else an open channel of this payer on the offer with time left, else a new one.
async fn pick_channel(
    args: &Args,
    node: &Client,
    offer: &Offer,
    key: &ed25519_dalek::SigningKey,
    queries: usize,
) -> anyhow::Result<Channel> {
    let me = Address(key.verifying_key().to_bytes());
    let height = node.status().await?.height;
    let usable = |c: &Channel| {
        c.status == ChannelStatus::Open
            && c.offer == offer.id
            && c.payer == me
            && c.expiry_height > height + EXPIRY_MARGIN
    };
    if let Some(id) = args.channel {
        let c: Channel = node.get(&format!("/v1/channels/{id}")).await?;
        if !usable(&c) {
            anyhow::bail!(
                "channel {id} is not an open channel of yours on offer {} with more than {EXPIRY_MARGIN} blocks left (it expires at {}, the chain is at {height})",
                offer.id,
                c.expiry_height
            );
        }
        return Ok(c);
    }
    let mine: Vec<Channel> = node
        .get(&format!("/v1/channels?payer={me}&offer={}", offer.id))
        .await?;
    if let Some(c) = mine.into_iter().filter(|c| usable(c)).max_by_key(|c| c.id) {
        return Ok(c);
    }
    let deposit = args.deposit.unwrap_or_else(|| {
        offer
            .price_per_query
            .saturating_mul(queries.max(100) as u128)
    });
    let open_args = OpenArgs {
        offer: offer.id,
        deposit,
        blocks: args.blocks,
        expiry_height: None,
        sign: args.sign.clone(),
    };
    let opened = open(&args.node, &open_args).await?;
    Ok(node
        .get(&format!("/v1/channels/{}", opened.channel))
        .await?)
}
