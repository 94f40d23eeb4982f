//! An autonomous buyer of inference: given a job (inputs, a budget, what model it wants), it
//! finds offers on the ledger, pays a provider through a channel, checks a random sample of the
//! answers by re-executing them with the public quantized model, disputes a wrong answer on its
//! own, moves to the next offer when a provider cheats (asking it again for everything the
//! cheater answered), and reports what it bought, spent and disputed.
//!
//! Offer choice: active offers of a model whose task's purpose matches the job (if it names
//! one), whose recorded `accuracy` metric reaches the job's minimum, priced at most the job's
//! maximum; cheapest first, then most accurate, then lowest id. The model blob is fetched by its
//! hash (the node's blob store, else the provider's) and checked before any money moves.
//!
//! What the sample cannot catch: a provider wrong on a share `p` of answers escapes a check of
//! `k` answers with probability `(1 − p)^k`; the report says how many were checked. A provider
//! that refuses to answer is left for the next offer (the channel's deposit comes back after
//! expiry; nothing was paid for unanswered queries beyond the voucher's prepaid margin).

use std::collections::BTreeSet;

use deai_infer::QuantModel;
use deai_ledger::{
    Channel, Event, Genesis, Model, Offer, SignedQueryReceipt, Task, TxBody,
    tx::{ChannelOpen, ReceiptDispute},
};
use ed25519_dalek::SigningKey;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::{
    api::types::TxState,
    client::Client,
    roles::{
        provider::client::{Answer, PaidSession},
        setup::created_id,
    },
};

/// What the agent is asked to do.
#[derive(Debug, Clone)]
pub struct Job {
    /// Only models trained for this purpose (the task's), if set.
    pub purpose: Option<String>,
    /// Only this model, if set.
    pub model: Option<u64>,
    /// Smallest recorded `accuracy` metric accepted (0..=1), if set.
    pub accuracy_min: Option<f64>,
    /// Highest price per query accepted, base units, if set.
    pub price_max: Option<u128>,
    /// Most the job may spend in deposits, base units.
    pub budget: u128,
    /// Share of answers re-executed locally (at least one per request).
    pub check_share: f64,
    /// Queries per request.
    pub batch: usize,
    /// Channel lifetime, blocks.
    pub channel_blocks: u64,
    /// Seeds which answers are checked.
    pub seed: u64,
}

/// A named input, as the model it is for takes it.
pub type NamedInput = (String, Vec<u8>);

/// Turns the job's files into a model's inputs (image size and scale depend on the model).
pub type Prepare<'a> = dyn Fn(&QuantModel) -> anyhow::Result<Vec<NamedInput>> + 'a;

/// One answer the job kept.
#[derive(Debug, Clone, Serialize)]
pub struct Answered {
    /// The input's name.
    pub input: String,
    /// The class answered.
    pub class: u32,
    /// The offer that answered.
    pub offer: u64,
    /// Whether the agent re-executed it.
    pub checked: bool,
}

/// A dispute the agent sent.
#[derive(Debug, Clone, Serialize)]
pub struct DisputeReport {
    /// The offer disputed.
    pub offer: u64,
    /// The receipt's channel and sequence.
    pub channel: u64,
    /// The receipt's sequence.
    pub sequence: u64,
    /// Its transaction.
    pub tx: deai_ledger::TxId,
    /// Whether the ledger upheld it (the provider's bond slashed).
    pub upheld: bool,
    /// Paid to the agent from the bond.
    #[serde(with = "deai_ledger::amount")]
    pub reward: u128,
    /// Burned from the bond.
    #[serde(with = "deai_ledger::amount")]
    pub burned: u128,
}

/// How one offer was used.
#[derive(Debug, Clone, Serialize)]
pub struct OfferUse {
    /// The offer.
    pub offer: u64,
    /// Its model.
    pub model: u64,
    /// The channel opened for it.
    pub channel: u64,
    /// Price per query.
    #[serde(with = "deai_ledger::amount")]
    pub price: u128,
    /// Queries it answered.
    pub queries: u64,
    /// What the answered queries cost (the channel's spent total).
    #[serde(with = "deai_ledger::amount")]
    pub paid: u128,
    /// Answers re-executed locally.
    pub checked: u64,
    /// Answers that differed from the re-execution.
    pub mismatches: u64,
    /// Why the agent stopped using it early, if it did.
    pub dropped: Option<String>,
    /// What came back when the agent closed the channel at once (after an upheld dispute the
    /// offer is suspended, its channels close early and nothing more is claimed from them).
    #[serde(with = "deai_ledger::amount")]
    pub refunded: u128,
}

/// What the job bought, spent and disputed.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Offers that matched the job.
    pub offers_matching: usize,
    /// Each offer used, in order.
    pub used: Vec<OfferUse>,
    /// Inputs answered by an offer that was not caught cheating.
    pub answered: usize,
    /// Inputs in the job.
    pub inputs: usize,
    /// Queries paid in all (including answers thrown away after a cheater was caught).
    pub queries: u64,
    /// Paid in all, base units.
    #[serde(with = "deai_ledger::amount")]
    pub paid: u128,
    /// Answers re-executed.
    pub checked: u64,
    /// Disputes sent.
    pub disputes: Vec<DisputeReport>,
    /// The kept answers, in input order.
    pub answers: Vec<Answered>,
}

/// An agent acting for `key` through the validator at `node`.
pub struct Agent {
    node: Client,
    key: SigningKey,
    genesis: Genesis,
}

impl Agent {
    /// An agent paying from `key`'s account, reading and sending through `node`.
    pub async fn new(node: Client, key: SigningKey) -> anyhow::Result<Self> {
        let genesis: Genesis = node.get("/v1/genesis").await?;
        Ok(Self { node, key, genesis })
    }

    /// The active offers that match `job`, best first.
    pub async fn discover(&self, job: &Job) -> anyhow::Result<Vec<(Offer, Option<f64>)>> {
        let mut path = "/v1/offers?status=active".to_string();
        if let Some(m) = job.model {
            path.push_str(&format!("&model={m}"));
        }
        let offers: Vec<Offer> = self.node.get(&path).await?;
        let mut out = Vec::new();
        for offer in offers {
            if job.price_max.is_some_and(|max| offer.price_per_query > max) {
                continue;
            }
            let model: Model = self
                .node
                .get(&format!("/v1/models/{}", offer.model))
                .await?;
            if let Some(purpose) = &job.purpose {
                let task: Task = self.node.get(&format!("/v1/tasks/{}", model.task)).await?;
                if &task.purpose != purpose {
                    continue;
                }
            }
            let accuracy = model
                .metrics
                .iter()
                .find(|m| m.name == "accuracy")
                .map(|m| m.value as f64 / deai_ledger::METRIC_SCALE as f64);
            if let Some(min) = job.accuracy_min
                && accuracy.is_none_or(|a| a < min)
            {
                continue;
            }
            out.push((offer, accuracy));
        }
        out.sort_by(|(a, aa), (b, ba)| {
            a.price_per_query
                .cmp(&b.price_per_query)
                .then(ba.unwrap_or(0.0).total_cmp(&aa.unwrap_or(0.0)))
                .then(a.id.cmp(&b.id))
        });
        Ok(out)
    }

    /// Runs `job` on the inputs `prepare` makes for each model; `progress` hears each request.
    pub async fn run(
        &self,
        job: &Job,
        prepare: &Prepare<'_>,
        progress: &mut (dyn FnMut(usize, usize) + Send),
    ) -> anyhow::Result<Report> {
        let offers = self.discover(job).await?;
        if offers.is_empty() {
            anyhow::bail!(
                "no active offer matches the job (purpose, model, accuracy, price); list them with `deai offer list`"
            );
        }
        let mut report = Report {
            offers_matching: offers.len(),
            used: Vec::new(),
            answered: 0,
            inputs: 0,
            queries: 0,
            paid: 0,
            checked: 0,
            disputes: Vec::new(),
            answers: Vec::new(),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(job.seed);
        let mut budget = job.budget;
        // Answers of the current offer per input index; cleared when the offer is caught.
        let mut done: Vec<Option<Answered>> = Vec::new();
        let mut tried = BTreeSet::new();
        for (offer, _) in &offers {
            if done.iter().all(Option::is_some) && !done.is_empty() {
                break;
            }
            tried.insert(offer.id);
            let Ok(model) = fetch_model(&self.node, offer).await else {
                continue;
            };
            let inputs = prepare(&model)?;
            if done.is_empty() {
                done = vec![None; inputs.len()];
                report.inputs = inputs.len();
            }
            let todo: Vec<usize> = (0..inputs.len()).filter(|&i| done[i].is_none()).collect();
            let cost = offer.price_per_query.saturating_mul(todo.len() as u128);
            let deposit = cost.min(budget);
            if deposit < offer.price_per_query {
                break;
            }
            let channel = self.open(offer, deposit, job.channel_blocks).await?;
            budget -= deposit;
            let mut session = PaidSession::new(
                self.key.clone(),
                self.genesis.chain_id.clone(),
                offer.clone(),
                channel.clone(),
                self.genesis.params.limits(),
            );
            let mut used = OfferUse {
                offer: offer.id,
                model: offer.model,
                channel: channel.id,
                price: offer.price_per_query,
                queries: 0,
                paid: 0,
                checked: 0,
                mismatches: 0,
                dropped: None,
                refunded: 0,
            };
            let mut mine: Vec<usize> = Vec::new();
            for chunk in todo.chunks(job.batch.max(1)) {
                let refs: Vec<&[u8]> = chunk.iter().map(|&i| inputs[i].1.as_slice()).collect();
                let answers = match session.query(&refs).await {
                    Ok(a) => a,
                    Err(e) => {
                        used.dropped = Some(e.to_string());
                        break;
                    }
                };
                used.queries += answers.len() as u64;
                let sample = pick(&mut rng, answers.len(), job.check_share);
                let mut caught = None;
                for (j, (&i, a)) in chunk.iter().zip(&answers).enumerate() {
                    let checked = sample.contains(&j);
                    if checked {
                        used.checked += 1;
                        if !agrees(&model, &inputs[i].1, a) {
                            used.mismatches += 1;
                            caught.get_or_insert((i, a.receipt.clone()));
                        }
                    }
                    done[i] = Some(Answered {
                        input: inputs[i].0.clone(),
                        class: a.output.class,
                        offer: offer.id,
                        checked,
                    });
                    mine.push(i);
                }
                progress(done.iter().filter(|d| d.is_some()).count(), done.len());
                if let Some((i, receipt)) = caught {
                    // Nothing this provider said is kept: ask the next offer again.
                    for &k in &mine {
                        done[k] = None;
                    }
                    let signed = match session.signed_receipt(&receipt).await {
                        Ok(signed) => signed,
                        Err(e) => {
                            used.dropped = Some(format!(
                                "answer for {} differs from re-execution and cannot be \
                                 disputed: {e}",
                                inputs[i].0
                            ));
                            break;
                        }
                    };
                    let d = self.dispute(signed, &inputs[i].1, &model).await?;
                    used.dropped = Some(format!(
                        "answer for {} differs from re-execution; dispute {}",
                        inputs[i].0,
                        if d.upheld { "upheld" } else { "rejected" }
                    ));
                    if d.upheld {
                        used.refunded = self.close(channel.id).await?;
                    }
                    report.disputes.push(d);
                    break;
                }
            }
            used.paid = session.spent();
            report.queries += used.queries;
            report.paid += used.paid;
            report.checked += used.checked;
            report.used.push(used);
        }
        report.answers = done.into_iter().flatten().collect();
        report.answered = report.answers.len();
        Ok(report)
    }

    /// Signs and sends `body` from the agent's account (the ledger's minimum fee unless `fee`),
    /// waits until it is final and applied; its id and receipt.
    async fn send(
        &self,
        body: TxBody,
        fee: Option<u128>,
    ) -> anyhow::Result<(deai_ledger::TxId, deai_ledger::Receipt)> {
        let wait = Some(std::time::Duration::from_secs(30));
        let sent = self.node.send(&self.key, body, fee, wait).await?;
        match sent.state {
            Some(TxState::Finalized { receipt, .. }) => Ok((sent.id, receipt)),
            _ => anyhow::bail!("transaction {} was not reported final", sent.id),
        }
    }

    async fn open(&self, offer: &Offer, deposit: u128, blocks: u64) -> anyhow::Result<Channel> {
        let height = self.node.status().await?.height;
        let body = TxBody::ChannelOpen(ChannelOpen {
            offer: offer.id,
            deposit,
            expiry_height: height.saturating_add(blocks),
        });
        let (_, receipt) = self.send(body, None).await?;
        let id = created_id(&receipt, "channel_opened")?;
        Ok(self.node.get(&format!("/v1/channels/{id}")).await?)
    }

    /// Closes `channel` (the payer may once its offer is suspended); the refund.
    async fn close(&self, channel: u64) -> anyhow::Result<u128> {
        let body = TxBody::ChannelClose(deai_ledger::tx::ChannelClose { channel });
        let (_, receipt) = self.send(body, None).await?;
        Ok(receipt
            .events
            .iter()
            .find_map(|e| match e {
                Event::ChannelClosed { refund, .. } => Some(*refund),
                _ => None,
            })
            .unwrap_or(0))
    }

    /// Disputes `receipt` with its input and the model blob; the ledger's verdict.
    pub async fn dispute(
        &self,
        receipt: SignedQueryReceipt,
        input: &[u8],
        model: &QuantModel,
    ) -> anyhow::Result<DisputeReport> {
        let (offer, channel, sequence) = (
            receipt.receipt.offer_id,
            receipt.receipt.channel_id,
            receipt.receipt.sequence,
        );
        let tx = ReceiptDispute {
            receipt,
            input: input.to_vec(),
            model: model.encode(),
        };
        let fee = tx.fee_min(&self.genesis.params);
        let (tx, receipt) = self.send(TxBody::ReceiptDispute(tx), Some(fee)).await?;
        let mut out = DisputeReport {
            offer,
            channel,
            sequence,
            tx,
            upheld: false,
            reward: 0,
            burned: 0,
        };
        for e in &receipt.events {
            if let Event::DisputeUpheld { reward, burned, .. } = e {
                out.upheld = true;
                out.reward = *reward;
                out.burned = *burned;
            }
        }
        Ok(out)
    }
}

/// The offer's quantized model, by hash from `node`'s blob store (else the provider's), checked
/// against the hash the offer names.
pub async fn fetch_model(node: &Client, offer: &Offer) -> anyhow::Result<QuantModel> {
    let hash = offer.quant_hash;
    let bytes = match node.get_blob(&hash).await {
        Ok(b) => b,
        Err(first) => Client::new(offer.endpoint.clone())
            .get_blob(&hash)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "offer {}'s model blob {hash} is not at the node ({first}) nor at the provider ({e})",
                    offer.id
                )
            })?,
    };
    // `get_blob` checked the bytes against the hash.
    QuantModel::decode(&bytes)
        .map_err(|e| anyhow::anyhow!("offer {}'s model blob does not decode: {e}", offer.id))
}

/// Whether re-executing `input` gives the answer's output.
fn agrees(model: &QuantModel, input: &[u8], a: &Answer) -> bool {
    deai_infer::decode_input(model, input).is_ok_and(|x| deai_infer::infer(model, &x) == a.output)
}

/// Which of `n` answers to check: each with probability `share`, at least one.
fn pick(rng: &mut impl Rng, n: usize, share: f64) -> BTreeSet<usize> {
    let mut out: BTreeSet<usize> = (0..n)
        .filter(|_| rng.gen_bool(share.clamp(0.0, 1.0)))
        .collect();
    if out.is_empty() && n > 0 {
        out.insert(rng.gen_range(0..n));
    }
    out
}
