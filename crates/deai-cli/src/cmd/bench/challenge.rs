//! `deai bench challenge`: what a validator's check of one challenged claim costs, per claim
//! kind, on a real task run through the round protocol in process (deai-fed's harness, 100
//! digits owners). The check is what `deai verify challenge` and the validators' voter run
//! ([`deai_fed::check_claim`]): group 0's sum re-summed alone, the aggregate (every group
//! re-summed), the model (one strategy step from the recorded sums, after stepping the
//! strategy's state through the earlier rounds from their recorded blobs), group 0's score (one
//! candidate evaluated). The challenged round is the last. Times are medians over `--repeat`
//! runs in this process; blob bytes are what each check reads.

use std::time::Instant;

use std::cell::Cell;

use deai_fed::{
    RecordedRound, TaskSpec, check_claim,
    harness::{HarnessConfig, run_task},
    robustness,
    strategy::{RecordedStep, ServerState},
};
use deai_learn::data::partition::Partition;
use deai_ledger::{Claim, Digest};
use serde::Serialize;

/// Arguments of `deai bench challenge`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  deai bench challenge --per-round 50 --rounds 5 --json")]
pub struct Args {
    /// Rounds of the task; the last one is challenged.
    #[arg(long, default_value_t = 5)]
    pub rounds: u32,
    /// Owners selected per round (of 100).
    #[arg(long, default_value_t = 50)]
    pub per_round: u32,
    /// Smallest secure-aggregation group.
    #[arg(long, default_value_t = 10)]
    pub group_size: u32,
    /// The task's model (`logreg` or `mlp`).
    #[arg(long, default_value = "mlp")]
    pub model: String,
    /// Re-checks timed per figure (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Seed of the owners' keys and the task.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object instead of a human summary.
    #[arg(long)]
    pub json: bool,
}

/// What one claim kind's check costs.
#[derive(Debug, Serialize)]
struct ClaimCost {
    /// `group-sum:0`, `aggregate`, `model` or `score:0`.
    claim: String,
    /// Median milliseconds of the check (the model's includes the replay of earlier steps).
    ms: f64,
    /// Bytes of blobs it reads.
    blob_bytes: u64,
}

#[derive(Debug, Serialize)]
struct Out {
    command: String,
    model: String,
    model_params: usize,
    rounds: u32,
    per_round: u32,
    groups: usize,
    survivors: usize,
    repeat: usize,
    /// Median ms to step the strategy through the earlier rounds from their recorded blobs
    /// (part of the model claim's figure).
    replay_ms: f64,
    claims: Vec<ClaimCost>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `deai bench challenge`.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.rounds > 0, "--rounds must be positive");
    anyhow::ensure!(args.repeat > 0, "--repeat must be positive");
    let spec = TaskSpec {
        model: args.model.clone(),
        rounds: args.rounds,
        datasets_per_round: args.per_round,
        group_size_min: args.group_size,
        // A stateful server optimiser: the replay of earlier rounds is part of the cost.
        strategy: "fedadam".into(),
        server_lr: 0.05,
        ..TaskSpec::digits_default()
    };
    spec.validate().map_err(|e| {
        anyhow::anyhow!("{e}; choose --per-round, --group-size and --model so the task is valid")
    })?;
    let (owners, validation) = robustness::owners(&Partition::Iid, args.seed)?;
    let bar = crate::progress::bar(args.json, u64::from(args.rounds), "running the task");
    let cfg = HarnessConfig {
        task: 1,
        seed: args.seed,
        ..HarnessConfig::default()
    };
    let report = run_task(&spec, &owners, &validation, &cfg)?;
    bar.finish_and_clear();
    let (last, earlier) = report
        .rounds
        .split_last()
        .ok_or_else(|| anyhow::anyhow!("the task ran no round"))?;
    let blob = |h: &Digest| {
        report
            .blobs
            .get(h)
            .ok_or_else(|| anyhow::anyhow!("blob {h} missing from the harness's store"))
    };
    let replay = || -> anyhow::Result<ServerState> {
        let mut server = ServerState::new(&spec)?;
        for r in earlier {
            let step = RecordedStep {
                round: r.info.round,
                seed: &r.info.seed,
                selected: &r.info.selected,
                scores: &r.outcome.scores,
                global: blob(&r.info.global_model)?,
                aggregate: blob(&r.outcome.aggregate.0)?,
            };
            server.replay(&spec, step)?;
        }
        Ok(server)
    };
    let recorded = RecordedRound::from(&last.outcome.round_result(1, last.info.round));
    let read = Cell::new(0u64);
    let fetch = |h: &Digest| {
        let b = report.blobs.get(h).cloned();
        read.set(read.get() + b.as_ref().map_or(0, |b| b.len() as u64));
        b
    };
    let replay_bytes: u64 = earlier
        .iter()
        .map(|r| {
            [&r.info.global_model, &r.outcome.aggregate.0]
                .iter()
                .map(|h| report.blobs.get(*h).map_or(0, |b| b.len() as u64))
                .sum::<u64>()
        })
        .sum();
    let mut replay_ms = Vec::new();
    let mut claims = Vec::new();
    for claim in [
        Claim::GroupSum { group: 0 },
        Claim::Aggregate,
        Claim::Model,
        Claim::Score { group: 0 },
    ] {
        let mut ms = Vec::new();
        let mut bytes = 0;
        for _ in 0..args.repeat {
            let started = Instant::now();
            let mut server = if claim == Claim::Model {
                let s = replay()?;
                replay_ms.push(started.elapsed().as_secs_f64() * 1e3);
                s
            } else {
                ServerState::new(&spec)?
            };
            read.set(0);
            let refuting = check_claim(
                &spec,
                &last.info,
                &recorded,
                &claim,
                &fetch,
                Some(&validation),
                &mut server,
            )?;
            ms.push(started.elapsed().as_secs_f64() * 1e3);
            bytes = read.get()
                + if claim == Claim::Model {
                    replay_bytes
                } else {
                    0
                };
            anyhow::ensure!(
                refuting.is_empty(),
                "an honest round's {} claim was refuted: {refuting:?}",
                claim.name()
            );
        }
        claims.push(ClaimCost {
            claim: match claim.group() {
                Some(g) => format!("{}:{g}", claim.name()),
                None => claim.name().to_string(),
            },
            ms: median(ms),
            blob_bytes: bytes,
        });
    }
    let out = Out {
        command: format!(
            "deai bench challenge --rounds {} --per-round {} --group-size {} --model {} --repeat {} --seed {}",
            args.rounds, args.per_round, args.group_size, args.model, args.repeat, args.seed
        ),
        model: args.model.clone(),
        model_params: last.outcome.new_weights.len(),
        rounds: args.rounds,
        per_round: args.per_round,
        groups: last.outcome.groups.len(),
        survivors: last.outcome.survivors.len(),
        repeat: args.repeat,
        replay_ms: median(replay_ms),
        claims,
    };
    crate::output::emit(args.json, &out, |o| {
        println!(
            "checking one claim of round {} of a {}-round {} task ({} params; {} owners in {} groups; medians of {}):",
            o.rounds, o.rounds, o.model, o.model_params, o.survivors, o.groups, o.repeat
        );
        for c in &o.claims {
            println!(
                "  {:<12} {:>8.1} ms  {:>10} blob bytes",
                c.claim, c.ms, c.blob_bytes
            );
        }
        println!(
            "  (the model's figure includes {:.1} ms stepping the strategy through {} earlier rounds)",
            o.replay_ms,
            o.rounds - 1
        );
    })
}
