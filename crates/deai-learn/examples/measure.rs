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

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn bench() {
    let o = deai_learn::bench::overhead(0, 3).expect("digits");
    println!("{}", serde_json::to_string(&o).expect("json"));
    let s = deai_learn::bench::scale(
        arg(2, 20_000) as usize,
        arg(3, 10_000) as usize,
        arg(4, 2),
        0,
    )
    .expect("fmnist");
    println!("{}", serde_json::to_string(&s).expect("json"));
}

/// Fashion-MNIST, CNN, 100 clients, dirichlet 0.5: FedAvg vs FedAdam vs FedYogi.
fn fmnist() {
    let rounds = arg(2, 100);
    let limit = Some(arg(3, 60_000) as usize);
    for (strategy, server_lr) in [
        ("fedavg", None),
        ("fedadam", Some(0.01)),
        ("fedyogi", Some(0.01)),
    ] {
        let cfg = SimConfig {
            task: "fmnist-100".into(),
            dataset: deai_learn::sim::DataSource::FashionMnist { limit },
            partition: Partition::Dirichlet(0.5),
            model: "cnn".into(),
            rounds,
            strategy: strategy.into(),
            server_lr,
            local: deai_learn::model::optim::LocalTrain {
                lr: 0.05,
                batch: 20,
                ..SimConfig::digits_100().local
            },
            ..SimConfig::digits_100()
        };
        let r = sim::run(&cfg, &mut |s| {
            if s.round % 10 == 0 {
                eprintln!("{strategy} round {} acc {:.4}", s.round, s.accuracy);
            }
        })
        .expect("fmnist");
        println!(
            "fmnist-100 {strategy}: final {:.4} best {:.4} rounds_s {:.1} median_round_ms {:.0} hash {}",
            r.final_accuracy,
            r.best_accuracy,
            r.rounds_s,
            r.median_round_ms,
            &r.model_hash[..16]
        );
    }
}

/// The robustness table (same code as `deai bench robust`), digits scenarios only.
fn robust() {
    let seeds: Vec<u64> = (0..arg(2, 2)).collect();
    let per_round = 20;
    let mut results = Vec::new();
    for s in deai_learn::robust::default_scenarios(per_round, None) {
        let r = deai_learn::robust::run_scenario(&s, s.config.clients / 5, &seeds, &mut |c| {
            eprintln!("done {c}")
        })
        .expect("run");
        results.push(r);
    }
    let cmd = format!(
        "cargo run -p deai-learn --example measure -- robust {}",
        seeds.len()
    );
    print!(
        "{}",
        deai_learn::robust::document(&cmd, per_round, seeds.len(), &results)
    );
}

/// Both accountants on the points checked against dp_accounting (docs/learn.md).
fn dp() {
    let points = [
        (0.01, 1.1, 1000, 1e-5),
        (0.1, 1.0, 50, 1e-5),
        (0.001, 0.8, 10_000, 1e-6),
        (0.05, 2.0, 200, 1e-5),
        (0.1, 5.0, 100, 1e-3),
    ];
    for (q, s, t, d) in points {
        let start = std::time::Instant::now();
        let rdp = deai_learn::dp::rdp::epsilon(q, s, t, d);
        let mid = start.elapsed().as_secs_f64();
        let pld = deai_learn::dp::pld::epsilon(q, s, t, d).unwrap_or(f64::NAN);
        let end = start.elapsed().as_secs_f64() - mid;
        println!(
            "q={q} sigma={s} T={t} delta={d}: rdp {rdp:.10} ({mid:.3}s) pld {pld:.10} ({end:.3}s)"
        );
    }
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("digits") | None => digits(),
        Some("bench") => bench(),
        Some("fmnist") => fmnist(),
        Some("robust") => robust(),
        Some("dp") => dp(),
        Some(other) => eprintln!("unknown measurement {other:?} (digits, bench, fmnist)"),
    }
}
