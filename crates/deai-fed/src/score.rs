//! Contribution scores that work under secure aggregation: the coordinator never sees an
//! individual update, only each scoring group's sum, so a round scores groups and every
//! survivor of a group gets its group's score (docs/scoring.md argues the choice).
//!
//! `score_g = max(0, L(global) − L(global + server_lr · mean_g)) / L(global)`, clamped to
//! `[0, 1]` and rounded to the nearest 10⁻⁶ ([`SCORE_SCALE`]): the relative validation-loss
//! improvement the group's own mean update would have made alone. Losses are the mean
//! cross-entropy of [`deai_learn::model::evaluate`] (`f64` accumulation in sample order), so a
//! verifier running the same code on the same blobs gets the same integers.

use deai_learn::data::Dataset;
use deai_learn::model::{self, ModelKind};
use deai_ledger::{SCORE_SCALE, Score};
use deai_secagg::quant::Quantizer;

use super::{FedError, strategy};

/// The fixed-point score of a loss going from `base` to `after`.
pub fn score_fixed(base: f64, after: f64) -> u64 {
    if !(base.is_finite() && base > 0.0 && after.is_finite()) {
        return 0;
    }
    let relative = ((base - after) / base).clamp(0.0, 1.0);
    ((relative * SCORE_SCALE as f64).round() as u64).min(SCORE_SCALE)
}

/// Each group's score (`None` for an aborted group), in plan order.
pub fn group_scores(
    kind: &ModelKind,
    global: &[f32],
    quantizer: &Quantizer,
    sums: &[Option<Vec<u32>>],
    server_lr: f32,
    validation: &Dataset,
) -> Result<Vec<Option<u64>>, FedError> {
    kind.check_data(validation)
        .map_err(|e| FedError::Data(super::data::DataError::Digits(e.to_string())))?;
    let base = model::evaluate(kind, global, validation).loss;
    sums.iter()
        .map(|sum| {
            let Some(sum) = sum else { return Ok(None) };
            if !strategy::plausible(quantizer, sum) {
                return Ok(Some(0));
            }
            let (total, weight) = strategy::dequantize(quantizer, sum, global.len())?;
            let candidate = strategy::apply(global, server_lr, &total, weight);
            let after = model::evaluate(kind, &candidate, validation).loss;
            Ok(Some(score_fixed(base, after)))
        })
        .collect()
}

/// Ledger scores: every survivor of a completed group gets the group's score; ascending by
/// dataset. `survivors[g]` lists group `g`'s surviving dataset ids.
pub fn survivor_scores(survivors: &[Vec<u64>], scores: &[Option<u64>]) -> Vec<Score> {
    let mut out: Vec<Score> = survivors
        .iter()
        .zip(scores)
        .filter_map(|(ids, s)| s.map(|value| (ids, value)))
        .flat_map(|(ids, value)| ids.iter().map(move |&dataset| Score { dataset, value }))
        .collect();
    out.sort_unstable_by_key(|s| s.dataset);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_mapping_is_clamped_and_rounded() {
        assert_eq!(score_fixed(2.0, 1.0), 500_000);
        assert_eq!(score_fixed(2.0, 3.0), 0, "a worse loss scores 0");
        assert_eq!(score_fixed(2.0, -1.0), SCORE_SCALE, "clamped at 1");
        assert_eq!(score_fixed(0.0, 0.0), 0);
        assert_eq!(score_fixed(f64::NAN, 1.0), 0);
        assert_eq!(score_fixed(3.0, 2.0), 333_333);
        assert_eq!(score_fixed(3.0, 1.0), 666_667);
    }

    #[test]
    fn survivors_share_their_group_score() {
        let s = survivor_scores(
            &[vec![5, 9], vec![2], vec![1, 7]],
            &[Some(10), None, Some(3)],
        );
        let pairs: Vec<(u64, u64)> = s.iter().map(|s| (s.dataset, s.value)).collect();
        assert_eq!(pairs, [(1, 3), (5, 10), (7, 3), (9, 10)]);
    }
}
