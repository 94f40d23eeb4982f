//! The robustness table: every attack against every robust rule, next to attack-free FedAvg.
//!
//! Each cell is the mean final accuracy over the given seeds; a row's "best" is the best rule
//! for that attack. Used by `deai bench robust` to write `docs/robustness.md`.

use std::fmt::Write as _;

use crate::attack::{self, Attack};
use crate::data::partition::Partition;
use crate::error::Result;
use crate::model::optim::LocalTrain;
use crate::sim::{self, DataSource, SimConfig};
use crate::strategy::Sampling;

/// Rules compared in the table.
pub const RULES: &[&str] = &[
    "fedavg",
    "median",
    "trimmed-mean",
    "krum",
    "multi-krum",
    "bulyan",
    "norm-clip",
    "centered-clip",
    "bucketed-centered-clip",
    "fedavgm",
    "centered-clip+momentum",
    "bucketed-centered-clip+momentum",
];

/// One scenario (data set and partition) of the table.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Heading.
    pub name: String,
    /// Base configuration (attack and strategy are filled per cell).
    pub config: SimConfig,
    /// Allowed drop of the best rule below attack-free FedAvg, accuracy points.
    pub target_points: f64,
}

/// Results of one scenario.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScenarioResult {
    /// Heading.
    pub name: String,
    /// Attack-free FedAvg accuracy (mean over seeds).
    pub baseline: f64,
    /// Each rule's own attack-free accuracy (RULES order): what an attack costs that rule.
    pub attack_free: Vec<f64>,
    /// Allowed drop, points.
    pub target_points: f64,
    /// `(attack, accuracy per rule in RULES order)`.
    pub rows: Vec<(String, Vec<f64>)>,
}

fn mean_accuracy(cfg: &SimConfig, seeds: &[u64]) -> Result<f64> {
    let mut total = 0.0;
    for &seed in seeds {
        total += sim::run(
            &SimConfig {
                seed,
                ..cfg.clone()
            },
            &mut |_| {},
        )?
        .final_accuracy;
    }
    Ok(total / seeds.len() as f64)
}

/// Runs one scenario: `attackers` of its clients attack; `progress` sees each finished cell.
pub fn run_scenario(
    s: &Scenario,
    attackers: usize,
    seeds: &[u64],
    progress: &mut dyn FnMut(&str),
) -> Result<ScenarioResult> {
    let mut attack_free = Vec::new();
    for rule in RULES {
        let cfg = SimConfig {
            strategy: (*rule).into(),
            attack: None,
            attackers: 0,
            ..s.config.clone()
        };
        attack_free.push(mean_accuracy(&cfg, seeds)?);
        progress(&format!("{} / none / {rule}", s.name));
    }
    // RULES starts with FedAvg, the baseline every row is measured against.
    let baseline = attack_free[0];
    let mut rows = Vec::new();
    for name in attack::NAMES {
        let a = Attack::from_name(name)?;
        let mut cells = Vec::new();
        for rule in RULES {
            let cfg = SimConfig {
                strategy: (*rule).into(),
                attack: Some(a),
                attackers,
                ..s.config.clone()
            };
            cells.push(mean_accuracy(&cfg, seeds)?);
            progress(&format!("{} / {name} / {rule}", s.name));
        }
        rows.push(((*name).to_string(), cells));
    }
    Ok(ScenarioResult {
        name: s.name.clone(),
        baseline,
        attack_free,
        target_points: s.target_points,
        rows,
    })
}

/// Simulation cells (each run over every seed) in one scenario: an attack-free row and one
/// row per attack, every rule in each.
pub fn cells_per_scenario() -> usize {
    RULES.len() * (1 + attack::NAMES.len())
}

/// Heading of the hand-written reading that follows the generated tables.
pub const COMMENTARY_HEADING: &str = "## Reading the table";

/// The hand-written part of an existing document (from [`COMMENTARY_HEADING`] on), which a
/// regeneration keeps: the numbers are the command's, the reading of them is a person's.
pub fn commentary(existing: &str) -> Option<&str> {
    existing
        .match_indices(COMMENTARY_HEADING)
        .find(|(i, _)| *i == 0 || existing[..*i].ends_with('\n'))
        .map(|(i, _)| &existing[i..])
}

/// Markdown for one scenario's results.
pub fn markdown(r: &ScenarioResult) -> String {
    let mut out = format!(
        "### {}\n\nAttack-free FedAvg: **{:.1}%**. Target: best rule within {} points.\n\n",
        r.name,
        100.0 * r.baseline,
        r.target_points
    );
    let _ = writeln!(
        out,
        "| attack | {} | best | gap (points) | target met |",
        RULES.join(" | ")
    );
    let _ = writeln!(out, "|---|{}---|---|---|", "---|".repeat(RULES.len()));
    let free: Vec<String> = r
        .attack_free
        .iter()
        .map(|v| format!("{:.1}", 100.0 * v))
        .collect();
    let _ = writeln!(out, "| *none* | {} | | | |", free.join(" | "));
    for (attack, cells) in &r.rows {
        let (best_i, best) = cells
            .iter()
            .enumerate()
            .fold((0, f64::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
        let gap = 100.0 * (r.baseline - best);
        let cells_md: Vec<String> = cells.iter().map(|v| format!("{:.1}", 100.0 * v)).collect();
        let met = if gap <= r.target_points { "yes" } else { "no" };
        let _ = writeln!(
            out,
            "| {attack} | {} | {} | {gap:.1} | {met} |",
            cells_md.join(" | "),
            RULES[best_i]
        );
    }
    out
}

/// The scenarios: digits-100 IID (target 3 points) and shards (5 points) with
/// `per_round` clients per round, and, when `fmnist` is `Some((limit, rounds))`, Fashion-MNIST
/// (first `limit` images, dirichlet 0.5, CNN, 5 points).
pub fn default_scenarios(per_round: usize, fmnist: Option<(usize, u64)>) -> Vec<Scenario> {
    let digits = SimConfig {
        sampling: Sampling::count(per_round),
        ..SimConfig::digits_100()
    };
    let mut out = vec![
        Scenario {
            name: "digits-100, IID".into(),
            config: digits.clone(),
            target_points: 3.0,
        },
        Scenario {
            name: "digits-100, shards".into(),
            config: SimConfig {
                partition: Partition::Shards,
                ..digits.clone()
            },
            target_points: 5.0,
        },
    ];
    if let Some((limit, rounds)) = fmnist {
        let config = SimConfig {
            task: "fmnist-100".into(),
            dataset: DataSource::FashionMnist { limit: Some(limit) },
            partition: Partition::Dirichlet(0.5),
            model: "cnn".into(),
            rounds,
            local: LocalTrain {
                lr: 0.05,
                batch: 20,
                ..digits.local
            },
            ..digits
        };
        out.push(Scenario {
            name: "Fashion-MNIST, dirichlet 0.5".into(),
            config,
            target_points: 5.0,
        });
    }
    out
}

/// The whole document for `results`, naming the command that produced it.
pub fn document(
    command: &str,
    per_round: usize,
    seeds: usize,
    results: &[ScenarioResult],
) -> String {
    let mut md = format!(
        "# Robustness of the aggregation rules\n\nGenerated by `{command}`. 20% of the clients attack \
         (a seeded set); {per_round} clients per round; the rules assume f = 20% of the round's clients \
         are Byzantine. Each cell is the mean final test accuracy (%) over seeds 0..{seeds}. Attacks: \
         label-flip (train on 9 − y), sign-flip (send w − 4Δ), scaling (w + 10Δ), gaussian \
         (w + N(0, 1)), alie (μ − zσ of the round), ipm (w − 0.5·mean Δ), free-rider (send w back). \
         The *none* row is each rule's own accuracy without attackers; `RULE+momentum` adds server \
         momentum 0.9 after the rule, `bucketed-RULE` applies it to means of random pairs of \
         updates.\n\n"
    );
    for r in results {
        md.push_str(&markdown(r));
        md.push('\n');
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-round version of the digits IID scenario: every attack × every rule runs, the table
    /// has a row per attack, and the baseline is FedAvg's attack-free cell.
    #[test]
    fn a_small_table_has_every_cell_and_names_the_baseline() {
        let mut s = default_scenarios(20, None).remove(0);
        s.config.rounds = 2;
        let mut seen = 0;
        let r = run_scenario(&s, s.config.clients / 5, &[0], &mut |_| seen += 1).expect("runs");
        assert_eq!(seen, cells_per_scenario());
        assert_eq!(RULES[0], "fedavg");
        assert_eq!(r.baseline, r.attack_free[0]);
        assert_eq!(r.rows.len(), attack::NAMES.len());
        for (attack, cells) in &r.rows {
            assert_eq!(cells.len(), RULES.len(), "{attack}");
            assert!(cells.iter().all(|a| (0.0..=1.0).contains(a)), "{attack}");
        }
        let md = markdown(&r);
        assert_eq!(
            md.lines().filter(|l| l.starts_with("| ")).count(),
            2 + r.rows.len()
        );
        assert!(md.contains("| *none* |"));
    }

    #[test]
    fn regeneration_keeps_only_the_hand_written_reading() {
        let reading = format!("{COMMENTARY_HEADING}\n\nMomentum helps.\n");
        let old = format!("# Robustness\n\n| table |\n\n{reading}");
        assert_eq!(commentary(&old), Some(reading.as_str()));
        assert_eq!(commentary("# Robustness\n\n| table |\n"), None);
        // The heading counts only at the start of a line.
        assert_eq!(commentary(&format!("see `{COMMENTARY_HEADING}`\n")), None);
    }
}
