//! `deai dp`: differential-privacy accounting.

use clap::Subcommand;
use deai_learn::dp::{pld, rdp};
use serde::Serialize;

/// Arguments of `deai dp`.
pub type Args = super::common::Group<Which>;

/// The `deai dp` tools.
#[derive(Debug, Subcommand)]
pub enum Which {
    /// ε of the Poisson-subsampled Gaussian after T steps, by RDP and by PLD.
    Epsilon(EpsilonArgs),
}

/// Arguments of `deai dp epsilon`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  deai dp epsilon --sampling-rate 0.01 --noise-multiplier 1.1 --steps 1000 --delta 1e-5")]
pub struct EpsilonArgs {
    /// Poisson sampling rate q.
    #[arg(long)]
    pub sampling_rate: f64,
    /// Noise multiplier σ (noise std / clipping norm).
    #[arg(long)]
    pub noise_multiplier: f64,
    /// Number of steps (rounds) T.
    #[arg(long)]
    pub steps: u64,
    /// Target δ.
    #[arg(long)]
    pub delta: f64,
    /// Print one JSON object instead of a human summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Epsilon {
    rdp: f64,
    pld: f64,
}

/// Runs `deai dp`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.which {
        Which::Epsilon(a) => epsilon(a),
    }
}

fn epsilon(a: EpsilonArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&a.sampling_rate),
        "--sampling-rate must be in [0, 1]"
    );
    anyhow::ensure!(
        a.noise_multiplier > 0.0 && a.noise_multiplier.is_finite(),
        "--noise-multiplier must be a number above 0 (without noise ε is infinite)"
    );
    anyhow::ensure!(a.delta > 0.0 && a.delta < 1.0, "--delta must be in (0, 1)");
    anyhow::ensure!(
        a.steps >= 1,
        "--steps must be at least 1 (no step spends no privacy)"
    );
    let rdp = rdp::epsilon(a.sampling_rate, a.noise_multiplier, a.steps, a.delta);
    anyhow::ensure!(
        rdp.is_finite(),
        "ε is not finite at σ = {}: the noise is too small to bound; raise --noise-multiplier",
        a.noise_multiplier
    );
    let pld = pld::epsilon(a.sampling_rate, a.noise_multiplier, a.steps, a.delta)
        .map_err(|e| anyhow::anyhow!("PLD accountant: {e}; RDP gives ε ≤ {rdp:.6}"))?;
    let out = Epsilon { rdp, pld };
    crate::output::emit(a.json, &out, |e| {
        println!(
            "ε at δ = {:e} after {} steps (q = {}, σ = {}):",
            a.delta, a.steps, a.sampling_rate, a.noise_multiplier
        );
        println!("  RDP {:.6}", e.rdp);
        println!("  PLD {:.6}", e.pld);
    })
}
