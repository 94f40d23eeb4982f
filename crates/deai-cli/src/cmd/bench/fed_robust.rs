//! `deai bench fed-robust`: every owner attack against the robust rules through the real round
//! protocol (SecAgg+ groups, distributed noise, the spec's strategy over group means), with and
//! without 20 % attackers; the table docs/robustness.md records.

use deai_fed::robustness::{self, ScenarioResult};
use rayon::prelude::*;
use serde::Serialize;

/// Arguments of `deai bench fed-robust`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  deai bench fed-robust --json")]
pub struct Args {
    /// Rounds per task.
    #[arg(long, default_value_t = 50)]
    pub rounds: u32,
    /// Owners selected per round (of 100).
    #[arg(long, default_value_t = 20)]
    pub per_round: u32,
    /// Smallest scoring group: what secure aggregation reveals is one sum per group, so smaller
    /// groups let a robust rule isolate more attackers and hide less.
    #[arg(long, default_value_t = 4)]
    pub group_size: u32,
    /// Seed of the partition, the attackers and every task (the first, with `--seeds`).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Run every cell with this many seeds (`--seed`, `--seed + 1`, …: each its own partition,
    /// attackers and task) and report the mean: one run's cell carries a few points of noise.
    #[arg(long, default_value_t = 1)]
    pub seeds: u64,
    /// The rules to compare, comma-separated (default: every rule of the table).
    #[arg(long, value_delimiter = ',')]
    pub rules: Vec<String>,
    /// Write the tables as markdown here.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Print one JSON object instead of a human summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Out {
    owners: usize,
    attackers: usize,
    rounds: u32,
    per_round: u32,
    group_size: u32,
    seed: u64,
    seeds: u64,
    scenarios: Vec<ScenarioResult>,
}

/// Runs `deai bench fed-robust`.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.rounds > 0, "--rounds must be positive");
    anyhow::ensure!(args.seeds > 0, "--seeds must be positive");
    let scenarios = robustness::default_scenarios(args.rounds, args.per_round, args.group_size);
    for s in &scenarios {
        s.spec.validate().map_err(|e| {
            anyhow::anyhow!("{e}; choose --per-round and --group-size so that groups can form")
        })?;
    }
    let rules: Vec<&str> = if args.rules.is_empty() {
        robustness::RULES.to_vec()
    } else {
        args.rules.iter().map(String::as_str).collect()
    };
    for s in &scenarios {
        for rule in &rules {
            robustness::cell_spec(s, rule)
                .validate()
                .map_err(|e| anyhow::anyhow!("--rules {rule}: {e}"))?;
        }
    }
    let cells = robustness::cells(&rules);
    let bar = crate::progress::bar(
        args.json,
        (cells.len() * scenarios.len()) as u64 * args.seeds,
        "networked robustness cells",
    );
    let mut results = Vec::new();
    for s in &scenarios {
        let mut mean = vec![0.0; cells.len()];
        for seed in args.seed..args.seed + args.seeds {
            let (owners, validation) = robustness::owners(&s.partition, seed)?;
            let members = robustness::attacker_set(&owners, seed);
            let accuracies = cells
                .par_iter()
                .map(|(rule, attack)| {
                    let spec = robustness::cell_spec(s, rule);
                    let attackers = robustness::cell_attack(*attack, &members)?;
                    let acc = robustness::run_cell(&spec, &owners, &validation, attackers, seed);
                    bar.inc(1);
                    acc.map_err(|e| {
                        let attack = attack.unwrap_or("none");
                        anyhow::anyhow!("{} / {rule} / {attack} / seed {seed}: {e}", s.name)
                    })
                })
                .collect::<anyhow::Result<Vec<f64>>>()?;
            for (m, a) in mean.iter_mut().zip(accuracies) {
                *m += a / args.seeds as f64;
            }
        }
        results.push(robustness::assemble(s, &rules, &mean));
    }
    bar.finish_and_clear();
    let command = format!(
        "deai bench fed-robust --rounds {} --per-round {} --group-size {} --seed {} --seeds {}",
        args.rounds, args.per_round, args.group_size, args.seed, args.seeds
    );
    let mut md = format!(
        "## Networked rounds (`{command}`)\n\n{} owners, {} of them attackers; {} selected per \
         round in scoring groups of at least {}; each cell is the final validation accuracy (%), \
         the mean of {} seeds, and, in brackets, the change against the same rule without \
         attackers.\n\n",
        robustness::OWNERS,
        robustness::OWNERS / 5,
        args.per_round,
        args.group_size,
        args.seeds
    );
    for r in &results {
        md.push_str(&robustness::markdown(r));
    }
    if let Some(path) = &args.out {
        crate::files::write_atomically(path, md.as_bytes())?;
    }
    let out = Out {
        owners: robustness::OWNERS,
        attackers: robustness::OWNERS / 5,
        rounds: args.rounds,
        per_round: args.per_round,
        group_size: args.group_size,
        seed: args.seed,
        seeds: args.seeds,
        scenarios: results,
    };
    crate::output::emit(args.json, &out, |_| print!("{md}"))
}
