//! `deai bench secagg`: one full SecAgg+ round, all clients and the server in one process.

use deai_secagg::bench::{BenchSpec, bench};
use deai_secagg::params::Adversary;

/// Arguments of `deai bench secagg`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  deai bench secagg --clients 100 --dim 100000 --dropout 0.1 --json")]
pub struct Args {
    /// Clients starting the round.
    #[arg(long, default_value_t = 100)]
    pub clients: u32,
    /// Coordinates per update.
    #[arg(long, default_value_t = 100_000)]
    pub dim: u32,
    /// Fraction of clients that drop after sharing their keys.
    #[arg(long, default_value_t = 0.1)]
    pub dropout: f64,
    /// Fraction of clients assumed corrupt when choosing k and t.
    #[arg(long, default_value_t = 0.05)]
    pub corrupt: f64,
    /// Choose k and t against a semi-malicious server.
    #[arg(long)]
    pub malicious: bool,
    /// Seed of keys, inputs, graph and dropouts.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print one JSON object instead of a human summary.
    #[arg(long)]
    pub json: bool,
}

/// Runs the benchmark.
pub fn run(args: Args) -> anyhow::Result<()> {
    let adversary = if args.malicious {
        Adversary::SemiMalicious
    } else {
        Adversary::SemiHonest
    };
    let spec = BenchSpec {
        clients: args.clients,
        dim: args.dim,
        dropout: args.dropout,
        corrupt: args.corrupt,
        adversary,
        seed: args.seed,
    };
    let report = bench(&spec)?;
    anyhow::ensure!(report.exact, "unmasked sum differs from the plain sum");
    crate::output::emit(args.json, &report, |r| {
        println!(
            "SecAgg+ round: {} clients ({} survived), dim {}, k = {}, t = {}, b = {} bits, {} threads",
            r.clients, r.survivors, r.dim, r.k, r.t, r.modulus_bits, r.threads
        );
        println!(
            "  round {:.1} ms (plain sum {:.1} ms); client p50 {:.1} ms, max {:.1} ms; server {:.1} ms",
            r.round_ms, r.plain_sum_ms, r.client_ms_p50, r.client_ms_max, r.server_ms
        );
        println!(
            "  exact: {}; {:.0} bytes up per client, expansion {:.4}; mean error {:.2e} (bound {:.2e})",
            r.exact, r.bytes_up_per_client, r.expansion, r.mean_error_max, r.mean_error_bound
        );
    })
}
