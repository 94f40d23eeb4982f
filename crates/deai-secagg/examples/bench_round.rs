//! Runs the round of `deai bench secagg` several times and prints each round time and the
//! median: how `docs/secagg.md`'s figures are measured without building the whole CLI.
//!
//! `cargo run --release -p deai-secagg --example bench_round -- [clients] [dim] [runs] [malicious]`
//! (defaults: 100 clients, dim 100000, 5 runs, semi-honest; dropout 0.1, corrupt 0.05, seed 1,
//! as `deai bench secagg`).

use deai_secagg::bench::{BenchSpec, bench};
use deai_secagg::params::Adversary;

fn arg<T: std::str::FromStr>(at: usize, default: T) -> T {
    std::env::args()
        .nth(at)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let clients = arg(1, 100u32);
    let dim = arg(2, 100_000u32);
    let runs = arg(3, 5usize).max(1);
    let adversary = if arg(4, String::new()) == "malicious" {
        Adversary::SemiMalicious
    } else {
        Adversary::SemiHonest
    };
    let spec = BenchSpec {
        clients,
        dim,
        dropout: 0.1,
        corrupt: 0.05,
        adversary,
        seed: 1,
    };
    let mut rounds = Vec::with_capacity(runs);
    for _ in 0..runs {
        let r = match bench(&spec) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("bench failed: {e}");
                std::process::exit(1);
            }
        };
        println!(
            "n={} dim={} k={} t={} survivors={} round_ms={:.1} client_ms_p50={:.2} \
             client_ms_max={:.2} server_ms={:.1} exact={} bytes_up_per_client={:.0} expansion={:.4}",
            r.clients,
            r.dim,
            r.k,
            r.t,
            r.survivors,
            r.round_ms,
            r.client_ms_p50,
            r.client_ms_max,
            r.server_ms,
            r.exact,
            r.bytes_up_per_client,
            r.expansion
        );
        rounds.push(r.round_ms);
    }
    rounds.sort_by(f64::total_cmp);
    let shown: Vec<String> = rounds.iter().map(|r| format!("{r:.0}")).collect();
    println!(
        "round_ms over {runs} runs: {}; median {:.0}",
        shown.join(", "),
        rounds[runs / 2]
    );
}
