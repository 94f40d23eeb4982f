//! Royalties: who earns from a model's paid queries, and how a claim is split.
//!
//! **Who.** An offer's contributors are fixed when it is created, from the model's lineage: the
//! datasets scored in the rounds of the model's task that closed at or before the model's
//! registration height (the rounds that produced it), each weighted by its scores summed over
//! those rounds. Scores are recorded per dataset ([`crate::Score`]), so no group split is needed.
//! Parent models are not followed: a fine-tuned model pays the data of its own task. The owner
//! paid is the dataset's owner at claim time; a revoked dataset still earns from models already
//! trained on it.
//!
//! **How much.** A claim paying `p` sends `royalty = ⌊p · royalty_bps / 10 000⌋` to the
//! contributors, dataset `i` getting `⌊royalty · wᵢ / Σw⌋` (exact integer arithmetic, ascending
//! dataset order); the rounding dust, and the whole royalty when the model has no scored
//! contributor, stays with the provider. So provider + Σ royalties == p exactly.
//!
//! **Floor.** An offer's `royalty_bps` must be at least the largest `royalty_bps_min` asked by
//! the consent policies of the datasets in the model's task filter (a superset of the
//! contributors, so the strictest owner who may have trained it is respected), as they stand
//! when the offer is created.

use super::{Contributor, State};
use crate::error::TxError;
use crate::params::BPS_SCALE;
use std::collections::BTreeMap;

/// `⌊a · b / c⌋` without a 256-bit product: with `a = q·c + r` it is `q·b + ⌊r·b / c⌋`, exact.
/// `None` if `c == 0` or the result (or `r·b`) passes `u128`.
pub(crate) fn share(a: u128, b: u128, c: u128) -> Option<u128> {
    if c == 0 {
        return None;
    }
    let (q, r) = (a / c, a % c);
    q.checked_mul(b)
        .zip(r.checked_mul(b))
        .and_then(|(x, y)| x.checked_add(y / c))
}

/// Splits `royalty` among `contributors` by weight: each dataset's share (zero shares left
/// out, ascending dataset order) and the dust the provider keeps.
pub(crate) fn split(royalty: u128, contributors: &[Contributor]) -> (Vec<(u64, u128)>, u128) {
    let total: u128 = contributors.iter().map(|c| c.weight).sum();
    if total == 0 {
        return (Vec::new(), royalty);
    }
    let mut paid = 0u128;
    let mut shares = Vec::with_capacity(contributors.len());
    for c in contributors {
        // weight ≤ total, so the share is at most the royalty: never None.
        let amount = share(royalty, c.weight, total).expect("a share of at most the royalty");
        if amount > 0 {
            paid += amount;
            shares.push((c.dataset, amount));
        }
    }
    (shares, royalty - paid)
}

/// The royalty of a claim paying `paid` at `royalty_bps`.
pub(crate) fn royalty_of(paid: u128, royalty_bps: u32) -> u128 {
    share(
        paid,
        u128::from(royalty_bps.min(BPS_SCALE)),
        u128::from(BPS_SCALE),
    )
    .expect("at most the paid amount")
}

impl State {
    /// The contributors of model `model` (see the module docs); empty for an unknown model or
    /// one with no scored round.
    pub fn contributors_of(&self, model: u64) -> Vec<Contributor> {
        let Some(m) = self.model(model) else {
            return Vec::new();
        };
        let Some(task) = self.task(m.task) else {
            return Vec::new();
        };
        let mut weights: BTreeMap<u64, u128> = BTreeMap::new();
        let producing = task
            .round_log
            .iter()
            .filter_map(|r| r.outcome.as_ref())
            .filter(|o| o.closed_height <= m.registered_height);
        for outcome in producing {
            for s in &outcome.scores {
                *weights.entry(s.dataset).or_insert(0) += u128::from(s.value);
            }
        }
        weights
            .into_iter()
            .filter(|&(_, weight)| weight > 0)
            .map(|(dataset, weight)| Contributor { dataset, weight })
            .collect()
    }

    /// The smallest royalty an offer of model `model` may set: the largest `royalty_bps_min` of
    /// the datasets in its task's filter, with the dataset asking it (`None` when none asks).
    pub fn royalty_floor(&self, model: u64) -> Option<(u64, u32)> {
        let task = self.task(self.model(model)?.task)?;
        task.datasets
            .iter()
            .filter_map(|&id| self.dataset(id).map(|d| (id, d.policy.royalty_bps_min)))
            .filter(|&(_, floor)| floor > 0)
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
    }

    /// Err unless `royalty_bps` meets the chain's `royalty_floor_bps` and
    /// [`Self::royalty_floor`] of `model`.
    pub(crate) fn require_royalty_floor(
        &self,
        model: u64,
        royalty_bps: u32,
    ) -> Result<(), TxError> {
        let chain_floor = self.params.royalty_floor_bps;
        if royalty_bps < chain_floor {
            return Err(TxError::InvalidField {
                field: "royalty_bps".into(),
                reason: format!(
                    "{royalty_bps} is below the chain's royalty_floor_bps {chain_floor} (set by \
                     governance)"
                ),
            });
        }
        match self.royalty_floor(model) {
            Some((dataset, floor)) if royalty_bps < floor => Err(TxError::RoyaltyBelowFloor {
                model,
                dataset,
                floor,
                royalty_bps,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(dataset: u64, weight: u128) -> Contributor {
        Contributor { dataset, weight }
    }

    #[test]
    fn split_by_weight_with_dust_to_the_provider() {
        let (shares, dust) = split(100, &[c(1, 1), c(2, 2)]);
        assert_eq!(shares, vec![(1, 33), (2, 66)]);
        assert_eq!(dust, 1);
        let (shares, dust) = split(100, &[]);
        assert!(shares.is_empty());
        assert_eq!(dust, 100);
        // A share that rounds to zero is left out, its part is dust.
        let (shares, dust) = split(2, &[c(1, 1), c(2, 1_000)]);
        assert_eq!(shares, vec![(2, 1)]);
        assert_eq!(dust, 1);
        assert_eq!(royalty_of(1_000, 250), 25);
        assert_eq!(royalty_of(u128::MAX, BPS_SCALE), u128::MAX);
        assert_eq!(royalty_of(39, 250), 0);
    }

    proptest! {
        #[test]
        fn split_conserves_and_is_proportional(
            royalty in any::<u128>(),
            weights in prop::collection::vec(0u128..1u128 << 40, 0..20),
        ) {
            let cs: Vec<Contributor> =
                weights.iter().enumerate().map(|(i, &w)| c(i as u64, w)).collect();
            let (shares, dust) = split(royalty, &cs);
            let paid: u128 = shares.iter().map(|s| s.1).sum();
            prop_assert_eq!(paid + dust, royalty);
            let total: u128 = weights.iter().sum();
            if total > 0 {
                // Each share is the exact floor, so the dust is below one unit per contributor.
                prop_assert!(dust < cs.len() as u128);
            }
        }

        #[test]
        fn share_is_the_exact_floor(a in 0u128..1u128 << 80, c in 1u128..1u128 << 40, frac in 0u128..=1000) {
            let b = c * frac / 1000;
            prop_assert_eq!(share(a, b, c), Some(a * b / c));
        }

        #[test]
        fn huge_amounts_do_not_overflow(a in (u128::MAX >> 1)..u128::MAX, c in 1u128..1u128 << 40) {
            let got = share(a, c / 2, c).expect("fits");
            prop_assert!(got <= a / 2 + 1);
            prop_assert_eq!(share(a, c, c), Some(a));
        }
    }
}
