//! Measurement runs without the CLI: `cargo run --release -p deai-learn --example measure -- digits`
//! prints digits-100 accuracy and model hash for seeds 0..5 with 1 and 2 rayon threads.

use deai_learn::data::partition::Partition;
use deai_learn::sim::{self, Report, SimConfig};

fn run(cfg: &SimConfig, threads: usize) -> Report {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    pool.install(|| sim::run(cfg, &mut |_| {})).expect("run")
}

fn digits() {
    for partition in [Partition::Iid, Partition::Shards] {
        let mut finals = Vec::new();
        for seed in 0..5 {
            let cfg = SimConfig {
                partition: partition.clone(),
                seed,
                ..SimConfig::digits_100()
            };
            let (one, two) = (run(&cfg, 1), run(&cfg, 2));
            println!(
                "{partition} seed {seed}: final {:.4} best {:.4} hash1 {} same_with_2_threads {} rounds_s {:.3}/{:.3} median_round_ms {:.2}",
                one.final_accuracy,
                one.best_accuracy,
                &one.model_hash[..16],
                one.model_hash == two.model_hash,
                one.rounds_s,
                two.rounds_s,
                two.median_round_ms
            );
            finals.push(one.final_accuracy);
        }
        println!(
            "{partition}: mean final accuracy {:.4}",
            finals.iter().sum::<f64>() / finals.len() as f64
        );
    }
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("digits") | None => digits(),
        Some(other) => eprintln!("unknown measurement {other:?} (digits)"),
    }
}
