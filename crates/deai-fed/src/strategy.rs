//! The server step of a networked round, through the same [`deai_learn::strategy`] code as
//! `deai simulate`.
//!
//! Secure aggregation reveals one sum per scoring group and never an owner's update, so the
//! strategy's replies are the groups ([`group_replies`]): reply `g` is the group's mean model
//! `global + sum_g / n_g`, weighted by its `n_g` survivors. FedAvg over those replies is the
//! survivors' unweighted mean update (clipping already gave every owner the same weight); the
//! robust rules (median, trimmed mean, Krum, Bulyan, centered clipping, bucketing) act on group
//! means, the finest granularity secure aggregation allows; the server optimisers (FedAvgM,
//! FedAdam, FedYogi, FedAdagrad, `RULE+momentum`) keep their state across rounds in
//! [`ServerState`], which a verifier or a restarted coordinator rebuilds by stepping through
//! the recorded rounds in order.
//!
//! The spec's `server_lr` is the step size: the optimisers' η, and for every other rule a step
//! `global + server_lr · (rule − global)` (none when it is 1).
//!
//! A `screened-` rule (`screened-fedavg`, `screened-centered-clip+momentum`, …) first leaves out
//! every group whose score is 0: whose own mean step would not have lowered the validation loss
//! ([`crate::score`]). That is validation screening in the manner of Zeno (Xie, Koyejo & Gupta
//! 2019), applied to what secure aggregation reveals. It answers the attacker the group rules
//! cannot: one owner who skips clipping outweighs its whole group, so most group means of a
//! round can be poisoned, but a poisoned mean that points uphill fails the screen however many
//! of them there are. Scores are integers ([`crate::int_loss`]), so every verifier screens the
//! same groups; a replay screens by the scores the ledger recorded (each is a claim of its own
//! that anyone can challenge), so checking a model never needs the validation set.

use deai_learn::error::LearnError;
use deai_learn::rng;
use deai_learn::strategy::{self, Reply, Sampling, Strategy, momentum::ServerMomentum};
use deai_ledger::{Digest, Score};
use deai_secagg::quant::Quantizer;

use super::{FedError, SpecError, TaskSpec};

/// Rules a networked task cannot run: each needs something of every owner that secure
/// aggregation hides.
const NEEDS_PER_OWNER: &[(&str, &str)] = &[(
    "qfedavg",
    "it weights each owner by its own loss, which secure aggregation hides",
)];

/// The strategy a spec names, with its server step (see the module docs).
pub fn build(spec: &TaskSpec) -> Result<Box<dyn Strategy>, SpecError> {
    let name = spec.strategy.as_str();
    let bad = |reason: String| SpecError::Strategy {
        name: name.into(),
        reason,
    };
    let name = name.strip_prefix(SCREENED).unwrap_or(name);
    let base = name.strip_suffix("+momentum").unwrap_or(name);
    let base = base.strip_prefix("bucketed-").unwrap_or(base);
    if let Some((_, why)) = NEEDS_PER_OWNER.iter().find(|(n, _)| *n == base) {
        return Err(bad(format!("not available to a networked task: {why}")));
    }
    let sampling = Sampling::count(spec.datasets_per_round as usize);
    let f = spec.byzantine_groups as usize;
    let rule = strategy::build_with(name, sampling, f, Some(spec.server_lr)).map_err(|e| {
        let e = e.to_string();
        if e.contains("expected one of") {
            bad(format!(
                "{e}, or {SCREENED}RULE (RULE over the groups whose own step lowers the \
                 validation loss)"
            ))
        } else {
            bad(e)
        }
    })?;
    if strategy::takes_server_lr(name) || spec.server_lr == 1.0 {
        return Ok(rule);
    }
    let stepped = ServerMomentum::new(rule, spec.server_lr, 0.0).named(name);
    Ok(Box::new(stepped))
}

/// The prefix of a rule that screens groups by their scores first (see the module docs).
pub const SCREENED: &str = "screened-";

/// Whether the spec's rule screens groups by their scores.
pub fn screens(spec: &TaskSpec) -> bool {
    spec.strategy.starts_with(SCREENED)
}

/// Checks that the spec's strategy builds and can aggregate the `groups` scoring groups a
/// full round forms (Krum, Bulyan and the trimmed mean need more than `2f` of them).
pub fn check_groups(spec: &TaskSpec, groups: usize) -> Result<(), SpecError> {
    let mut rule = build(spec)?;
    // Every rule that accepts n replies accepts more, so a few beyond what `f` needs suffice
    // (Krum's work grows with the square of the count).
    let count = groups.min(4 * spec.byzantine_groups as usize + 8) as u64;
    let replies = (0..count)
        .map(|g| Reply {
            client: g,
            params: vec![0.0],
            samples: 1,
            loss_before: None,
        })
        .collect();
    match rule.aggregate_train(1, &[0.0], replies, &[]) {
        Ok(_) => Ok(()),
        Err(e) => Err(SpecError::Strategy {
            name: spec.strategy.clone(),
            reason: format!(
                "a round forms {groups} scoring groups (datasets_per_round / group_size_min): {e}"
            ),
        }),
    }
}

/// The FedProx proximal weight owners train with (0 unless the strategy asks for one).
pub fn prox_mu(spec: &TaskSpec) -> Result<f32, SpecError> {
    let mut rule = build(spec)?;
    // The plan's client list is irrelevant here (the ledger selects); only its local terms are.
    let mut rng = rng::stream("deai-fed/strategy/plan", &[]);
    let plan = rule.configure_train(1, 1, &mut rng);
    Ok(plan.prox_mu.unwrap_or(0.0))
}

/// Whether an unmasked group sum could come from owners that quantized honestly: a positive
/// weight word `w` (each honest owner sends 1) and every coordinate at most `w·L`. Nothing in
/// SecAgg checks an owner's words, so one that skips the quantizer can make its group's sum
/// claim no contributors or values no update has; such a group is left out of the aggregate and
/// scores 0 (the same on every verifier, which runs this check on the same sums).
pub fn plausible(quantizer: &Quantizer, sum: &[u32]) -> bool {
    let Some((&weight, coords)) = sum.split_last() else {
        return false;
    };
    let top = u64::from(weight) * u64::from(quantizer.levels());
    weight > 0 && coords.iter().all(|&c| u64::from(c) <= top)
}

/// The strategy's replies: one per completed group (`None` = aborted) whose sum is
/// [`plausible`] and that `screen` keeps, in plan order, each the group's mean model weighted by
/// its survivors.
pub fn group_replies(
    global: &[f32],
    quantizer: &Quantizer,
    sums: &[Option<Vec<u32>>],
    screen: Screen<'_>,
) -> Result<Vec<Reply>, FedError> {
    let mut replies = Vec::new();
    for (g, sum) in sums.iter().enumerate() {
        let Some(sum) = sum.as_ref().filter(|s| plausible(quantizer, s)) else {
            continue;
        };
        if !screen.keeps(g) {
            continue;
        }
        let (total, weight) = dequantize(quantizer, sum, global.len())?;
        if weight == 0 {
            return Err(FedError::Protocol("a completed group has no contributors"));
        }
        replies.push(Reply {
            client: g as u64,
            params: apply(global, 1.0, &total, weight),
            samples: weight,
            loss_before: None,
        });
    }
    Ok(replies)
}

/// Which groups a step takes: all, or (a `screened-` rule) those whose score is positive.
#[derive(Debug, Clone, Copy)]
pub enum Screen<'a> {
    /// Every plausible group.
    All,
    /// Group `g` only if `scores[g]` is positive (`None`, no score, leaves it out too).
    ByScore(&'a [Option<u64>]),
}

impl Screen<'_> {
    fn keeps(&self, g: usize) -> bool {
        match self {
            Self::All => true,
            Self::ByScore(scores) => matches!(scores.get(g), Some(Some(s)) if *s > 0),
        }
    }
}

/// A recorded round as [`ServerState::replay`] reads it: the ledger's round fields, its
/// recorded scores and the two blobs.
#[derive(Debug, Clone, Copy)]
pub struct RecordedStep<'a> {
    /// The round number.
    pub round: u32,
    /// The round's selection seed (which fixes its groups).
    pub seed: &'a Digest,
    /// Its selected datasets, ascending.
    pub selected: &'a [u64],
    /// The scores its `RoundResult` recorded (what a screened rule screens by).
    pub scores: &'a [Score],
    /// The global model it trained from.
    pub global: &'a [u8],
    /// Its aggregate blob.
    pub aggregate: &'a [u8],
}

/// The server side of a task across its rounds: the spec's strategy and how many rounds it has
/// stepped. Rounds must be stepped in order, each exactly once.
pub struct ServerState {
    rule: Box<dyn Strategy>,
    screen: bool,
    stepped: u32,
}

impl ServerState {
    /// The state before round 1.
    pub fn new(spec: &TaskSpec) -> Result<Self, SpecError> {
        Ok(Self {
            rule: build(spec)?,
            screen: screens(spec),
            stepped: 0,
        })
    }

    /// Whether the rule screens groups by their scores (a `screened-` rule): only then does a
    /// step read them.
    pub fn screens(&self) -> bool {
        self.screen
    }

    /// Rounds stepped so far.
    pub fn stepped(&self) -> u32 {
        self.stepped
    }

    /// Moves past a round without stepping: one that closed without a result (expired), or one
    /// a verifier could not read. The rule's state stays as it was.
    pub fn skip(&mut self, round: u32) -> Result<(), FedError> {
        self.check_next(round)?;
        self.stepped = round;
        Ok(())
    }

    /// Steps through a recorded round from its blobs, screening (a `screened-` rule) by its
    /// recorded scores. How a restarted coordinator rebuilds its state, and how a claim check
    /// reaches a round's model.
    pub fn replay(&mut self, spec: &TaskSpec, r: RecordedStep<'_>) -> Result<Vec<f32>, FedError> {
        let kind = spec.model_kind()?;
        let global = crate::weights::decode(&kind, r.global)?;
        let (_, quantizer) = crate::groups::noise_and_quantizer(spec, r.selected.len())?;
        let limits = crate::record::RecordLimits {
            datasets_max: crate::spec::DATASETS_MAX,
            vector_len_max: u32::try_from(kind.num_params() + 1).unwrap_or(u32::MAX),
        };
        let aggregate = crate::record::AggregateBlob::decode(r.aggregate, &limits)?;
        let scores = if self.screen {
            let groups = crate::groups::assign(r.seed, r.selected, spec.group_size_min);
            crate::score::recorded_group_scores(groups.iter().map(Vec::as_slice), r.scores)
        } else {
            Vec::new()
        };
        self.step(r.round, &global, &quantizer, &aggregate.groups, &scores)
    }

    fn check_next(&self, round: u32) -> Result<(), FedError> {
        if round == self.stepped + 1 {
            return Ok(());
        }
        Err(FedError::StrategyOrder {
            expected: self.stepped + 1,
            got: round,
        })
    }

    /// Round `round`'s new global model from its groups' sums. A round in which no group, or
    /// fewer groups than the rule needs, completed (or passed a `screened-` rule's screen)
    /// leaves the model as it was (the rule's state does not move either), as `deai simulate`
    /// does for a round without replies. `scores` are the groups' scores, one per sum; only a
    /// screened rule reads them.
    pub fn step(
        &mut self,
        round: u32,
        global: &[f32],
        quantizer: &Quantizer,
        sums: &[Option<Vec<u32>>],
        scores: &[Option<u64>],
    ) -> Result<Vec<f32>, FedError> {
        self.check_next(round)?;
        let screen = if self.screen {
            if scores.len() != sums.len() {
                return Err(FedError::Protocol(
                    "a screened rule needs one score per group",
                ));
            }
            Screen::ByScore(scores)
        } else {
            Screen::All
        };
        let replies = group_replies(global, quantizer, sums, screen)?;
        self.stepped = round;
        if replies.is_empty() {
            return Ok(global.to_vec());
        }
        match self
            .rule
            .aggregate_train(u64::from(round), global, replies, &[])
        {
            Ok(next) => Ok(next),
            Err(LearnError::TooFewReplies { .. } | LearnError::NoReplies { .. }) => {
                Ok(global.to_vec())
            }
            Err(e) => Err(FedError::Strategy(e.to_string())),
        }
    }
}

/// A group's dequantized sum of updates and its number of contributors (the weight word).
pub fn dequantize(
    quantizer: &Quantizer,
    sum: &[u32],
    params: usize,
) -> Result<(Vec<f64>, u64), FedError> {
    if sum.len() != params + 1 {
        return Err(FedError::AggregateLength {
            expected: params + 1,
            got: sum.len(),
        });
    }
    Ok(quantizer.dequantize_sum(sum)?)
}

/// `global + lr · total / weight`, in `f64` then rounded to `f32`.
pub fn apply(global: &[f32], lr: f32, total: &[f64], weight: u64) -> Vec<f32> {
    let scale = f64::from(lr) / weight.max(1) as f64;
    global
        .iter()
        .zip(total)
        .map(|(&g, &t)| (f64::from(g) + scale * t) as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quantizer() -> Quantizer {
        Quantizer::new(1.0, 8).expect("valid")
    }

    /// Level of value v with weight 1: (v + 1) · 255 / 2; 0.0 is not a level, ±1 are.
    fn level(v: f64) -> u32 {
        ((v + 1.0) * 255.0 / 2.0).round() as u32
    }

    fn spec(strategy: &str, server_lr: f32) -> TaskSpec {
        TaskSpec {
            strategy: strategy.into(),
            server_lr,
            ..TaskSpec::digits_default()
        }
    }

    #[test]
    fn fedavg_is_the_survivors_mean_update_with_the_server_rate() {
        let g1 = vec![level(1.0) + level(-1.0), level(1.0) * 2, 2];
        let g2 = vec![level(1.0), level(-1.0), 1];
        let global = [0.5f32, 0.5];
        let mut state = ServerState::new(&spec("fedavg", 0.5)).expect("builds");
        let w = state
            .step(1, &global, &quantizer(), &[Some(g1), None, Some(g2)], &[])
            .expect("ok");
        // Sums: [0 + 1, 2 - 1] over 3 contributors → mean [1/3, 1/3], × 0.5.
        assert!((w[0] - (0.5 + 0.5 / 3.0)).abs() < 1e-6, "{w:?}");
        assert!((w[1] - (0.5 + 0.5 / 3.0)).abs() < 1e-6, "{w:?}");
        assert_eq!(
            state
                .step(2, &global, &quantizer(), &[None], &[])
                .expect("ok"),
            global,
            "a round without a completed group keeps the model"
        );
        assert!(matches!(
            state.step(3, &global, &quantizer(), &[Some(vec![1, 1])], &[]),
            Err(FedError::AggregateLength {
                expected: 3,
                got: 2
            })
        ));
    }

    #[test]
    fn a_screened_rule_steps_with_the_groups_that_scored_alone() {
        let g1 = vec![level(1.0), level(1.0), 1];
        let g2 = vec![level(-1.0), level(-1.0), 1];
        let g3 = vec![level(1.0), level(-1.0), 1];
        let sums = [Some(g1.clone()), Some(g2), Some(g3.clone()), None];
        let global = [0.0f32, 0.0];
        let mut screened = ServerState::new(&spec("screened-fedavg", 1.0)).expect("builds");
        assert_eq!(
            build(&spec("screened-fedavg", 1.0)).expect("ok").name(),
            "fedavg"
        );
        let w = screened
            .step(
                1,
                &global,
                &quantizer(),
                &sums,
                &[Some(7), Some(0), Some(1), None],
            )
            .expect("ok");
        let mut plain = ServerState::new(&spec("fedavg", 1.0)).expect("builds");
        let expected = plain
            .step(
                1,
                &global,
                &quantizer(),
                &[Some(g1), None, Some(g3), None],
                &[],
            )
            .expect("ok");
        assert_eq!(
            w, expected,
            "group 1 (score 0) and group 3 (aborted) left out"
        );
        assert!((w[0] - 1.0).abs() < 1e-6 && w[1].abs() < 1e-6, "{w:?}");
        assert!(
            matches!(
                screened.step(2, &global, &quantizer(), &sums, &[]),
                Err(FedError::Protocol(_))
            ),
            "a screened step without the scores is refused"
        );
        // Every group screened out: the model stays.
        let mut all_out = ServerState::new(&spec("screened-fedavg", 1.0)).expect("builds");
        let w = all_out
            .step(1, &global, &quantizer(), &sums, &[Some(0); 4])
            .expect("ok");
        assert_eq!(w, global);
        // A rule that does not screen ignores scores.
        let mut unscreened = ServerState::new(&spec("fedavg", 1.0)).expect("builds");
        let w = unscreened
            .step(1, &global, &quantizer(), &sums, &[Some(0); 4])
            .expect("ok");
        assert!((w[0] - 1.0 / 3.0).abs() < 1e-6, "{w:?}");
        assert!(build(&spec("screened-qfedavg", 1.0)).is_err());
        assert!(build(&spec("screened-nonsense", 1.0)).is_err());
    }

    #[test]
    fn rounds_step_in_order() {
        let mut state = ServerState::new(&spec("fedadam", 0.1)).expect("builds");
        let err = state
            .step(2, &[0.0], &quantizer(), &[], &[])
            .expect_err("round 1 first");
        assert!(matches!(
            err,
            FedError::StrategyOrder {
                expected: 1,
                got: 2
            }
        ));
    }

    #[test]
    fn server_rate_is_given_once() {
        // The optimisers take server_lr as their η; other rules get a step of that size.
        let median = build(&spec("median", 0.5)).expect("builds");
        assert_eq!(median.name(), "median");
        let adam = build(&spec("fedadam", 0.5)).expect("builds");
        assert_eq!(adam.name(), "fedadam");
        let mut state = ServerState::new(&spec("median", 0.5)).expect("builds");
        let g = |v: f64| Some(vec![level(v), 1]);
        let w = state
            .step(1, &[0.0], &quantizer(), &[g(1.0), g(1.0), g(-1.0)], &[])
            .expect("ok");
        assert!((w[0] - 0.5).abs() < 1e-6, "half the median's step: {w:?}");
    }

    #[test]
    fn rules_that_need_each_owner_are_refused_by_name() {
        for name in ["qfedavg", "bucketed-qfedavg+momentum"] {
            let err = build(&spec(name, 1.0)).err().expect("refused");
            assert!(
                matches!(&err, SpecError::Strategy { reason, .. } if reason.contains("secure aggregation")),
                "{err}"
            );
        }
        let err = build(&spec("fedsgd", 1.0)).err().expect("unknown");
        assert!(err.to_string().contains("fedavg"), "{err}");
    }

    #[test]
    fn fedprox_asks_owners_for_a_proximal_term() {
        assert_eq!(prox_mu(&spec("fedavg", 1.0)).expect("ok"), 0.0);
        assert!(prox_mu(&spec("fedprox", 1.0)).expect("ok") > 0.0);
    }

    /// Runs `spec` through the in-process network (owners, SecAgg groups, coordinator) with
    /// every round re-verified.
    fn networked(spec: &TaskSpec) -> crate::harness::TaskReport {
        let (owners, validation) = crate::harness::tests::owners(12);
        let cfg = crate::harness::HarnessConfig {
            task: 1,
            seed: 3,
            verify: true,
            ..Default::default()
        };
        crate::harness::run_task(spec, &owners, &validation, &cfg).expect("task runs")
    }

    #[test]
    fn networked_rounds_give_the_simulators_strategy_bytes() {
        let (_, validation) = crate::harness::tests::owners(12);
        let mut finals = Vec::new();
        for (name, lr) in [("fedavg", 1.0), ("fedadam", 0.05), ("median", 1.0)] {
            let spec = TaskSpec {
                strategy: name.into(),
                server_lr: lr,
                rounds: 3,
                datasets_per_round: 12,
                ..crate::harness::tests::spec()
            };
            let report = networked(&spec);
            let kind = spec.model_kind().expect("valid");
            // The simulator's own rule, fed the group sums the way `deai simulate` feeds
            // replies: each completed group's mean model, weighted by its survivors.
            let sampling = Sampling::count(12);
            let mut rule = strategy::build_with(name, sampling, 0, Some(lr)).expect("known");
            for r in &report.rounds {
                let check = r.check.as_ref().expect("verified");
                assert!(check.is_ok(), "{name} round {}: {check:?}", r.info.round);
                assert_eq!(r.outcome.groups.len(), 3, "12 selected in groups of 4");
                let global_blob = &report.blobs[&r.info.global_model];
                let global = crate::weights::decode(&kind, global_blob).expect("decodes");
                let plan = crate::groups::RoundPlan::new(&spec, &r.info).expect("plan");
                let limits = crate::record::RecordLimits {
                    datasets_max: 100,
                    vector_len_max: plan.groups[0].config.vector_len,
                };
                let aggregate = crate::record::AggregateBlob::decode(
                    &report.blobs[&r.outcome.aggregate.0],
                    &limits,
                )
                .expect("decodes");
                let replies = aggregate
                    .groups
                    .iter()
                    .flatten()
                    .enumerate()
                    .map(|(g, sum)| {
                        let (total, n) = plan.quantizer.dequantize_sum(sum).expect("sum");
                        let params = global
                            .iter()
                            .zip(&total)
                            .map(|(&w, &t)| (f64::from(w) + t / n as f64) as f32)
                            .collect();
                        Reply {
                            client: g as u64,
                            params,
                            samples: n,
                            loss_before: None,
                        }
                    })
                    .collect();
                let round = u64::from(r.info.round);
                let expected = rule
                    .aggregate_train(round, &global, replies, &[])
                    .expect("aggregates");
                let bytes = crate::weights::encode(&kind, &expected).expect("encodes");
                assert_eq!(
                    crate::weights::model_hash(&bytes),
                    r.outcome.new_model.0,
                    "{name} round {}: networked and in-process models differ",
                    r.info.round
                );
            }
            let last = report.rounds.last().expect("rounds");
            assert!(
                last.outcome.accuracy > 0.5,
                "{name}: {}",
                last.outcome.accuracy
            );
            finals.push(last.outcome.new_model.0);
        }
        finals.dedup();
        assert_eq!(finals.len(), 3, "each rule trains a different model");
        // The verifier needs the optimiser's state: checking FedAdam's round 2 from a fresh
        // state (as if round 1 had not happened) names the new model as wrong.
        let spec = TaskSpec {
            strategy: "fedadam".into(),
            server_lr: 0.05,
            rounds: 2,
            datasets_per_round: 12,
            ..crate::harness::tests::spec()
        };
        let report = networked(&spec);
        let r2 = &report.rounds[1];
        let fetch = |h: &deai_ledger::Digest| report.blobs.get(h).cloned();
        let recorded = crate::RecordedRound::from(&r2.outcome.round_result(1, 2));
        let mut fresh = ServerState::new(&spec).expect("builds");
        // Step a fresh state over round 1 with a zero update: a wrong history.
        let global = spec.initial_weights().expect("valid");
        let plan = crate::groups::RoundPlan::new(&spec, &report.rounds[0].info).expect("plan");
        fresh
            .step(1, &global, &plan.quantizer, &[None], &[])
            .expect("steps");
        let check =
            crate::verify_round(&spec, &r2.info, &recorded, &fetch, &validation, &mut fresh);
        assert!(
            matches!(&check.mismatches[..], [crate::Mismatch::NewModel { .. }]),
            "{:?}",
            check.mismatches
        );
    }

    #[test]
    fn a_round_that_cannot_be_checked_does_not_hide_the_next() {
        let (_, validation) = crate::harness::tests::owners(12);
        let spec = TaskSpec {
            rounds: 3,
            ..crate::harness::tests::spec()
        };
        let report = networked(&spec);
        let first = &report.rounds[0].outcome;
        let hidden = [first.record.0, first.aggregate.0];
        let fetch = |h: &deai_ledger::Digest| {
            (!hidden.contains(h))
                .then(|| report.blobs.get(h).cloned())
                .flatten()
        };
        let mut server = ServerState::new(&spec).expect("builds");
        let checks: Vec<_> = report
            .rounds
            .iter()
            .map(|r| {
                let recorded = crate::RecordedRound::from(&r.outcome.round_result(1, r.info.round));
                crate::verify_round(&spec, &r.info, &recorded, &fetch, &validation, &mut server)
            })
            .collect();
        assert!(!checks[0].is_ok(), "round 1's blobs are missing");
        assert!(checks[1].is_ok(), "{:?}", checks[1].mismatches);
        assert!(checks[2].is_ok(), "{:?}", checks[2].mismatches);
    }
}
