//! The round loop: sample, train in parallel, aggregate in client-id order, evaluate.

use std::time::Instant;

use rayon::prelude::*;

use super::config::{DataSource, SimConfig};
use super::{ClientEval, Report};
use crate::attack::{self, Attack};
use crate::data::partition::{self, Partition};
use crate::data::{Dataset, Federated, digits, fashion, shakespeare};
use crate::dp;
use crate::error::{LearnError, Result};
use crate::model::optim::{self, LocalTrain};
use crate::model::{ModelKind, evaluate};
use crate::params::{self, clip_to_norm};
use crate::rng;
use crate::strategy::{
    self, EvalReply, Failure, Reply, Strategy, TrainPlan, check_reply, streaming_of,
};

/// Replies trained concurrently before being folded in: bounds live model copies per round.
const CHUNK: usize = 256;

/// One round's outcome.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RoundStat {
    /// Round number, from 1.
    pub round: u64,
    /// Central test accuracy after the round.
    pub accuracy: f64,
    /// Central test loss after the round.
    pub loss: f64,
    /// Wall time of the round, ms.
    pub ms: f64,
    /// Clients that replied.
    pub replies: usize,
    /// Clients that failed.
    pub failures: usize,
}

/// Called after every round (e.g. to move a progress bar).
pub type Progress<'a> = &'a mut dyn FnMut(&RoundStat);

/// Loads and partitions the data a config names.
pub fn load_data(cfg: &SimConfig) -> Result<Federated> {
    let (train, test) = match cfg.dataset {
        DataSource::Digits => digits::split(&digits::load()?),
        DataSource::FashionMnist { limit } => fashion::load(limit)?,
        DataSource::Shakespeare { stride } => {
            let fed = shakespeare::load(cfg.clients, 2000, stride)?;
            if fed.clients.len() < cfg.clients {
                let reason = format!("only {} roles have 2000+ characters", fed.clients.len());
                return Err(LearnError::config("clients", cfg.clients, reason));
            }
            if cfg.partition == Partition::Natural {
                return Ok(fed);
            }
            (fed.train, fed.test)
        }
    };
    let clients = partition::split(
        &cfg.partition,
        &train.labels,
        train.classes,
        cfg.clients,
        cfg.seed,
    )?;
    Ok(Federated {
        train,
        test,
        clients,
    })
}

/// Everything a client needs, shared read-only across threads.
struct Ctx<'a> {
    cfg: &'a SimConfig,
    kind: ModelKind,
    fed: &'a Federated,
    attackers: Vec<bool>,
}

/// Runs a simulation; `progress` sees every round.
pub fn run(cfg: &SimConfig, progress: Progress<'_>) -> Result<Report> {
    let start = Instant::now();
    cfg.validate()?;
    let fed = load_data(cfg)?;
    run_on(cfg, &fed, progress, start)
}

/// Runs a simulation on already loaded data (benchmarks reuse one load).
pub fn run_on(
    cfg: &SimConfig,
    fed: &Federated,
    progress: Progress<'_>,
    start: Instant,
) -> Result<Report> {
    cfg.validate()?;
    let kind = ModelKind::from_name(&cfg.model, fed.train.sample_len, fed.train.classes)?;
    kind.check_data(&fed.train)?;
    let mut strategy = build_strategy(cfg)?;
    let ctx = Ctx {
        cfg,
        kind,
        fed,
        attackers: attack::attackers(cfg.clients, cfg.attackers, cfg.seed),
    };
    let mut global = kind.init(&mut rng::stream("deai-learn/init", &[cfg.seed]));
    let mut sampler = rng::stream("deai-learn/sampling", &[cfg.seed]);
    let rounds_start = Instant::now();
    let mut stats = Vec::with_capacity(cfg.rounds as usize);
    for round in 1..=cfg.rounds {
        let t = Instant::now();
        let plan = strategy.configure_train(round, cfg.clients, &mut sampler);
        let (next, replies, failures) = run_round(&ctx, strategy.as_mut(), round, &plan, &global)?;
        global = next;
        let m = evaluate(&kind, &global, &fed.test);
        let stat = RoundStat {
            round,
            accuracy: m.accuracy,
            loss: m.loss,
            ms: t.elapsed().as_secs_f64() * 1e3,
            replies,
            failures,
        };
        progress(&stat);
        stats.push(stat);
    }
    let rounds_s = rounds_start.elapsed().as_secs_f64();
    let per_client = (fed.clients.len() <= super::PER_CLIENT_EVAL_MAX)
        .then(|| client_eval(&kind, &global, fed, strategy.as_mut()))
        .flatten();
    let mut r = report(
        cfg,
        &kind,
        strategy.as_ref(),
        &global,
        stats,
        rounds_s,
        start,
    );
    r.client_eval = per_client;
    Ok(r)
}

/// Every client evaluates `global` on its own data; the strategy aggregates.
pub fn client_eval(
    kind: &ModelKind,
    global: &[f32],
    fed: &Federated,
    strategy: &mut dyn Strategy,
) -> Option<ClientEval> {
    let replies: Vec<EvalReply> = (0..fed.clients.len())
        .into_par_iter()
        .filter(|&c| !fed.clients[c].is_empty())
        .map(|c| EvalReply {
            client: c as u64,
            metrics: evaluate(kind, global, &fed.train.subset(&fed.clients[c])),
        })
        .collect();
    let mean = strategy.aggregate_evaluate(0, &replies)?;
    let mut acc: Vec<f64> = replies.iter().map(|r| r.metrics.accuracy).collect();
    acc.sort_unstable_by(f64::total_cmp);
    Some(ClientEval {
        accuracy: mean.accuracy,
        loss: mean.loss,
        accuracy_p10: acc[acc.len() / 10],
        accuracy_min: acc[0],
    })
}

fn build_strategy(cfg: &SimConfig) -> Result<Box<dyn Strategy>> {
    let inner = strategy::build_with(
        &cfg.strategy,
        cfg.sampling,
        cfg.byzantine_per_round(),
        cfg.server_lr,
    )?;
    Ok(match cfg.dp {
        Some(d) => dp::wrap(inner, d, cfg.seed),
        None => inner,
    })
}

/// Trains the round's clients and aggregates; returns the new model, replies and failures.
fn run_round(
    ctx: &Ctx<'_>,
    strategy: &mut dyn Strategy,
    round: u64,
    plan: &TrainPlan,
    global: &[f32],
) -> Result<(Vec<f32>, usize, usize)> {
    let omniscient = ctx.cfg.attack.is_some_and(|a| a.is_omniscient());
    let streaming = !omniscient && strategy.streaming().is_some();
    let (mut kept, mut failures, mut count) = (Vec::new(), Vec::new(), 0);
    for chunk in plan.clients.chunks(CHUNK) {
        let results: Vec<Result<Reply>> = chunk
            .par_iter()
            .map(|&c| client_update(ctx, c, round, plan, global))
            .collect();
        for (&client, result) in chunk.iter().zip(results) {
            match result.and_then(|r| check_reply(&r, global.len()).map(|()| r)) {
                Ok(reply) if streaming => {
                    count += 1;
                    streaming_of(strategy)?.accept(round, global, reply)?;
                }
                Ok(reply) => kept.push(reply),
                Err(e) => failures.push(Failure {
                    client,
                    reason: e.to_string(),
                }),
            }
        }
    }
    // A round in which every client failed (typically a model an attack drove to where local
    // training overflows) leaves the model as it is, as Flower does, instead of ending the run.
    if (streaming && count == 0) || (!streaming && kept.is_empty()) {
        return Ok((global.to_vec(), 0, failures.len()));
    }
    if streaming {
        return Ok((
            streaming_of(strategy)?.finish(round, global, &failures)?,
            count,
            failures.len(),
        ));
    }
    if let Some(a) = ctx.cfg.attack.filter(Attack::is_omniscient) {
        poison_round(ctx, a, global, &mut kept);
    }
    count = kept.len();
    let next = strategy.aggregate_train(round, global, kept, &failures)?;
    Ok((next, count, failures.len()))
}

/// Replaces attackers' replies with the omniscient attack's model.
fn poison_round(ctx: &Ctx<'_>, attack: Attack, global: &[f32], replies: &mut [Reply]) {
    let is_bad = |r: &Reply| ctx.attackers[r.client as usize];
    let bad = replies.iter().filter(|r| is_bad(r)).count();
    let honest: Vec<&[f32]> = replies
        .iter()
        .filter(|r| !is_bad(r))
        .map(|r| r.params.as_slice())
        .collect();
    if let Some(poison) = attack.poison_omniscient(global, &honest, bad) {
        replies
            .iter_mut()
            .filter(|r| ctx.attackers[r.client as usize])
            .for_each(|r| r.params.clone_from(&poison));
    }
}

/// One client in one round: local data, local training, its attack and clipping if any.
fn client_update(
    ctx: &Ctx<'_>,
    client: u64,
    round: u64,
    plan: &TrainPlan,
    global: &[f32],
) -> Result<Reply> {
    let idx = ctx
        .fed
        .clients
        .get(client as usize)
        .ok_or_else(|| LearnError::config("client", client, "unknown id"))?;
    if idx.is_empty() {
        return Err(LearnError::EmptyClient {
            client: client as usize,
        });
    }
    let attacker = ctx.attackers[client as usize];
    let attack = ctx.cfg.attack.filter(|_| attacker);
    let mut data: Dataset = ctx.fed.train.subset(idx);
    if let Some(a) = attack {
        data.labels
            .iter_mut()
            .for_each(|l| *l = a.flip_label(*l, data.classes));
    }
    let mut rng = rng::client(ctx.cfg.seed, round, client);
    let loss_before = plan
        .want_loss_before
        .then(|| evaluate(&ctx.kind, global, &data).loss);
    let local = LocalTrain {
        prox_mu: plan.prox_mu.unwrap_or(ctx.cfg.local.prox_mu),
        ..ctx.cfg.local
    };
    let mut params = optim::train(&ctx.kind, global, &data, &local, &mut rng)?.params;
    if let Some(a) = attack {
        a.poison_own(global, &mut params, &mut rng);
    }
    if let Some(clip) = plan.client_clip {
        let mut delta = params::sub(&params, global);
        clip_to_norm(&mut delta, clip);
        params = params::add(global, &delta);
    }
    Ok(Reply {
        client,
        params,
        samples: data.len() as u64,
        loss_before,
    })
}

fn report(
    cfg: &SimConfig,
    kind: &ModelKind,
    strategy: &dyn Strategy,
    global: &[f32],
    per_round: Vec<RoundStat>,
    rounds_s: f64,
    start: Instant,
) -> Report {
    let mut ms: Vec<f64> = per_round.iter().map(|s| s.ms).collect();
    ms.sort_unstable_by(f64::total_cmp);
    let median_round_ms = if ms.is_empty() { 0.0 } else { ms[ms.len() / 2] };
    let last = per_round.last().expect("rounds ≥ 1 checked by validate");
    let (epsilon, delta) = match cfg.dp {
        Some(d) => {
            let q = cfg.sampling.count.unwrap_or(1) as f64 / cfg.clients as f64;
            (
                Some(dp::rdp::epsilon(q, d.noise, cfg.rounds, d.delta)),
                Some(d.delta),
            )
        }
        None => (None, None),
    };
    Report {
        task: cfg.task.clone(),
        dataset: cfg.dataset.name().into(),
        partition: partition_name(&cfg.partition),
        model: kind.name().into(),
        strategy: strategy.name(),
        clients: cfg.clients,
        rounds: cfg.rounds,
        seed: cfg.seed,
        attack: cfg.attack.map(|a| format!("{a:?}")),
        attackers: cfg.attackers,
        final_accuracy: last.accuracy,
        best_accuracy: per_round.iter().map(|s| s.accuracy).fold(0.0, f64::max),
        final_loss: last.loss,
        wall_s: start.elapsed().as_secs_f64(),
        rounds_s,
        median_round_ms,
        model_hash: params::model_hash(global),
        epsilon,
        delta,
        client_eval: None,
        threads: rayon::current_num_threads(),
        per_round,
    }
}

fn partition_name(p: &Partition) -> String {
    p.to_string()
}
