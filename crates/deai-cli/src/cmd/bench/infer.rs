//! `deai bench infer`: the integer engine against burn in this process; paid against unpaid
//! queries over HTTP on loopback (a real validator, a real provider role, the payer's
//! `PaidSession`); voucher checks on one core; a dispute's re-execution per model kind.
//!
//! The HTTP phases run the same provider code twice on one offer: once answering without
//! payment (the baseline, `ProviderRole::without_payment`) and once checking vouchers and
//! signing receipts, each with `clients` concurrent payers sending batches of `batch` inputs for
//! `seconds`, the two alternating `repeat` times. `payment_overhead` is the median over those
//! pairs of `1 − paid q/s / unpaid q/s`, per batch size.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use deai_infer::{Arch, QuantModel};
use deai_ledger::{Channel, Genesis, Offer, TOKEN, TxBody, Voucher, tx::ChannelOpen};
use deai_node::{
    client::Client,
    config::{HttpConfig, NodeConfig, ProviderConfig},
    roles::{
        RoleContext,
        provider::{ProviderRole, client::PaidSession, wire},
        send_tx,
        setup::{self, created_id},
    },
};
use ed25519_dalek::SigningKey;
use serde::Serialize;

/// Arguments of `deai bench infer`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  deai bench infer --seconds 3 --batch 1 --batch 32 --json")]
pub struct Args {
    /// Seconds of load per HTTP measurement.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Concurrent payers.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Unpaid and paid phases run alternately this many times per batch size; the figures are
    /// the medians (a shared machine drifts between phases, and the first phase warms up).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Pay every voucher this many queries ahead instead of the payer's ramp (32 queries,
    /// doubling per voucher answered, up to 1,024): how much the ramp saves.
    #[arg(long)]
    pub prepay: Option<u64>,
    /// Queries per request (repeat for several).
    #[arg(long, default_values_t = [1usize, 32])]
    pub batch: Vec<usize>,
    /// Skip the engine-against-burn figures (and the Fashion-MNIST CNN).
    #[arg(long)]
    pub no_engine: bool,
    /// Leave the Fashion-MNIST CNN out of the engine figures.
    #[arg(long)]
    pub no_fashion: bool,
    /// The model the HTTP phases serve (seeded weights: speed does not depend on them).
    #[arg(long, value_enum, default_value = "digits-mlp")]
    pub http_model: HttpModel,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Paid against unpaid queries at one batch size.
#[derive(Debug, Clone, Serialize)]
pub struct HttpRow {
    /// The served model.
    pub model: String,
    /// Queries per request.
    pub batch: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Queries per second without payment (median of the runs).
    pub bare_qps: f64,
    /// Queries per second with vouchers checked and receipts signed and checked (median).
    pub paid_qps: f64,
    /// `1 − paid / unpaid` of the median pair (the upper middle one for an even count).
    pub payment_overhead: f64,
    /// `1 − paid / unpaid` of each alternating pair, in order.
    pub payment_overhead_runs: Vec<f64>,
    /// Paid request latency, median, ms.
    pub p50_ms: f64,
    /// Paid request latency, 99th percentile, ms.
    pub p99_ms: f64,
    /// Unpaid request latency, median, ms.
    pub bare_p50_ms: f64,
    /// Unpaid request latency, 99th percentile, ms.
    pub bare_p99_ms: f64,
}

/// One model kind's dispute cost.
#[derive(Debug, Clone, Serialize)]
pub struct DisputeRow {
    /// Architecture.
    pub model: String,
    /// Its operations per query.
    pub ops: u64,
    /// Decode the blob, check the input, run the query: median ms.
    pub dispute_reexec_ms: f64,
}

/// What `deai bench infer --json` prints.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Engine against burn, in process (absent with `--no-engine`).
    pub engine: Option<Vec<deai_infer::bench::Throughput>>,
    /// Over HTTP on loopback, per batch size.
    pub http: Vec<HttpRow>,
    /// Voucher decode and signature check, one core, per second.
    pub voucher_checks_per_s: f64,
    /// Per model kind.
    pub disputes: Vec<DisputeRow>,
    /// Queries each voucher paid ahead (`--prepay`); absent: the payer's ramp.
    pub prepay: Option<u64>,
    /// Whole run, seconds.
    pub wall_s: f64,
}

fn key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[0x70 + i; 32])
}

/// What the HTTP phases serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HttpModel {
    /// The digits MLP 64-128-10 (about 10k multiply-adds a query).
    DigitsMlp,
    /// The Fashion-MNIST MLP 784-128-10 (about 100k).
    FashionMlp,
}

/// The model the HTTP phases serve (seeded weights: speed does not depend on them).
fn served_model(which: HttpModel) -> QuantModel {
    let inputs = match which {
        HttpModel::DigitsMlp => 64,
        HttpModel::FashionMlp => 784,
    };
    QuantModel::seeded(
        Arch::Mlp {
            inputs,
            hidden: 128,
            classes: 10,
        },
        1,
    )
}

/// Runs `deai bench infer`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let engine = if args.no_engine {
        None
    } else {
        Some(deai_infer::bench::engine_qps(3, !args.no_fashion)?)
    };
    let voucher_checks_per_s = voucher_checks_per_s();
    let disputes = dispute_rows();
    let http = http_rows(&args)?;
    let report = Report {
        engine,
        http,
        voucher_checks_per_s,
        disputes,
        prepay: args.prepay,
        wall_s: started.elapsed().as_secs_f64(),
    };
    crate::output::emit(args.json, &report, print)
}

fn print(r: &Report) {
    if let Some(rows) = &r.engine {
        println!("engine against burn (in process, queries/s):");
        for t in rows {
            println!(
                "  {:<24} engine {:>10.0}  burn {:>10.0}  ({:.2}×); one thread {:>9.0} vs {:>9.0}; one query {:.1} µs vs {:.1} µs",
                t.model,
                t.engine_qps,
                t.burn_qps,
                t.speedup,
                t.engine_qps_1t,
                t.burn_qps_1t,
                t.engine_latency_us,
                t.burn_latency_us
            );
        }
    }
    println!("over HTTP on loopback (queries/s):");
    for h in &r.http {
        println!(
            "  {} batch {:>3}, {} clients: unpaid {:>8.0}  paid {:>8.0}  overhead {:>5.1} %  p50 {:.2} ms  p99 {:.2} ms",
            h.model,
            h.batch,
            h.clients,
            h.bare_qps,
            h.paid_qps,
            h.payment_overhead * 100.0,
            h.p50_ms,
            h.p99_ms
        );
    }
    println!(
        "voucher checks (decode + signature), one core: {:.0}/s",
        r.voucher_checks_per_s
    );
    for d in &r.disputes {
        println!(
            "dispute re-execution, {:<24} ({:>9} ops): {:.3} ms",
            d.model, d.ops, d.dispute_reexec_ms
        );
    }
}

fn voucher_checks_per_s() -> f64 {
    let payer = key(9);
    let params = deai_ledger::Params::default();
    let signer = deai_ledger::Address(payer.verifying_key().to_bytes());
    let vouchers: Vec<Vec<u8>> = (0..2_000u128)
        .map(|i| {
            Voucher {
                chain_id: "deai-bench".into(),
                channel_id: 1,
                cumulative_amount: i,
            }
            .sign(&payer)
            .encode()
        })
        .collect();
    let t = Instant::now();
    let mut ok = 0usize;
    for v in &vouchers {
        let v = deai_ledger::SignedVoucher::decode(v, &params).expect("our own voucher");
        ok += usize::from(v.verify(&signer).is_ok());
    }
    assert_eq!(ok, vouchers.len(), "every voucher verifies");
    vouchers.len() as f64 / t.elapsed().as_secs_f64()
}

fn dispute_rows() -> Vec<DisputeRow> {
    let archs = [
        Arch::Logistic {
            inputs: 64,
            classes: 10,
        },
        Arch::Mlp {
            inputs: 64,
            hidden: 128,
            classes: 10,
        },
        Arch::Mlp {
            inputs: 784,
            hidden: 128,
            classes: 10,
        },
        Arch::Cnn {
            side: 28,
            c1: 8,
            c2: 16,
            classes: 10,
        },
        Arch::CharLstm {
            seq: 80,
            vocab: 95,
            embed: 8,
            hidden: 64,
        },
    ];
    archs
        .into_iter()
        .map(|arch| {
            let model = QuantModel::seeded(arch, 3);
            let blob = model.encode();
            let input = vec![0u8; model.input_shape().len];
            let mut ms: Vec<f64> = (0..15)
                .map(|_| {
                    let t = Instant::now();
                    let m = QuantModel::decode(&blob).expect("a seeded model decodes");
                    let x = deai_infer::decode_input(&m, &input).expect("zeros are an input");
                    std::hint::black_box(deai_infer::infer(&m, &x));
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            ms.sort_by(f64::total_cmp);
            DisputeRow {
                model: model.arch().to_string(),
                ops: model.ops(),
                dispute_reexec_ms: ms[ms.len() / 2],
            }
        })
        .collect()
}

/// Starts a validator in this process, offers the MLP, serves it twice (unpaid and paid) and
/// loads both at each batch size.
fn http_rows(args: &Args) -> anyhow::Result<Vec<HttpRow>> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("validator");
    deai_node::init::init_with(&dir, NodeConfig::default(), |g| {
        g.balances = (0..=args.clients as u8 + 2)
            .map(|i| (deai_node::keyfile::address(&key(i)), 1_000_000 * TOKEN))
            .collect();
    })?;
    let root = tmp.path().to_path_buf();
    let batches = args.batch.clone();
    let (clients, seconds, repeat) = (args.clients.max(1), args.seconds, args.repeat.max(1));
    let prepay = args.prepay;
    let which = args.http_model;
    deai_node::run::with_embedded(&dir, move |node| async move {
        let url = format!("http://{}", node.http_addr);
        let ledger = Client::new(url.clone());
        let provider = RoleContext::connect(key(0), ledger.clone()).await?;
        let owner = RoleContext::connect(key(1), ledger.clone()).await?;
        let model = served_model(which);
        let model_id = setup::register_untrained_model(&owner, &provider, "bench").await?;
        let bare_url = serve(&provider, &root.join("bare"), true).await?;
        let paid_url = serve(&provider, &root.join("paid"), false).await?;
        let offer = setup::create_offer(&provider, model_id, &model, 1, &paid_url, 0).await?;
        let genesis: Genesis = ledger.get("/v1/genesis").await?;
        let lifetime = genesis.params.channel_expiry_max.min(10_000);
        let mut sessions = Vec::new();
        for c in 0..clients {
            let payer = RoleContext::connect(key(c as u8 + 2), ledger.clone()).await?;
            let height = ledger.status().await?.height;
            let opened = send_tx(
                &payer,
                TxBody::ChannelOpen(ChannelOpen {
                    offer: offer.id,
                    deposit: 1_000_000_000,
                    expiry_height: height + lifetime,
                }),
            )
            .await?;
            let id = created_id(&opened.receipt, "channel_opened")?;
            let channel: Channel = ledger.get(&format!("/v1/channels/{id}")).await?;
            sessions.push((payer.key.clone(), channel));
        }
        let shape = model.input_shape();
        let input: Vec<u8> = (0..shape.len)
            .map(|i| (i % (usize::from(shape.max) + 1)) as u8)
            .collect();
        let mut rows = Vec::new();
        for &batch in &batches {
            let body = input.repeat(batch);
            let mut bare_runs = Vec::with_capacity(repeat);
            let mut paid_runs = Vec::with_capacity(repeat);
            for _ in 0..repeat {
                let bare = load(clients, seconds, batch, |_| {
                    let client = Client::new(bare_url.clone());
                    let body = body.clone();
                    let path = format!("/v1/infer/{}", offer.id);
                    move || {
                        let (client, body, path) = (client.clone(), body.clone(), path.clone());
                        async move {
                            let (_, bytes) = client
                                .post_octets(&path, &[], body)
                                .await
                                .map_err(|(e, _)| anyhow::anyhow!("{e}"))?;
                            wire::Answer::decode(&bytes, batch, usize::MAX)?;
                            Ok(())
                        }
                    }
                })
                .await?;
                bare_runs.push(bare);
                let phase = PaidPhase {
                    sessions: &sessions,
                    genesis: &genesis,
                    offer: &offer,
                    prepay,
                };
                paid_runs.push(load_paid(&phase, seconds, batch, &input).await?);
            }
            let payment_overhead_runs: Vec<f64> = bare_runs
                .iter()
                .zip(&paid_runs)
                .map(|(b, p)| 1.0 - p.qps / b.qps.max(f64::MIN_POSITIVE))
                .collect();
            // The median of the pairs' ratios: each pair ran back to back, so a machine that
            // drifts between pairs moves both of its phases.
            let mut sorted = payment_overhead_runs.clone();
            sorted.sort_by(f64::total_cmp);
            let payment_overhead = sorted[sorted.len() / 2];
            let (bare, paid) = (median_run(bare_runs), median_run(paid_runs));
            rows.push(HttpRow {
                model: model.arch().to_string(),
                batch,
                clients,
                bare_qps: bare.qps,
                paid_qps: paid.qps,
                payment_overhead,
                payment_overhead_runs,
                p50_ms: paid.p50_ms,
                p99_ms: paid.p99_ms,
                bare_p50_ms: bare.p50_ms,
                bare_p99_ms: bare.p99_ms,
            });
        }
        Ok(rows)
    })
}

/// Serves the provider role for `ctx`'s offers on a free loopback port (unpaid when `free`),
/// with per-client write limits out of the way; its URL.
async fn serve(ctx: &RoleContext, dir: &std::path::Path, free: bool) -> anyhow::Result<String> {
    let blobs = deai_node::blobs::BlobStore::open(&dir.join("blobs"), 1 << 24)?;
    let cfg = ProviderConfig {
        batch_max: 1_024,
        ..ProviderConfig::default()
    };
    let mut role = ProviderRole::open(ctx.clone(), cfg, blobs, dir).await?;
    if free {
        role = role.without_payment();
    }
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let http = HttpConfig {
        writes_per_ip_per_s: u32::MAX,
        writes_per_ip_burst: u32::MAX,
        ..HttpConfig::default()
    };
    let app = role.router();
    tokio::spawn(async move {
        deai_node::http::serve(
            listener,
            app,
            &http,
            deai_node::http::HttpMetrics::detached(),
        )
        .await
    });
    Ok(url)
}

/// The run of median throughput (with its own latencies).
fn median_run(mut runs: Vec<Load>) -> Load {
    runs.sort_by(|a, b| a.qps.total_cmp(&b.qps));
    let mid = runs.len() / 2;
    runs.swap_remove(mid)
}

/// Throughput and latency of one phase.
struct Load {
    qps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Runs `clients` loops of `request` for `seconds`; each request carries `batch` queries.
async fn load<F, R, Fut>(
    clients: usize,
    seconds: f64,
    batch: usize,
    make: F,
) -> anyhow::Result<Load>
where
    F: Fn(usize) -> R,
    R: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let request = make(c);
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < end {
                    let t = Instant::now();
                    request().await?;
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                }
                anyhow::Ok(lat)
            })
        })
        .collect();
    summarize(tasks, seconds, batch).await
}

async fn summarize(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Vec<f64>>>>,
    seconds: f64,
    batch: usize,
) -> anyhow::Result<Load> {
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    lat.sort_by(f64::total_cmp);
    let at = |q: f64| {
        lat.get(((lat.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Ok(Load {
        qps: (lat.len() * batch) as f64 / seconds,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
    })
}

/// What every paid phase shares: the payers' channels and how they pay ahead.
struct PaidPhase<'a> {
    sessions: &'a [(SigningKey, Channel)],
    genesis: &'a Genesis,
    offer: &'a Offer,
    prepay: Option<u64>,
}

/// The paid phase: each client a `PaidSession` on its own channel.
async fn load_paid(
    phase: &PaidPhase<'_>,
    seconds: f64,
    batch: usize,
    input: &[u8],
) -> anyhow::Result<Load> {
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let (genesis, offer) = (phase.genesis, Arc::new(phase.offer.clone()));
    let tasks: Vec<_> = phase
        .sessions
        .iter()
        .map(|(key, channel)| {
            let mut s = PaidSession::new(
                key.clone(),
                genesis.chain_id.clone(),
                (*offer).clone(),
                channel.clone(),
                genesis.params.limits(),
            );
            if let Some(queries) = phase.prepay {
                s = s.with_prepay(queries);
            }
            let inputs: Vec<Vec<u8>> = vec![input.to_vec(); batch];
            tokio::spawn(async move {
                let refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
                // Resume the channel's count where the previous phase left it.
                s.query(&refs).await?;
                let mut lat = Vec::new();
                while Instant::now() < end {
                    let t = Instant::now();
                    s.query(&refs).await?;
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                }
                // Every answer ends signed and checked, as a payer who may dispute needs.
                s.settle().await?;
                anyhow::ensure!(
                    s.unsigned() == 0 && s.lost() == 0,
                    "{} answers left unsigned, {} lost",
                    s.unsigned(),
                    s.lost()
                );
                anyhow::Ok(lat)
            })
        })
        .collect();
    summarize(tasks, seconds, batch).await
}
