//! The networked robustness table: every attack of [`crate::attack`] against the robust rules,
//! through the real round protocol (owners' local training, clipping, distributed noise,
//! SecAgg+ masking per scoring group, the spec's strategy over the group means), in one
//! process with the [`crate::harness`]. `deai bench fed-robust` prints it; docs/robustness.md
//! records it.
//!
//! Each cell is one task on digits split among [`OWNERS`] owners, 20 % of them attackers (a
//! seeded set), and reports its final validation accuracy. Every rule is compared with itself
//! without attackers (the measure: an attack's cost to that rule) and, as a second
//! column, with attack-free FedAvg.

use std::collections::BTreeSet;

use deai_learn::data::Dataset;
use deai_learn::data::digits;
use deai_learn::data::partition::{self, Partition};
use ed25519_dalek::SigningKey;
use serde::Serialize;

use super::attack::{self, OwnerAttack};
use super::harness::{Attackers, HarnessConfig, Owner, run_task};
use super::{FedError, TaskSpec};

/// Owners of every scenario (the digits-100 task's client count).
pub const OWNERS: usize = 100;

/// Rules compared: the strongest of the in-process table (docs/robustness.md) and the
/// classical ones, all acting on group means, then the same rules behind the validation screen
/// (`screened-`, [`crate::strategy`]).
pub const RULES: &[&str] = &[
    "fedavg",
    "median",
    "trimmed-mean",
    "multi-krum",
    "norm-clip",
    "centered-clip",
    "fedavgm",
    "centered-clip+momentum",
    "screened-fedavg",
    "screened-median",
    "screened-centered-clip",
    "screened-centered-clip+momentum",
];

/// One scenario: a partition of the owners' data and what the best rule may lose.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Heading.
    pub name: String,
    /// How the training split is divided among the owners.
    pub partition: Partition,
    /// The task every cell runs (strategy filled per cell).
    pub spec: TaskSpec,
    /// Allowed loss of the best rule against its own attack-free run, points.
    pub target_points: f64,
}

/// The two scenarios of the issue: IID and label-sharded (non-IID) digits.
pub fn default_scenarios(rounds: u32, per_round: u32, group_size: u32) -> Vec<Scenario> {
    let spec = TaskSpec {
        model: "mlp".into(),
        rounds,
        datasets_per_round: per_round,
        local_epochs: 1,
        batch: 10,
        lr: 0.1,
        server_lr: 1.0,
        clip_norm: 1.0,
        noise_multiplier: 0.1,
        group_size_min: group_size,
        ..TaskSpec::digits_default()
    };
    vec![
        Scenario {
            name: "digits, IID".into(),
            partition: Partition::Iid,
            spec: spec.clone(),
            target_points: 3.0,
        },
        Scenario {
            name: "digits, shards".into(),
            partition: Partition::Shards,
            spec,
            target_points: 5.0,
        },
    ]
}

/// One rule's results in one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct RuleResult {
    /// The strategy.
    pub rule: String,
    /// Final accuracy without attackers.
    pub none: f64,
    /// `(attack, final accuracy)` in [`attack::names`] order.
    pub attacked: Vec<(String, f64)>,
}

impl RuleResult {
    /// The largest loss any attack causes against this rule's own attack-free accuracy.
    pub fn worst_loss(&self) -> f64 {
        self.attacked
            .iter()
            .map(|(_, a)| self.none - a)
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

/// One scenario's results.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// Heading.
    pub name: String,
    /// Allowed loss, points.
    pub target_points: f64,
    /// Per rule, in the order the cells named them.
    pub rules: Vec<RuleResult>,
    /// The rule whose worst loss is smallest.
    pub best_rule: String,
    /// Its worst loss, points.
    pub best_worst_loss_points: f64,
    /// Whether that loss is within the target.
    pub target_met: bool,
}

/// The owners of a scenario (dataset ids `1..=OWNERS`) and the validation set.
pub fn owners(partition: &Partition, seed: u64) -> Result<(Vec<Owner>, Dataset), FedError> {
    let all = digits::load().map_err(|e| FedError::LocalData(e.to_string()))?;
    let (train, validation) = digits::split(&all);
    let parts = partition::split(partition, &train.labels, train.classes, OWNERS, seed)
        .map_err(|e| FedError::LocalData(e.to_string()))?;
    let owners = parts
        .iter()
        .enumerate()
        .map(|(i, idx)| Owner {
            dataset: i as u64 + 1,
            key: SigningKey::from_bytes(&blake3::derive_key(
                "deai-fed robustness owner key v1",
                &(i as u64).to_le_bytes(),
            )),
            data: train.subset(idx),
        })
        .collect();
    Ok((owners, validation))
}

/// The seeded 20 % of `owners` that attack.
pub fn attacker_set(owners: &[Owner], seed: u64) -> BTreeSet<u64> {
    deai_learn::attack::attackers(owners.len(), owners.len() / 5, seed)
        .iter()
        .zip(owners)
        .filter(|(a, _)| **a)
        .map(|(_, o)| o.dataset)
        .collect()
}

/// Final validation accuracy of one cell.
pub fn run_cell(
    spec: &TaskSpec,
    owners: &[Owner],
    validation: &Dataset,
    attack: Option<Attackers>,
    seed: u64,
) -> Result<f64, FedError> {
    let cfg = HarnessConfig {
        task: 1,
        seed,
        verify: false,
        attacks: attack.into_iter().collect(),
        ..HarnessConfig::default()
    };
    let report = run_task(spec, owners, validation, &cfg)?;
    Ok(report
        .rounds
        .last()
        .map_or(report.initial_accuracy, |r| r.outcome.accuracy))
}

/// Every cell of a scenario for `rules`: `(rule, attack or None)` pairs, in table order.
pub fn cells<'a>(rules: &[&'a str]) -> Vec<(&'a str, Option<&'static str>)> {
    rules
        .iter()
        .flat_map(|r| {
            std::iter::once((*r, None))
                .chain(attack::names().into_iter().map(move |a| (*r, Some(a))))
        })
        .collect()
}

/// Assembles a scenario's results for `rules` from its cells' accuracies (in [`cells`] order).
pub fn assemble(s: &Scenario, rules: &[&str], accuracies: &[f64]) -> ScenarioResult {
    let names = attack::names();
    let per_rule = 1 + names.len();
    let rules: Vec<RuleResult> = rules
        .iter()
        .zip(accuracies.chunks(per_rule))
        .map(|(rule, acc)| RuleResult {
            rule: (*rule).into(),
            none: acc[0],
            attacked: names
                .iter()
                .zip(&acc[1..])
                .map(|(a, v)| ((*a).into(), *v))
                .collect(),
        })
        .collect();
    let best = rules
        .iter()
        .min_by(|a, b| a.worst_loss().total_cmp(&b.worst_loss()));
    let (best_rule, loss) = best.map_or((String::new(), f64::NAN), |b| {
        (b.rule.clone(), b.worst_loss() * 100.0)
    });
    ScenarioResult {
        name: s.name.clone(),
        target_points: s.target_points,
        best_rule,
        best_worst_loss_points: loss,
        target_met: loss <= s.target_points,
        rules,
    }
}

/// The spec of one cell: the scenario's task under `rule`, assuming one Byzantine group.
pub fn cell_spec(s: &Scenario, rule: &str) -> TaskSpec {
    TaskSpec {
        strategy: rule.into(),
        byzantine_groups: 1,
        ..s.spec.clone()
    }
}

/// The attackers of a cell.
pub fn cell_attack(
    name: Option<&str>,
    members: &BTreeSet<u64>,
) -> Result<Option<Attackers>, FedError> {
    name.map(|n| {
        Ok(Attackers {
            attack: OwnerAttack::from_name(n)?,
            members: members.clone(),
        })
    })
    .transpose()
}

/// The markdown table of one scenario: a row per attack, a column per rule, each cell the
/// accuracy and, in brackets, its loss against the rule's own attack-free run; then the loss
/// against attack-free FedAvg.
pub fn markdown(r: &ScenarioResult) -> String {
    use std::fmt::Write as _;
    let pct = |v: f64| format!("{:.1}", v * 100.0);
    let fedavg_none = r.rules.first().map_or(f64::NAN, |f| f.none);
    let mut md = format!("### {}\n\n| attack |", r.name);
    for rule in &r.rules {
        let _ = write!(md, " {} |", rule.rule);
    }
    md.push_str("\n|---|");
    md.push_str(&"---|".repeat(r.rules.len()));
    md.push_str("\n| *none* |");
    for rule in &r.rules {
        let _ = write!(md, " {} |", pct(rule.none));
    }
    md.push('\n');
    for (i, name) in attack::names().iter().enumerate() {
        let _ = write!(md, "| {name} |");
        for rule in &r.rules {
            let a = rule.attacked[i].1;
            let _ = write!(md, " {} ({:+.1}) |", pct(a), (a - rule.none) * 100.0);
        }
        md.push('\n');
    }
    md.push_str("| **worst loss vs own *none*** |");
    for rule in &r.rules {
        let _ = write!(md, " {:.1} |", rule.worst_loss() * 100.0);
    }
    md.push_str("\n| worst loss vs FedAvg *none* |");
    for rule in &r.rules {
        let worst = rule
            .attacked
            .iter()
            .map(|(_, a)| *a)
            .fold(f64::INFINITY, f64::min);
        let _ = write!(md, " {:.1} |", (fedavg_none - worst) * 100.0);
    }
    let _ = writeln!(
        md,
        "\n\nBest rule: **{}**, worst loss {:.1} points against its own attack-free run \
         (target {:.0}): {}.\n",
        r.best_rule,
        r.best_worst_loss_points,
        r.target_points,
        if r.target_met { "met" } else { "**not met**" }
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_each_rules_worst_loss_and_the_best_rule() {
        let s = &default_scenarios(2, 20, 4)[0];
        let cells = cells(RULES);
        let per_rule = 1 + attack::names().len();
        assert_eq!(cells.len(), RULES.len() * per_rule);
        assert_eq!(cells[0], ("fedavg", None));
        // Rule r loses r + 1 points to its worst attack; the first rule is best.
        let accuracies: Vec<f64> = (0..RULES.len())
            .flat_map(|r| {
                let mut row = vec![0.9; per_rule];
                row[per_rule - 1] = 0.9 - (r as f64 + 1.0) / 100.0;
                row
            })
            .collect();
        let r = assemble(s, RULES, &accuracies);
        assert_eq!(r.best_rule, "fedavg");
        assert!((r.best_worst_loss_points - 1.0).abs() < 1e-9);
        assert!(r.target_met);
        let md = markdown(&r);
        assert!(md.contains("| colluding |"), "{md}");
        assert!(md.contains("Best rule: **fedavg**"), "{md}");
    }

    #[test]
    fn a_cell_runs_the_networked_task_with_its_attackers() {
        let s = &default_scenarios(2, 20, 4)[1];
        let (owners, validation) = owners(&s.partition, 0).expect("digits");
        assert_eq!(owners.len(), OWNERS);
        let members = attacker_set(&owners, 0);
        assert_eq!(members.len(), OWNERS / 5);
        let spec = cell_spec(s, "median");
        let attack = cell_attack(Some("sign-flip"), &members).expect("known");
        let acc = run_cell(&spec, &owners, &validation, attack, 0).expect("runs");
        assert!((0.0..=1.0).contains(&acc));
        assert!(cell_attack(Some("nonsense"), &members).is_err());
    }
}
