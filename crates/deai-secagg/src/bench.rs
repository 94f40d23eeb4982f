//! One measured round at threat-model parameters: what `deai bench secagg` prints.

use serde::Serialize;

use crate::params::{Adversary, Params, ParamsError};
use crate::sim::{SimError, SimSpec, run_round};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BenchSpec {
    /// Clients at the start of the round.
    pub clients: u32,
    /// Coordinates per update.
    pub dim: u32,
    /// Fraction of clients that drop after sharing their keys.
    pub dropout: f64,
    /// Fraction of clients assumed corrupt (for `k` and `t`).
    pub corrupt: f64,
    /// Server model (for `k` and `t`).
    pub adversary: Adversary,
    /// Seed of the whole round.
    pub seed: u64,
}

/// The measured round.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Clients at the start.
    pub clients: u32,
    /// Coordinates per update.
    pub dim: u32,
    /// Dropout fraction (clients dropped after sharing).
    pub dropout: f64,
    /// Corrupt fraction of the threat model.
    pub corrupt: f64,
    /// Server model.
    pub adversary: Adversary,
    /// Graph degree.
    pub k: u32,
    /// Shamir threshold.
    pub t: u32,
    /// Arithmetic modulus bits.
    pub modulus_bits: u32,
    /// Clients whose input is in the sum.
    pub survivors: usize,
    /// Rayon threads used.
    pub threads: usize,
    /// Wall time of all five steps (the consistency step included), all clients and the server.
    pub round_ms: f64,
    /// Median per-client time over its five steps.
    pub client_ms_p50: f64,
    /// Slowest client.
    pub client_ms_max: f64,
    /// Server time over all steps, unmasking included.
    pub server_ms: f64,
    /// The same sum without protection.
    pub plain_sum_ms: f64,
    /// The unmasked sum equals the survivors' quantized inputs summed, bit for bit.
    pub exact: bool,
    /// Mean bytes a surviving client sends.
    pub bytes_up_per_client: f64,
    /// `bytes_up_per_client` over the bytes of its plain quantized vector (4 per coordinate).
    pub expansion: f64,
    /// Largest error of the dequantized mean, and its documented bound.
    pub mean_error_max: f64,
    /// One quantization step.
    pub mean_error_bound: f64,
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// No parameters for this threat model.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// The round failed.
    #[error(transparent)]
    Sim(#[from] SimError),
}

/// Runs one round with `k` and `t` from the threat model (σ = 40, η = 20).
pub fn bench(spec: &BenchSpec) -> Result<BenchReport, BenchError> {
    let params = Params::for_threat_model(
        spec.clients,
        spec.corrupt,
        spec.dropout,
        40,
        20,
        spec.adversary,
    )?;
    let report = run_round(&SimSpec::with_dropout(
        params,
        spec.dim,
        spec.dropout,
        spec.seed,
    ))?;
    let mut client_ms = report.client_ms.clone();
    client_ms.sort_by(f64::total_cmp);
    let bytes_up = report.bytes_up.iter().sum::<u64>() as f64 / report.bytes_up.len().max(1) as f64;
    Ok(BenchReport {
        clients: spec.clients,
        dim: spec.dim,
        dropout: spec.dropout,
        corrupt: spec.corrupt,
        adversary: spec.adversary,
        k: params.degree,
        t: params.threshold,
        modulus_bits: report.modulus_bits,
        survivors: report.record.survivors.len(),
        threads: rayon::current_num_threads(),
        round_ms: report.round_ms,
        client_ms_p50: client_ms.get(client_ms.len() / 2).copied().unwrap_or(0.0),
        client_ms_max: client_ms.last().copied().unwrap_or(0.0),
        server_ms: report.server_ms,
        plain_sum_ms: report.plain_sum_ms,
        exact: report.exact,
        bytes_up_per_client: bytes_up,
        expansion: bytes_up / (4.0 * f64::from(spec.dim)),
        mean_error_max: report.mean_error_max,
        mean_error_bound: report.mean_error_bound,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bench_is_exact_and_compact() {
        let spec = BenchSpec {
            clients: 30,
            dim: 2000,
            dropout: 0.1,
            corrupt: 0.05,
            adversary: Adversary::SemiHonest,
            seed: 3,
        };
        let r = bench(&spec).expect("feasible");
        assert!(r.exact);
        assert_eq!(r.survivors, 27);
        assert!(r.expansion < 1.5, "expansion {}", r.expansion);
        assert!(r.mean_error_max <= r.mean_error_bound);
    }
}
