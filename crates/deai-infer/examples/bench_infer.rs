//! Prints `deai bench infer`'s in-process figures as JSON: engine against burn throughput, and
//! float against quantized accuracy.
//!
//! `cargo run -p deai-infer --example bench_infer [-- --no-fashion] [--shakespeare] [--skip-accuracy] [--skip-throughput]`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let fashion = !args.iter().any(|a| a == "--no-fashion");
    if !args.iter().any(|a| a == "--skip-throughput") {
        let throughput = deai_infer::bench::engine_qps(3, fashion)?;
        println!("{}", serde_json::to_string_pretty(&throughput)?);
    }
    if !args.iter().any(|a| a == "--skip-accuracy") {
        let cfg = deai_infer::bench::AccuracyConfig {
            fashion,
            shakespeare: args.iter().any(|a| a == "--shakespeare"),
            ..Default::default()
        };
        let t = std::time::Instant::now();
        let rows = deai_infer::bench::accuracy_report(&cfg)?;
        println!("{}", serde_json::to_string_pretty(&rows)?);
        eprintln!("accuracy report: {:.1} s", t.elapsed().as_secs_f64());
    }
    Ok(())
}
