//! `deai bench robust`: every attack × every robust rule on digits-100 (IID and shards) and
//! Fashion-MNIST (dirichlet 0.5), 20% attackers; writes the markdown table (docs/robustness.md).

use deai_learn::robust::{self, ScenarioResult};
use serde::Serialize;

/// Arguments of `deai bench robust`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  deai bench robust --seeds 2 --skip-fmnist --out docs/robustness.md")]
pub struct Args {
    /// Seeds per cell (0..N).
    #[arg(long, default_value_t = 2)]
    pub seeds: u64,
    /// Clients per round (the rules assume 20% of them Byzantine).
    #[arg(long, default_value_t = 20)]
    pub per_round: usize,
    /// Fashion-MNIST: first N train and test images.
    #[arg(long, default_value_t = 6000)]
    pub fmnist_limit: usize,
    /// Fashion-MNIST rounds.
    #[arg(long, default_value_t = 30)]
    pub fmnist_rounds: u64,
    /// Skip the Fashion-MNIST scenario.
    #[arg(long)]
    pub skip_fmnist: bool,
    /// Write the markdown here (a "## Reading the table" section already in the file is kept).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Print one JSON object instead of a human summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Out {
    scenarios: Vec<ScenarioResult>,
}

/// Runs `deai bench robust`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let seeds: Vec<u64> = (0..args.seeds.max(1)).collect();
    let fmnist = (!args.skip_fmnist).then_some((args.fmnist_limit, args.fmnist_rounds));
    let scenarios = robust::default_scenarios(args.per_round, fmnist);
    let cells = (scenarios.len() * robust::cells_per_scenario()) as u64;
    let bar = crate::progress::bar(args.json, cells, "robustness cells");
    let mut results = Vec::new();
    for s in scenarios {
        let attackers = s.config.clients / 5;
        let r = robust::run_scenario(&s, attackers, &seeds, &mut |cell| {
            bar.set_message(cell.to_string());
            bar.inc(1);
        })?;
        results.push(r);
    }
    bar.finish_and_clear();
    let command = format!(
        "deai bench robust --seeds {} --per-round {}{}",
        args.seeds,
        args.per_round,
        if args.skip_fmnist {
            " --skip-fmnist".to_string()
        } else {
            format!(
                " --fmnist-limit {} --fmnist-rounds {}",
                args.fmnist_limit, args.fmnist_rounds
            )
        }
    );
    let md = robust::document(&command, args.per_round, seeds.len(), &results);
    if let Some(path) = &args.out {
        // A document regenerated in place keeps its hand-written reading of the numbers.
        let existing = std::fs::read_to_string(path).unwrap_or_default();
        let kept = robust::commentary(&existing).unwrap_or_default();
        crate::files::write_atomically(path, format!("{md}{kept}").as_bytes())?;
    }
    crate::output::emit(args.json, &Out { scenarios: results }, |_| print!("{md}"))
}
