//! Aggregation strategies, shaped like Flower's: the driver asks a [`Strategy`] which clients
//! train ([`Strategy::configure_train`]), hands back their replies sorted by client id
//! ([`Strategy::aggregate_train`]), and likewise for federated evaluation.
//!
//! Strategies are pure: no I/O, no clocks; randomness comes from the generator the caller passes.
//! Replies are validated ([`check_reply`]) before any arithmetic. Strategies of the weighted-mean
//! family are *streaming*: the driver feeds replies one at a time in client-id order
//! ([`Strategy::accept`]) and calls [`Strategy::finish`], so a round never holds one model copy
//! per client.

pub mod bucketing;
pub mod bulyan;
pub mod centered_clip;
pub mod fedadagrad;
pub mod fedadam;
pub mod fedavg;
pub mod fedavgm;
pub mod fedopt;
pub mod fedprox;
pub mod fedyogi;
pub mod krum;
pub mod median;
pub mod momentum;
pub mod qfedavg;
pub mod trimmed_mean;

use rand::seq::index;

use crate::error::{LearnError, Result};
use crate::model::Metrics;
use crate::params::{self, WeightedSum};
use crate::rng::Rng;

/// A client's answer to a training request.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Client id.
    pub client: u64,
    /// Its new weights (flat).
    pub params: Vec<f32>,
    /// How many samples it trained on (the FedAvg weight).
    pub samples: u64,
    /// Its local loss at the global model before training (q-FedAvg), when requested.
    pub loss_before: Option<f64>,
}

/// A client that was asked but did not answer usefully.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Client id.
    pub client: u64,
    /// Why.
    pub reason: String,
}

/// A client's evaluation of the global model on its own data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalReply {
    /// Client id.
    pub client: u64,
    /// Its metrics.
    pub metrics: Metrics,
}

/// What clients are told for one round.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainPlan {
    /// Clients to train, ascending ids.
    pub clients: Vec<u64>,
    /// FedProx proximal weight to use locally (overrides the local config's).
    pub prox_mu: Option<f32>,
    /// Whether clients must report their loss at the global model before training.
    pub want_loss_before: bool,
    /// Client-side DP clipping: clients clip their update `w − w_global` to this norm.
    pub client_clip: Option<f64>,
}

/// How many clients a round samples: `max(min, fraction × available)` or a fixed count.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Sampling {
    /// Share of available clients (used when `count` is `None`).
    pub fraction: f64,
    /// Fixed number of clients, overriding `fraction`.
    pub count: Option<usize>,
    /// Lower bound.
    pub min: usize,
}

impl Sampling {
    /// Exactly `count` clients per round.
    pub fn count(count: usize) -> Self {
        Self {
            fraction: 0.0,
            count: Some(count),
            min: 1,
        }
    }

    /// Draws the round's clients without replacement from `0..available`, ascending ids.
    pub fn sample(&self, available: usize, rng: &mut Rng) -> Vec<u64> {
        let wanted = self
            .count
            .unwrap_or_else(|| (self.fraction * available as f64).round() as usize);
        let k = wanted
            .max(self.min)
            .clamp(1, available.max(1))
            .min(available);
        let mut ids: Vec<u64> = index::sample(rng, available, k)
            .into_iter()
            .map(|i| i as u64)
            .collect();
        ids.sort_unstable();
        ids
    }
}

/// A federated aggregation strategy. See the module docs for the call order.
pub trait Strategy: Send {
    /// Display name, e.g. `fedavg` or `dp-fixed(fedavg)`.
    fn name(&self) -> String;

    /// How clients are sampled.
    fn sampling(&self) -> Sampling;

    /// Which clients train in `round` (1-based) out of `available`.
    fn configure_train(&mut self, round: u64, available: usize, rng: &mut Rng) -> TrainPlan {
        let _ = round;
        TrainPlan {
            clients: self.sampling().sample(available, rng),
            prox_mu: None,
            want_loss_before: false,
            client_clip: None,
        }
    }

    /// The new global model from all replies (sorted by client id) and failures. Replies are
    /// validated before any arithmetic, so a bad one leaves no partial round behind. Rules
    /// that need every reply at once implement this; streaming rules get it from
    /// [`Strategy::streaming`] (a rule with neither answers an error, never a panic).
    fn aggregate_train(
        &mut self,
        round: u64,
        global: &[f32],
        replies: Vec<Reply>,
        failures: &[Failure],
    ) -> Result<Vec<f32>> {
        stream_all(streaming_of(self)?, round, global, replies, failures)
    }

    /// This rule's streaming form, if replies can be folded in one at a time (see
    /// [`Streaming`]); `None` for rules that need every reply at once.
    fn streaming(&mut self) -> Option<&mut dyn Streaming> {
        None
    }

    /// Which clients evaluate the global model in `round` (none by default: central evaluation).
    fn configure_evaluate(&mut self, round: u64, available: usize, rng: &mut Rng) -> Vec<u64> {
        let _ = (round, available, rng);
        Vec::new()
    }

    /// Sample-weighted mean of the clients' evaluations.
    fn aggregate_evaluate(&mut self, round: u64, replies: &[EvalReply]) -> Option<Metrics> {
        let _ = round;
        weighted_metrics(replies)
    }
}

/// A robust rule: aggregates each round from all of its replies, with no state between rounds
/// (median, trimmed mean, Krum, Bulyan, norm and centered clipping). [`Robust`] makes one a
/// [`Strategy`].
pub trait RobustRule: Send {
    /// The new global model from the round's replies (sorted by client id).
    fn aggregate(&mut self, round: u64, global: &[f32], replies: &[Reply]) -> Result<Vec<f32>>;

    /// Display name, e.g. `krum(f=2)`.
    fn name(&self) -> String;
}

/// A [`RobustRule`] sampling clients as `sampling` says.
#[derive(Debug, Clone)]
pub struct Robust<R> {
    rule: R,
    sampling: Sampling,
}

impl<R> Robust<R> {
    /// `rule`, sampling as `sampling` says.
    pub fn new(sampling: Sampling, rule: R) -> Self {
        Self { rule, sampling }
    }
}

impl<R: RobustRule> Strategy for Robust<R> {
    fn name(&self) -> String {
        self.rule.name()
    }

    fn sampling(&self) -> Sampling {
        self.sampling
    }

    fn aggregate_train(
        &mut self,
        round: u64,
        global: &[f32],
        replies: Vec<Reply>,
        _: &[Failure],
    ) -> Result<Vec<f32>> {
        self.rule.aggregate(round, global, &replies)
    }
}

/// A rule of the weighted-mean family, fed one reply at a time so a round holds one accumulator
/// instead of one model copy per client.
pub trait Streaming {
    /// Takes one validated reply (client ids ascending within a round).
    fn accept(&mut self, round: u64, global: &[f32], reply: Reply) -> Result<()>;

    /// Ends the round: the new global model.
    fn finish(&mut self, round: u64, global: &[f32], failures: &[Failure]) -> Result<Vec<f32>>;
}

/// [`Strategy::aggregate_train`] of a streaming rule: validates every reply, then folds them in.
pub fn stream_all(
    rule: &mut dyn Streaming,
    round: u64,
    global: &[f32],
    replies: Vec<Reply>,
    failures: &[Failure],
) -> Result<Vec<f32>> {
    for reply in &replies {
        check_reply(reply, global.len())?;
    }
    for reply in replies {
        rule.accept(round, global, reply)?;
    }
    rule.finish(round, global, failures)
}

/// The streaming form of `rule`: an error, never a panic, when a driver or a wrapper asks it of a
/// rule that has none.
pub(crate) fn streaming_of<S: Strategy + ?Sized>(rule: &mut S) -> Result<&mut dyn Streaming> {
    let name = rule.name();
    rule.streaming()
        .ok_or_else(|| LearnError::config("strategy", name, "this rule cannot stream its replies"))
}

/// Checks a reply: right length, finite values, at least one sample.
pub fn check_reply(reply: &Reply, len: usize) -> Result<()> {
    if reply.samples == 0 {
        return Err(LearnError::ZeroSamples {
            client: reply.client,
        });
    }
    params::check(&reply.params, len)
}

/// Normalised FedAvg weights `nᵢ / Σ n`: non-negative, summing to one.
pub fn weights(replies: &[Reply]) -> Vec<f64> {
    let total: f64 = replies.iter().map(|r| r.samples as f64).sum();
    replies.iter().map(|r| r.samples as f64 / total).collect()
}

/// `Σ nᵢ wᵢ / Σ nᵢ` over validated replies.
pub fn weighted_mean(round: u64, replies: &[Reply], len: usize) -> Result<Vec<f32>> {
    let mut sum = WeightedSum::new(len);
    for r in replies {
        check_reply(r, len)?;
        sum.add(&r.params, r.samples as f64);
    }
    sum.mean().ok_or(LearnError::NoReplies { round })
}

/// Sample-weighted mean of evaluation replies.
pub fn weighted_metrics(replies: &[EvalReply]) -> Option<Metrics> {
    let samples: usize = replies.iter().map(|r| r.metrics.samples).sum();
    if samples == 0 {
        return None;
    }
    let w = |r: &EvalReply| r.metrics.samples as f64 / samples as f64;
    Some(Metrics {
        accuracy: replies.iter().map(|r| w(r) * r.metrics.accuracy).sum(),
        loss: replies.iter().map(|r| w(r) * r.metrics.loss).sum(),
        samples,
    })
}

/// The replies' parameter vectors, validated.
pub(crate) fn checked_params(replies: &[Reply], len: usize) -> Result<Vec<&[f32]>> {
    replies
        .iter()
        .map(|r| check_reply(r, len).map(|()| r.params.as_slice()))
        .collect()
}

/// Every strategy name [`build`] accepts.
pub const NAMES: &[&str] = &[
    "fedavg",
    "fedavgm",
    "fedprox",
    "fedadagrad",
    "fedadam",
    "fedyogi",
    "qfedavg",
    "median",
    "trimmed-mean",
    "krum",
    "multi-krum",
    "bulyan",
    "norm-clip",
    "centered-clip",
];

/// Builds a strategy by name with default hyper-parameters. `f` is the number of Byzantine
/// clients the robust rules assume. Besides [`NAMES`], two wrappers compose with any rule:
/// `RULE+momentum` ([`momentum::ServerMomentum`], β = 0.9) and `bucketed-RULE`
/// ([`bucketing::Bucketing`], pairs), e.g. `bucketed-centered-clip+momentum`.
pub fn build(name: &str, sampling: Sampling, f: usize) -> Result<Box<dyn Strategy>> {
    build_with(name, sampling, f, None)
}

/// Whether [`build_with`] gives `name` the server learning rate (FedAvgM and the adaptive
/// optimisers, alone or inside a wrapper); other rules ignore it.
pub fn takes_server_lr(name: &str) -> bool {
    let base = name.strip_suffix("+momentum").unwrap_or(name);
    let base = base.strip_prefix("bucketed-").unwrap_or(base);
    matches!(base, "fedavgm" | "fedadagrad" | "fedadam" | "fedyogi")
}

/// Like [`build`], with the server learning rate of FedAvgM and the adaptive optimisers set
/// (defaults 1.0 and 0.01).
pub fn build_with(
    name: &str,
    sampling: Sampling,
    f: usize,
    server_lr: Option<f32>,
) -> Result<Box<dyn Strategy>> {
    if let Some(rule) = name.strip_suffix("+momentum") {
        let inner = build_with(rule, sampling, f, server_lr)?;
        return Ok(Box::new(momentum::ServerMomentum::new(inner, 1.0, 0.9)));
    }
    if let Some(rule) = name.strip_prefix("bucketed-") {
        let inner = build_with(rule, sampling, f, server_lr)?;
        return Ok(Box::new(bucketing::Bucketing::new(inner, 2)));
    }
    let opt = fedopt::ServerOpt {
        eta: server_lr.unwrap_or(0.01),
        ..fedopt::ServerOpt::default()
    };
    Ok(match name {
        "fedavg" => Box::new(fedavg::FedAvg::new(sampling)),
        "fedavgm" => Box::new(fedavgm::fedavgm(sampling, server_lr.unwrap_or(1.0), 0.9)),
        "fedprox" => Box::new(fedprox::FedProx::new(sampling, 0.01)),
        "fedadagrad" => Box::new(fedadagrad::FedAdagrad::new(sampling, opt)),
        "fedadam" => Box::new(fedadam::FedAdam::new(sampling, opt)),
        "fedyogi" => Box::new(fedyogi::FedYogi::new(sampling, opt)),
        "qfedavg" => Box::new(qfedavg::QFedAvg::new(sampling, 0.2, 0.1)),
        "median" => Box::new(median::FedMedian::new(sampling)),
        "trimmed-mean" => Box::new(trimmed_mean::TrimmedMean::new(sampling, f.max(1))),
        "krum" => Box::new(krum::Krum::new(sampling, f, 1)),
        "multi-krum" => Box::new(krum::Krum::new(sampling, f, 0)),
        "bulyan" => Box::new(bulyan::Bulyan::new(sampling, f)),
        "norm-clip" => Box::new(centered_clip::NormBounded::new(sampling, 1.0)),
        "centered-clip" => Box::new(centered_clip::CenteredClip::new(sampling, 1.0, 3)),
        other => {
            let reason = format!(
                "expected one of {}, or RULE+momentum (server momentum 0.9 after RULE), or \
                 bucketed-RULE (RULE over means of random pairs)",
                NAMES.join(", ")
            );
            return Err(LearnError::config("strategy", other, reason));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn reply(client: u64, params: Vec<f32>, samples: u64) -> Reply {
        Reply {
            client,
            params,
            samples,
            loss_before: Some(1.0),
        }
    }

    proptest! {
        #[test]
        fn weights_sum_to_one(samples in proptest::collection::vec(1u64..10_000, 1..50)) {
            let replies: Vec<Reply> = samples.iter().enumerate().map(|(i, &n)| reply(i as u64, vec![0.0], n)).collect();
            let w = weights(&replies);
            prop_assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            prop_assert!(w.iter().all(|&x| x > 0.0));
        }

        /// Every strategy, given identical updates, returns that update (server optimisers
        /// take a step toward it, so they are checked on direction only elsewhere).
        #[test]
        fn identical_updates_aggregate_to_themselves(
            update in proptest::collection::vec(-10.0f32..10.0, 1..20),
            k in 7usize..12,
        ) {
            let global = vec![0.0; update.len()];
            for name in ["fedavg", "fedprox", "median", "trimmed-mean", "krum", "multi-krum", "bulyan", "centered-clip", "bucketed-centered-clip", "bucketed-median", "centered-clip+momentum"] {
                let mut s = build(name, Sampling::count(k), 1).expect("known");
                let replies: Vec<Reply> = (0..k as u64).map(|c| reply(c, update.clone(), 1 + c)).collect();
                let out = s.aggregate_train(1, &global, replies, &[]).expect("valid");
                for (a, b) in out.iter().zip(&update) {
                    let tol = if name.contains("centered-clip") { 1e-3 } else { 1e-5 } * (1.0 + b.abs());
                    prop_assert!((a - b).abs() <= tol, "{name}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn wrappers_compose_and_unknown_rules_are_named() {
        let s = build("bucketed-centered-clip+momentum", Sampling::count(7), 1).expect("known");
        assert_eq!(s.name(), "bucketed(2)-centered-clip+momentum(0.9)");
        for bad in ["bucketed-nope", "nope+momentum", "bucketed-", "+momentum"] {
            let err = build(bad, Sampling::count(7), 1).err().expect("unknown");
            assert!(err.to_string().contains("bucketed-RULE"), "{bad}: {err}");
        }
    }

    #[test]
    fn bad_replies_are_rejected_by_name() {
        let wrapped = [
            "bucketed-centered-clip",
            "centered-clip+momentum",
            "bucketed-median+momentum",
            "fedavg+momentum",
        ];
        for name in NAMES.iter().chain(&wrapped) {
            let mut s = build(name, Sampling::count(7), 1).expect("known");
            let mut replies: Vec<Reply> = (0..7).map(|c| reply(c, vec![1.0, 2.0], 3)).collect();
            replies[2].params[1] = f32::NAN;
            let err = s.aggregate_train(1, &[0.0, 0.0], replies.clone(), &[]);
            assert!(
                matches!(err, Err(LearnError::NonFinite { index: 1, .. })),
                "{name}: {err:?}"
            );
            replies[2].params = vec![1.0];
            let err = s.aggregate_train(1, &[0.0, 0.0], replies.clone(), &[]);
            assert!(
                matches!(
                    err,
                    Err(LearnError::WrongLength {
                        expected: 2,
                        found: 1
                    })
                ),
                "{name}"
            );
            replies[2].params = vec![1.0, 2.0];
            replies[2].samples = 0;
            let err = s.aggregate_train(1, &[0.0, 0.0], replies, &[]);
            assert!(
                matches!(err, Err(LearnError::ZeroSamples { client: 2 })),
                "{name}: {err:?}"
            );
            let err = s.aggregate_train(1, &[0.0, 0.0], Vec::new(), &[]);
            assert!(err.is_err(), "{name}: empty round must fail");
        }
    }

    #[test]
    fn sampling_draws_distinct_sorted_ids() {
        let mut rng = crate::rng::stream("t", &[1]);
        let ids = Sampling::count(10).sample(100, &mut rng);
        assert_eq!(ids.len(), 10);
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let s = Sampling {
            fraction: 0.01,
            count: None,
            min: 5,
        };
        assert_eq!(s.sample(100, &mut rng).len(), 5);
    }
}
