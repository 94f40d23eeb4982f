//! A coordinator that lies on purpose, for challenge tests and demos only: each [`Lie`] alters
//! one claim of a finished round's [`RoundOutcome`] before it is published and recorded, and
//! says which [`Claim`] a challenger must name to catch it.
//!
//! - [`Lie::GroupSum`]: the first completed group's sum in the aggregate blob is off by one in
//!   its first coordinate, and the model is still the honest step from the true sums (so the
//!   model and that group's score, recomputed from the recorded aggregate, are refuted too);
//! - [`Lie::Model`]: the new model's first weight is moved by 1.0;
//! - [`Lie::Score`]: the first scored dataset's score is one unit (10⁻⁶) off, the smallest lie
//!   a score can tell; catching it needs every validator to compute scores bit for bit.

use deai_ledger::{Claim, Digest, SCORE_SCALE};
use serde::{Deserialize, Serialize};

use super::record::{AggregateBlob, RecordLimits};
use super::{FedError, RoundOutcome, TaskSpec, weights};

/// Which claim of a round the coordinator lies about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lie {
    /// One group's unmasked sum.
    GroupSum,
    /// The new model.
    Model,
    /// One dataset's score.
    Score,
}

/// Alters `outcome` to tell `lie`; returns the claim that the lie makes false. Refused when the
/// round has nothing to lie about (no completed group, no scores).
pub fn tell(spec: &TaskSpec, outcome: &mut RoundOutcome, lie: Lie) -> Result<Claim, FedError> {
    match lie {
        Lie::GroupSum => {
            let limits = RecordLimits {
                datasets_max: super::spec::DATASETS_MAX,
                vector_len_max: u32::MAX,
            };
            let mut aggregate = AggregateBlob::decode(&outcome.aggregate.1, &limits)?;
            let (group, word) = aggregate
                .groups
                .iter_mut()
                .enumerate()
                .find_map(|(g, s)| Some((g, s.as_mut()?.first_mut()?)))
                .ok_or(FedError::Protocol("no completed group to lie about"))?;
            *word = if *word > 0 { *word - 1 } else { *word + 1 };
            let bytes = aggregate.encode();
            outcome.aggregate = (Digest::hash(&bytes), bytes);
            Ok(Claim::GroupSum {
                group: group as u32,
            })
        }
        Lie::Model => {
            let kind = spec.model_kind()?;
            let w = outcome
                .new_weights
                .first_mut()
                .ok_or(FedError::Protocol("an empty model"))?;
            *w += 1.0;
            let bytes = weights::encode(&kind, &outcome.new_weights)?;
            outcome.new_model = (weights::model_hash(&bytes), bytes);
            Ok(Claim::Model)
        }
        Lie::Score => {
            let score = outcome
                .scores
                .first_mut()
                .ok_or(FedError::Protocol("no score to lie about"))?;
            score.value = if score.value < SCORE_SCALE {
                score.value + 1
            } else {
                score.value - 1
            };
            let dataset = score.dataset;
            let group = outcome
                .groups
                .iter()
                .position(|g| g.survivors.contains(&dataset))
                .ok_or(FedError::Protocol("a scored dataset in no group"))?;
            Ok(Claim::Score {
                group: group as u32,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::tests::{baseline, owners, spec};
    use crate::strategy::ServerState;
    use crate::verify::RecordedRound;

    /// Each lie is caught by the bounded check a validator runs on the claim `tell` names, and
    /// the honest round holds on that claim.
    #[test]
    fn each_lie_is_refuted_on_the_claim_it_names() {
        let report = baseline();
        let info = &report.rounds[0].info;
        let (_, validation) = owners(10);
        let refuted = |outcome: &RoundOutcome, claim: &Claim| {
            let mut blobs = report.blobs.clone();
            for (h, b) in outcome.blobs() {
                blobs.insert(*h, b.clone());
            }
            let recorded = RecordedRound::from(&outcome.round_result(1, 1));
            let mut server = ServerState::new(&spec()).expect("builds");
            let fetch = |h: &Digest| blobs.get(h).cloned();
            let m = crate::check_claim(
                &spec(),
                info,
                &recorded,
                claim,
                &fetch,
                Some(&validation),
                &mut server,
            )
            .expect("checkable");
            !m.is_empty()
        };
        for lie in [Lie::GroupSum, Lie::Model, Lie::Score] {
            let honest = &report.rounds[0].outcome;
            let mut outcome = honest.clone();
            let claim = tell(&spec(), &mut outcome, lie).expect("a lie");
            assert!(!refuted(honest, &claim), "{claim:?} of the honest round");
            assert!(
                refuted(&outcome, &claim),
                "{lie:?} not refuted on {claim:?}"
            );
        }
    }
}
