//! Measurements behind `deai bench fl`: federated digits-100 against its centralised
//! equivalent, and a cross-device scale case.

use std::time::Instant;

use crate::data::Federated;
use crate::data::partition::Partition;
use crate::error::Result;
use crate::model::optim::train;
use crate::model::{ModelKind, evaluate};
use crate::rng;
use crate::sim::{self, DataSource, SimConfig};
use crate::strategy::Sampling;

/// Federated vs centralised digits-100.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Overhead {
    /// Wall time of the 50 federated rounds (training, aggregation, per-round evaluation), s.
    pub federated_s: f64,
    /// Wall time of 5 centralised epochs over the train set plus the same number of evaluations, s.
    pub central_s: f64,
    /// `federated_s / central_s`.
    pub overhead: f64,
    /// Final federated accuracy.
    pub federated_accuracy: f64,
    /// Final centralised accuracy.
    pub central_accuracy: f64,
    /// Sample-steps of the federated run.
    pub federated_samples: usize,
    /// Sample-steps of the centralised run.
    pub central_samples: usize,
    /// Gradient steps of the federated run: clients hold 14 or 15 samples, so each takes a batch
    /// of 10 and a short one, and the same sample-steps cost about a third more steps.
    pub federated_batches: usize,
    /// Gradient steps of the centralised run.
    pub central_batches: usize,
}

/// Runs digits-100 (seed `seed`) both ways in this process; the better of `repeats` timings each.
pub fn overhead(seed: u64, repeats: usize) -> Result<Overhead> {
    let cfg = SimConfig {
        seed,
        ..SimConfig::digits_100()
    };
    let fed = sim::load_data(&cfg)?;
    let (mut federated_s, mut central_s) = (f64::INFINITY, f64::INFINITY);
    let (mut fa, mut ca) = (0.0, 0.0);
    let (fs, fb) = federated_steps(&cfg, &fed);
    let (mut cs, mut cb) = (0, 0);
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        let report = sim::run_on(&cfg, &fed, &mut |_| {}, t)?;
        federated_s = federated_s.min(report.rounds_s);
        fa = report.final_accuracy;
        let c = central(&cfg, &fed)?;
        central_s = central_s.min(c.secs);
        (ca, cs, cb) = (c.accuracy, c.samples, c.batches);
    }
    Ok(Overhead {
        federated_s,
        central_s,
        overhead: federated_s / central_s,
        federated_accuracy: fa,
        central_accuracy: ca,
        federated_samples: fs,
        central_samples: cs,
        federated_batches: fb,
        central_batches: cb,
    })
}

/// Sample-steps and gradient steps the federated schedule runs (replays the sampler).
fn federated_steps(cfg: &SimConfig, fed: &Federated) -> (usize, usize) {
    let mut sampler = rng::stream("deai-learn/sampling", &[cfg.seed]);
    let (mut samples, mut batches) = (0, 0);
    for _ in 0..cfg.rounds {
        for c in cfg.sampling.sample(cfg.clients, &mut sampler) {
            let n = fed.client_len(c as usize);
            samples += n * cfg.local.epochs;
            batches += n.div_ceil(cfg.local.batch) * cfg.local.epochs;
        }
    }
    (samples, batches)
}

/// One timed centralised run.
struct Central {
    secs: f64,
    accuracy: f64,
    samples: usize,
    batches: usize,
}

/// The centralised reference: same model, lr and batch, 5 epochs over all train samples,
/// evaluated after every tenth of an epoch so evaluation work matches the 50 federated rounds.
fn central(cfg: &SimConfig, fed: &Federated) -> Result<Central> {
    let kind = ModelKind::from_name(&cfg.model, fed.train.sample_len, fed.train.classes)?;
    let mut w = kind.init(&mut rng::stream("deai-learn/init", &[cfg.seed]));
    let evals_per_epoch = (cfg.rounds / 5).max(1) as usize;
    let chunk = fed.train.len().div_ceil(evals_per_epoch);
    let t = Instant::now();
    let (mut acc, mut batches) = (0.0, 0);
    for epoch in 0..5u64 {
        let mut rng = rng::stream("deai-learn/central", &[cfg.seed, epoch]);
        let mut order: Vec<usize> = (0..fed.train.len()).collect();
        rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut rng);
        for part in order.chunks(chunk) {
            let data = fed.train.subset(part);
            batches += part.len().div_ceil(cfg.local.batch) * cfg.local.epochs;
            w = train(&kind, &w, &data, &cfg.local, &mut rng)?.params;
            acc = evaluate(&kind, &w, &fed.test).accuracy;
        }
    }
    Ok(Central {
        secs: t.elapsed().as_secs_f64(),
        accuracy: acc,
        samples: 5 * fed.train.len(),
        batches,
    })
}

/// The cross-device scale case.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Scale {
    /// Clients in the federation.
    pub clients: usize,
    /// Clients per round.
    pub per_round: usize,
    /// Rounds run.
    pub rounds: u64,
    /// Median round time (train + aggregate + evaluate on 10k test images), s.
    pub round_s: f64,
    /// Test accuracy after the last round.
    pub accuracy: f64,
    /// Peak resident set size of the process, MiB (`VmHWM`).
    pub peak_rss_mb: f64,
}

/// Fashion-MNIST among `clients` clients (IID, 60000 / clients images each), `per_round` per
/// round, the CNN, FedAvg.
pub fn scale(clients: usize, per_round: usize, rounds: u64, seed: u64) -> Result<Scale> {
    let cfg = SimConfig {
        task: "fmnist-scale".into(),
        dataset: DataSource::FashionMnist { limit: None },
        partition: Partition::Iid,
        model: "cnn".into(),
        clients,
        sampling: Sampling::count(per_round),
        rounds,
        seed,
        local: crate::model::optim::LocalTrain {
            lr: 0.05,
            batch: 3,
            ..SimConfig::digits_100().local
        },
        ..SimConfig::digits_100()
    };
    let report = sim::run(&cfg, &mut |_| {})?;
    Ok(Scale {
        clients,
        per_round,
        rounds,
        round_s: report.median_round_ms / 1e3,
        accuracy: report.final_accuracy,
        peak_rss_mb: peak_rss_mb(),
    })
}

/// Peak resident set size of this process in MiB (0 where `/proc` is unavailable).
pub fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
