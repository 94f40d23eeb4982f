//! `deai bench fl`: federated digits-100 against its centralised equivalent (same sample-steps),
//! and the cross-device scale case (Fashion-MNIST, 20,000 clients, 10,000 per round, CNN).

use deai_learn::bench::{self, Overhead, Scale};
use serde::Serialize;

/// Arguments of `deai bench fl`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  deai bench fl --skip-scale --json")]
pub struct Args {
    /// Seed of the digits-100 run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Timing repeats (the best is kept).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Clients in the scale case.
    #[arg(long, default_value_t = 20_000)]
    pub scale_clients: usize,
    /// Clients per round in the scale case.
    #[arg(long, default_value_t = 10_000)]
    pub scale_per_round: usize,
    /// Rounds of the scale case.
    #[arg(long, default_value_t = 2)]
    pub scale_rounds: u64,
    /// Skip the scale case (it needs Fashion-MNIST: scripts/install-deps.sh).
    #[arg(long)]
    pub skip_scale: bool,
    /// Print one JSON object instead of a human summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Out {
    #[serde(flatten)]
    digits: Overhead,
    scale: Option<Scale>,
}

/// Runs `deai bench fl`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let digits = bench::overhead(args.seed, args.repeats)?;
    let scale = if args.skip_scale {
        None
    } else {
        Some(bench::scale(
            args.scale_clients,
            args.scale_per_round,
            args.scale_rounds,
            args.seed,
        )?)
    };
    crate::output::emit(args.json, &Out { digits, scale }, |o| {
        let d = &o.digits;
        println!(
            "digits-100: federated {:.3} s, central {:.3} s, overhead {:.2} (accuracy {:.4} vs {:.4}; {} vs {} sample-steps in {} vs {} gradient steps)",
            d.federated_s,
            d.central_s,
            d.overhead,
            d.federated_accuracy,
            d.central_accuracy,
            d.federated_samples,
            d.central_samples,
            d.federated_batches,
            d.central_batches
        );
        if let Some(s) = &o.scale {
            println!(
                "scale: {} clients, {} per round, CNN: {:.2} s per round, accuracy {:.4} after {} rounds, peak RSS {:.0} MiB",
                s.clients, s.per_round, s.round_s, s.accuracy, s.rounds, s.peak_rss_mb
            );
        }
    })
}
