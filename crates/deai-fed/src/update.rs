//! The aggregation strategy, shared by the coordinator and the verifier: unweighted mean of the
//! survivors' (clipped, noised, quantized) updates, applied with the server learning rate.
//!
//! `new = global + server_lr · (Σ_g dequantized sum_g) / (Σ_g survivors_g)`, accumulated in
//! `f64` in group order and rounded to `f32` once, so the same sums give the same bytes.

use deai_secagg::quant::Quantizer;

use super::FedError;

/// A group's dequantized sum of updates and its number of contributors (the weight word).
pub fn dequantize(
    quantizer: &Quantizer,
    sum: &[u32],
    params: usize,
) -> Result<(Vec<f64>, u64), FedError> {
    if sum.len() != params + 1 {
        return Err(FedError::AggregateLength {
            expected: params + 1,
            got: sum.len(),
        });
    }
    Ok(quantizer.dequantize_sum(sum)?)
}

/// `global + server_lr · total / weight`, in `f64` then rounded to `f32`.
pub fn apply(global: &[f32], server_lr: f32, total: &[f64], weight: u64) -> Vec<f32> {
    let scale = f64::from(server_lr) / weight.max(1) as f64;
    global
        .iter()
        .zip(total)
        .map(|(&g, &t)| (f64::from(g) + scale * t) as f32)
        .collect()
}

/// The new global model from the groups' sums (`None` = aborted group); the global model
/// itself when no group completed.
pub fn new_weights(
    global: &[f32],
    quantizer: &Quantizer,
    sums: &[Option<Vec<u32>>],
    server_lr: f32,
) -> Result<Vec<f32>, FedError> {
    let mut total = vec![0f64; global.len()];
    let mut weight = 0u64;
    for sum in sums.iter().flatten() {
        let (s, w) = dequantize(quantizer, sum, global.len())?;
        total.iter_mut().zip(&s).for_each(|(t, v)| *t += v);
        weight += w;
    }
    if weight == 0 {
        return Ok(global.to_vec());
    }
    Ok(apply(global, server_lr, &total, weight))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_of_group_sums_is_applied_with_the_server_rate() {
        let q = Quantizer::new(1.0, 8).expect("valid");
        // Level of value v with weight 1: (v + 1) · 255 / 2; 0.0 is not a level, ±1 are.
        let level = |v: f64| ((v + 1.0) * 255.0 / 2.0).round() as u32;
        let g1 = vec![level(1.0) + level(-1.0), level(1.0) * 2, 2];
        let g2 = vec![level(1.0), level(-1.0), 1];
        let global = [0.5f32, 0.5];
        let w = new_weights(&global, &q, &[Some(g1), None, Some(g2)], 0.5).expect("ok");
        // Sums: [0 + 1, 2 - 1] over 3 contributors → mean [1/3, 1/3], × 0.5.
        assert!((w[0] - (0.5 + 0.5 / 3.0)).abs() < 1e-6, "{w:?}");
        assert!((w[1] - (0.5 + 0.5 / 3.0)).abs() < 1e-6, "{w:?}");
        assert_eq!(new_weights(&global, &q, &[None], 1.0).expect("ok"), global);
        assert!(matches!(
            new_weights(&global, &q, &[Some(vec![1, 1])], 1.0),
            Err(FedError::AggregateLength {
                expected: 3,
                got: 2
            })
        ));
    }
}
