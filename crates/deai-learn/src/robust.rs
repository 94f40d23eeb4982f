//! The robustness table: every attack against every robust rule, next to attack-free FedAvg.
//!
//! Each cell is the mean final accuracy over the given seeds; a row's "best" is the best rule
//! for that attack. Used by `deai bench robust` to write `docs/robustness.md`.

use std::fmt::Write as _;

use crate::attack::{self, Attack};
use crate::error::Result;
use crate::sim::{self, SimConfig};

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
    let baseline = mean_accuracy(
        &SimConfig {
            strategy: "fedavg".into(),
            attack: None,
            attackers: 0,
            ..s.config.clone()
        },
        seeds,
    )?;
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
        target_points: s.target_points,
        rows,
    })
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
