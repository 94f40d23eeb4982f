//! Contribution scores that work under secure aggregation: the coordinator never sees an
//! individual update, only each scoring group's sum, so a round scores groups and every
//! survivor of a group gets its group's score (docs/scoring.md argues the choice).
//!
//! `score_g = max(0, L(global) − L(global + server_lr · mean_g)) / L(global)`, clamped to
//! `[0, 1]` and rounded to the nearest 10⁻⁶ ([`SCORE_SCALE`]): the relative validation-loss
//! improvement the group's own mean update would have made alone. `L` is the validation
//! cross-entropy computed in integers ([`crate::int_loss`]), and the ratio is an integer
//! division, so a score can decide a slash: every validator computes the same integer on any
//! machine. The candidate model is `f32` elementwise arithmetic ([`strategy::apply`]), which
//! IEEE 754 makes exact-to-the-bit everywhere (no sums, no library functions).

use deai_learn::data::Dataset;
use deai_learn::model::ModelKind;
use deai_ledger::{SCORE_SCALE, Score};
use deai_secagg::quant::Quantizer;

use super::int_loss::{self, FixedData};
use super::{FedError, strategy};

/// The fixed-point score of a summed loss going from `base` to `after`: the relative
/// improvement, rounded half up, in `0..=SCORE_SCALE`.
pub fn score_fixed(base: u128, after: u128) -> u64 {
    if base == 0 || after >= base {
        return 0;
    }
    let gain = (base - after) * u128::from(SCORE_SCALE);
    ((2 * gain + base) / (2 * base)).min(u128::from(SCORE_SCALE)) as u64
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
    let data = FixedData::new(validation);
    let base = int_loss::loss_sum(kind, global, &data)?;
    sums.iter()
        .map(|sum| {
            let Some(sum) = sum else { return Ok(None) };
            if !strategy::plausible(quantizer, sum) {
                return Ok(Some(0));
            }
            let (total, weight) = strategy::dequantize(quantizer, sum, global.len())?;
            let candidate = strategy::apply(global, server_lr, &total, weight);
            let after = int_loss::loss_sum(kind, &candidate, &data)?;
            Ok(Some(score_fixed(base, after)))
        })
        .collect()
}

/// Each group's score as a `RoundResult` recorded it (the smallest recorded score of its
/// members; `None` when none has one, as for an aborted group), in plan order: what a
/// `screened-` rule screens by when it steps through a recorded round.
pub fn recorded_group_scores<'a>(
    groups: impl IntoIterator<Item = &'a [u64]>,
    recorded: &[Score],
) -> Vec<Option<u64>> {
    let by_dataset: std::collections::BTreeMap<u64, u64> =
        recorded.iter().map(|s| (s.dataset, s.value)).collect();
    groups
        .into_iter()
        .map(|members| {
            members
                .iter()
                .filter_map(|id| by_dataset.get(id))
                .min()
                .copied()
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
        assert_eq!(score_fixed(2, 1), 500_000);
        assert_eq!(score_fixed(2, 3), 0, "a worse loss scores 0");
        assert_eq!(score_fixed(2, 0), SCORE_SCALE, "a perfect model scores 1");
        assert_eq!(score_fixed(0, 0), 0);
        assert_eq!(score_fixed(3, 2), 333_333);
        assert_eq!(score_fixed(3, 1), 666_667, "half up");
        assert_eq!(score_fixed(u128::from(u64::MAX), 1), SCORE_SCALE);
    }

    #[test]
    fn a_groups_recorded_score_is_its_members_smallest() {
        let score = |dataset, value| Score { dataset, value };
        let recorded = [score(1, 5), score(2, 3), score(4, 0), score(9, 8)];
        let groups: [&[u64]; 3] = [&[1, 2], &[3, 4], &[5, 6]];
        assert_eq!(
            recorded_group_scores(groups, &recorded),
            [Some(3), Some(0), None],
            "a group is kept only if no member's recorded score is 0; one without scores is none"
        );
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
