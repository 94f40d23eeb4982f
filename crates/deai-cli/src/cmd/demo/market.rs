//! The demo after training: the registered model is quantized and offered by two providers, one
//! of which (the cheaper) answers every tenth query wrong; an agent buys answers for test images
//! within a budget, re-executes a sample, catches the cheater, wins the dispute and finishes with
//! the honest provider; the honest provider claims its vouchers on its own and the data owners
//! whose datasets trained the model receive their royalty shares.

use std::{collections::BTreeMap, path::Path, time::Duration};

use deai_infer::features::features_to_bytes;
use deai_learn::data::digits;
use deai_ledger::{Address, Channel, Digest, Event, Model};
use deai_node::{
    agent::{self, Agent, Job},
    client::Client,
    config::ProviderConfig,
    fed::TaskSpec,
    roles::{
        serve::{self, RoleNode, RoleNodeConfig},
        setup,
    },
};
use ed25519_dalek::SigningKey;
use serde::Serialize;

use super::scenario::OwnerSummary;

/// Test images the agent buys answers for.
const QUERIES: usize = 300;
/// Prices per query, base units: the cheater undercuts the honest provider.
const HONEST_PRICE: u128 = 3;
const CHEATER_PRICE: u128 = 2;
/// Share of every claimed payment paid to the training datasets' owners.
const ROYALTY_BPS: u32 = 1_000;

/// Provider `i`'s key (0 honest, 1 cheater).
pub(super) fn provider_key(i: u8) -> SigningKey {
    let mut seed = [0u8; 32];
    seed[0] = 0x50;
    seed[1] = i;
    SigningKey::from_bytes(&seed)
}

/// The agent's key.
pub(super) fn buyer_key() -> SigningKey {
    SigningKey::from_bytes(&[0x60; 32])
}

/// One owner's royalty income.
#[derive(Debug, Clone, Serialize)]
pub struct RoyaltyLine {
    /// Owner index.
    pub owner: usize,
    /// Its dataset.
    pub dataset: u64,
    /// Royalties received, base units.
    #[serde(with = "deai_ledger::amount")]
    pub amount: u128,
}

/// What the market phase did.
#[derive(Debug, Clone, Serialize)]
pub struct Market {
    /// The float model's test accuracy (deai-learn).
    pub float_accuracy: f64,
    /// The quantized model's test accuracy (deai-infer, integer only).
    pub quantized_accuracy: f64,
    /// Share of test samples whose integer class is the float class: the quantizer's fidelity,
    /// which the two accuracies (359 samples, a sample is 0.28 pt) show only coarsely.
    pub agreement: f64,
    /// BLAKE3 of the quantized blob both offers name.
    pub quant_hash: Digest,
    /// Its size.
    pub blob_bytes: usize,
    /// Its operations per query (what a dispute re-executes).
    pub ops: u64,
    /// The honest and the cheating offer.
    pub offers: [u64; 2],
    /// Queries the agent paid for (all providers).
    pub queries: u64,
    /// What those queries cost, base units.
    #[serde(with = "deai_ledger::amount")]
    pub paid: u128,
    /// Answers the agent re-executed.
    pub checked: u64,
    /// Answers kept (from providers not caught cheating), of `inputs`.
    pub answered: usize,
    /// Images in the job.
    pub inputs: usize,
    /// Share of kept answers that match the test labels.
    pub answered_accuracy: f64,
    /// Disputes the agent sent.
    pub disputes: usize,
    /// Whether the cheater's bond was slashed and its offer suspended.
    pub cheater_slashed: bool,
    /// What the honest provider claimed on the ledger, base units.
    #[serde(with = "deai_ledger::amount")]
    pub honest_claimed: u128,
    /// Royalties per owner.
    pub royalties: Vec<RoyaltyLine>,
    /// The agent's full report.
    pub agent: agent::Report,
}

async fn provider(root: &Path, url: &str, i: u8, cheat: bool) -> anyhow::Result<RoleNode> {
    let name = if cheat { "cheater" } else { "provider" };
    let cfg = ProviderConfig {
        claim_every_ms: 200,
        claim_min: 1,
        wrong_answer_every: if cheat { 10 } else { 0 },
        ..ProviderConfig::default()
    };
    serve::start(RoleNodeConfig::provider(
        provider_key(i),
        url,
        &root.join(name),
        cfg,
    ))
    .await
}

/// Runs the market phase on the validator at `url` for the registered model `model_id`.
pub(super) async fn run(
    url: &str,
    root: &Path,
    model_id: u64,
    spec: &TaskSpec,
    owners: &[OwnerSummary],
    require_accuracy: bool,
) -> anyhow::Result<Market> {
    let client = Client::new(url.to_string());
    let start_height = client.status().await?.height;
    let model: Model = client.get(&format!("/v1/models/{model_id}")).await?;
    let weights = client.get_blob(&model.model_hash).await?;
    let kind = spec.model_kind()?;
    let params = deai_node::fed::weights::decode(&kind, &weights)?;
    let (train, test) = match spec.dataset.as_str() {
        // Calibrated on 2,000 training images, scored on the task's validation images.
        "fashion-mnist" => {
            let (train, _) = deai_learn::data::fashion::load(Some(2_000))?;
            let (_, test) =
                deai_learn::data::fashion::load(Some(super::scenario::FASHION_VALIDATION))?;
            (train, test)
        }
        _ => digits::split(&digits::load()?),
    };
    let scored = crate::cmd::quantize::quantize_and_score(&kind, &params, &train, &test)?;
    let qm = scored.model;
    let quant_hash = Digest(qm.hash());
    let agreement = deai_infer::bench::agreement(&qm, &kind, &params, &test)?.unwrap_or(0.0);

    let honest = provider(root, url, 0, false).await?;
    let cheater = provider(root, url, 1, true).await?;
    let mut offers = [0u64; 2];
    for (slot, (node, price)) in [(&honest, HONEST_PRICE), (&cheater, CHEATER_PRICE)]
        .into_iter()
        .enumerate()
    {
        let offer =
            setup::create_offer(&node.ctx, model_id, &qm, price, &node.url, ROYALTY_BPS).await?;
        offers[slot] = offer.id;
    }

    let inputs: Vec<(String, Vec<u8>)> = (0..QUERIES.min(test.len()))
        .map(|i| {
            Ok((
                format!("test[{i}]"),
                features_to_bytes(&qm, test.sample(i))?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let task: deai_ledger::Task = client.get(&format!("/v1/tasks/{}", model.task)).await?;
    let job = Job {
        purpose: Some(task.purpose),
        model: Some(model_id),
        // A model trained under `--attack` may be poor; the agent buys from it anyway.
        accuracy_min: require_accuracy.then_some(0.5),
        price_max: None,
        budget: 10 * HONEST_PRICE * QUERIES as u128,
        check_share: 0.2,
        batch: 50,
        channel_blocks: 500,
        seed: 7,
    };
    let agent = Agent::new(client.clone(), buyer_key()).await?;
    let prepare = |_: &deai_infer::QuantModel| Ok(inputs.clone());
    let report = agent.run(&job, &prepare, &mut |_, _| {}).await?;

    // The honest provider claims on its own: wait for the ledger to show it.
    let honest_use = report.used.iter().find(|u| u.offer == offers[0]);
    let mut honest_claimed = 0;
    if let Some(u) = honest_use {
        let mut last = 0;
        for _ in 0..100 {
            let c: Channel = client.get(&format!("/v1/channels/{}", u.channel)).await?;
            last = c.claimed;
            if c.claimed >= u.paid {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        honest_claimed = last;
    }
    let cheater_offer: deai_ledger::Offer =
        client.get(&format!("/v1/offers/{}", offers[1])).await?;
    let royalties = royalties(&client, start_height, owners).await?;
    let labelled = report
        .answers
        .iter()
        .filter(|a| {
            a.input
                .trim_start_matches("test[")
                .trim_end_matches(']')
                .parse::<usize>()
                .is_ok_and(|i| test.labels.get(i) == Some(&a.class))
        })
        .count();
    honest.stop();
    cheater.stop();
    Ok(Market {
        float_accuracy: scored.float_accuracy,
        quantized_accuracy: scored.quantized_accuracy,
        agreement,
        quant_hash,
        blob_bytes: qm.encode().len(),
        ops: qm.ops(),
        offers,
        queries: report.queries,
        paid: report.paid,
        checked: report.checked,
        answered: report.answered,
        inputs: report.inputs,
        answered_accuracy: labelled as f64 / report.answered.max(1) as f64,
        disputes: report.disputes.len(),
        cheater_slashed: cheater_offer.status == deai_ledger::OfferStatus::Suspended
            && report
                .disputes
                .iter()
                .any(|d| d.upheld && d.offer == offers[1]),
        honest_claimed,
        royalties,
        agent: report,
    })
}

/// Royalties paid to each demo owner in the blocks after `from`.
async fn royalties(
    client: &Client,
    from: u64,
    owners: &[OwnerSummary],
) -> anyhow::Result<Vec<RoyaltyLine>> {
    let to = client.status().await?.height;
    let mut paid: BTreeMap<Address, u128> = BTreeMap::new();
    for h in from + 1..=to {
        for e in client.block(h).await?.events {
            if let Event::RoyaltyPaid { owner, amount, .. } = e {
                *paid.entry(owner).or_default() += amount;
            }
        }
    }
    Ok(owners
        .iter()
        .map(|o| RoyaltyLine {
            owner: o.owner,
            dataset: o.dataset,
            amount: paid
                .get(&deai_node::keyfile::address(&super::scenario::owner_key(
                    o.owner,
                )))
                .copied()
                .unwrap_or(0),
        })
        .collect())
}
