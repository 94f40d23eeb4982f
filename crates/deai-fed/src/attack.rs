//! Data owners that attack the model from inside a networked round.
//!
//! Threat model: an attacking owner is selected like any other and follows the wire protocol
//! (anything else is refused or dropped by SecAgg), but it chooses its input freely: nothing in
//! the protocol can check a masked vector, so it may skip clipping, scale, reverse or invent its
//! update, or train on poisoned data. These attackers still quantize honestly, so each value
//! they send is clamped to the quantizer's per-coordinate range (`C + 4·noise std`), except
//! [`OwnerAttack::CancelWeight`], which skips the quantizer (nothing checks an owner's words; the
//! coordinator leaves out group sums no honest owners could give, `strategy::plausible`). The
//! attackers of a task form one coalition that shares its members' honestly trained updates out of band each
//! round (what ALIE, IPM and the colluding attack need); it never sees an honest owner's update,
//! which secure aggregation hides from everyone.
//!
//! The robust rules see group means, not owners' updates, so one attacker moves its group's
//! mean by `1/n_g` of what it sends: the group size is the trade-off between privacy (larger
//! groups hide more) and robustness (smaller groups let a robust rule isolate more attackers).

use std::collections::BTreeMap;

use deai_learn::attack::{Attack, alie_z};
use deai_learn::data::Dataset;
use deai_learn::rng;
use ed25519_dalek::SigningKey;

use super::groups::RoundPlan;
use super::owner::{OwnerRound, local_update};
use super::{FedError, RoundInfo, TaskSpec};

/// How every attacker of a task behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OwnerAttack {
    /// One of `deai_learn`'s attacks; ALIE and IPM estimate the round's statistics from the
    /// coalition's own honest updates (the only updates an attacker can see).
    Learn(Attack),
    /// Every attacker sends the same update, the coalition's mean honest update reversed and
    /// boosted (`−4 · mean Δ`): a coordinated push that distance-based rules cannot single out
    /// as an outlier among the attackers.
    Colluding,
    /// Skips the quantizer: sends a zero update with a weight word that cancels its group's
    /// total weight modulo `2^b`, so the unmasked sum claims no contributors (before the
    /// coordinator checked sums, one such owner stopped every round it was in).
    CancelWeight,
}

/// Every name [`OwnerAttack::from_name`] accepts: `deai_learn`'s attacks, then `colluding` and
/// `cancel-weight`.
pub fn names() -> Vec<&'static str> {
    deai_learn::attack::NAMES
        .iter()
        .copied()
        .chain(["colluding", "cancel-weight"])
        .collect()
}

impl OwnerAttack {
    /// Parses a name from [`names`].
    pub fn from_name(name: &str) -> Result<Self, FedError> {
        match name {
            "colluding" => return Ok(Self::Colluding),
            "cancel-weight" => return Ok(Self::CancelWeight),
            _ => {}
        }
        Attack::from_name(name).map(Self::Learn).map_err(|_| {
            FedError::Attack(format!(
                "unknown attack {name:?}: expected one of {}",
                names().join(", ")
            ))
        })
    }

    /// Whether attackers train on flipped labels (and then send honestly).
    pub fn flips_labels(&self) -> bool {
        matches!(self, Self::Learn(Attack::LabelFlip))
    }

    /// Whether attackers submit an update of their own making ([`Self::coalition_updates`]),
    /// rather than poisoned data or raw words ([`Self::words`]).
    pub fn submits_update(&self) -> bool {
        !self.flips_labels() && *self != Self::CancelWeight
    }

    /// An attacker's local data as it trains on it.
    pub fn poison_data(&self, data: &Dataset) -> Dataset {
        let mut out = data.clone();
        if let Self::Learn(a) = self {
            out.labels
                .iter_mut()
                .for_each(|l| *l = a.flip_label(*l, data.classes));
        }
        out
    }

    /// What each attacker selected in a round submits (unclipped updates), given each one's
    /// honestly trained update `honest` (by dataset id), the round's `global` model and its
    /// `selected` count; `seed` draws the random attacks.
    pub fn coalition_updates(
        &self,
        global: &[f32],
        honest: &BTreeMap<u64, Vec<f32>>,
        selected: usize,
        seed: u64,
    ) -> BTreeMap<u64, Vec<f32>> {
        let mean = mean_update(global.len(), honest);
        let shared: Option<Vec<f32>> = match *self {
            Self::Colluding => Some(mean.iter().map(|m| -4.0 * m).collect()),
            Self::Learn(Attack::Ipm(eps)) => Some(mean.iter().map(|m| -eps * m).collect()),
            Self::Learn(Attack::Alie) => Some(alie(&mean, honest, selected)),
            Self::Learn(_) | Self::CancelWeight => None,
        };
        honest
            .iter()
            .map(|(&id, delta)| {
                let update = match (&shared, self) {
                    (Some(v), _) => v.clone(),
                    (None, Self::Learn(a)) => {
                        let mut params: Vec<f32> =
                            global.iter().zip(delta).map(|(g, d)| g + d).collect();
                        let mut rng = rng::stream("deai-fed/attack", &[seed, id]);
                        a.poison_own(global, &mut params, &mut rng);
                        params.iter().zip(global).map(|(p, g)| p - g).collect()
                    }
                    (None, _) => delta.clone(),
                };
                (id, update)
            })
            .collect()
    }

    /// An attacking owner's round when it attacks alone (a coalition of one, as an owner node
    /// configured to attack runs it): trains on poisoned data and sends honestly, or trains
    /// honestly and submits the poisoned update instead.
    #[allow(clippy::too_many_arguments)]
    pub fn start_alone(
        &self,
        spec: &TaskSpec,
        round: &RoundInfo,
        dataset_id: u64,
        local: &Dataset,
        global: &[f32],
        identity: &SigningKey,
        seed: [u8; 32],
    ) -> Result<OwnerRound, FedError> {
        if self.flips_labels() {
            let poisoned = self.poison_data(local);
            return OwnerRound::start(spec, round, dataset_id, &poisoned, global, identity, seed);
        }
        if let Some(words) = self.words(&RoundPlan::new(spec, round)?, dataset_id)? {
            return OwnerRound::start_with_words(
                spec, round, dataset_id, words, global, identity, seed,
            );
        }
        let kind = spec.model_kind()?;
        let (delta, _) = local_update(spec, &kind, local, global, &seed)?;
        let draw = u64::from_le_bytes(
            blake3::hash(&seed).as_bytes()[..8]
                .try_into()
                .unwrap_or_default(),
        );
        let update = self
            .coalition_updates(
                global,
                &BTreeMap::from([(dataset_id, delta)]),
                round.selected.len(),
                draw,
            )
            .remove(&dataset_id)
            .ok_or(FedError::Attack("the coalition produced no update".into()))?;
        OwnerRound::start_with_update(spec, round, dataset_id, update, global, identity, seed)
    }

    /// The raw words an attack that skips the quantizer sends (`None` for every other attack).
    pub fn words(&self, plan: &RoundPlan, dataset_id: u64) -> Result<Option<Vec<u32>>, FedError> {
        if *self != Self::CancelWeight {
            return Ok(None);
        }
        let &(group, _) = plan
            .position
            .get(&dataset_id)
            .ok_or(FedError::NotSelected(dataset_id))?;
        let config = &plan.groups[group].config;
        let modulus = 1u64 << config.modulus_bits;
        let others = plan.groups[group].members.len() as u64 - 1;
        let zero = plan.quantizer.levels() / 2;
        let mut words = vec![zero; plan.kind.num_params()];
        words.push(((modulus - others % modulus) % modulus) as u32);
        Ok(Some(words))
    }
}

fn mean_update(len: usize, updates: &BTreeMap<u64, Vec<f32>>) -> Vec<f32> {
    let mut sum = vec![0f64; len];
    for u in updates.values() {
        sum.iter_mut().zip(u).for_each(|(s, v)| *s += f64::from(*v));
    }
    let n = updates.len().max(1) as f64;
    sum.iter().map(|s| (s / n) as f32).collect()
}

/// ALIE (Baruch et al. 2019) from the coalition's sample: `μ − z·σ` per coordinate, `z` for a
/// round of `selected` owners of which the coalition holds `honest.len()`.
fn alie(mean: &[f32], honest: &BTreeMap<u64, Vec<f32>>, selected: usize) -> Vec<f32> {
    let z = alie_z(selected.max(honest.len()), honest.len());
    let count = honest.len().max(1) as f64;
    (0..mean.len())
        .map(|j| {
            let m = f64::from(mean[j]);
            let var = honest
                .values()
                .map(|u| (f64::from(u[j]) - m).powi(2))
                .sum::<f64>()
                / count;
            (m - z * var.sqrt()) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coalition() -> BTreeMap<u64, Vec<f32>> {
        BTreeMap::from([(1, vec![1.0, 0.0]), (2, vec![3.0, 2.0])])
    }

    #[test]
    fn own_update_attacks_rewrite_each_update_alone() {
        let global = [0.5, -0.5];
        let flipped = OwnerAttack::from_name("sign-flip")
            .expect("known")
            .coalition_updates(&global, &coalition(), 10, 0);
        assert_eq!(flipped[&1], vec![-4.0, 0.0]);
        assert_eq!(flipped[&2], vec![-12.0, -8.0]);
        let riders = OwnerAttack::from_name("free-rider")
            .expect("known")
            .coalition_updates(&global, &coalition(), 10, 0);
        assert!(riders.values().all(|u| u.iter().all(|v| *v == 0.0)));
    }

    #[test]
    fn coordinated_attacks_send_one_vector_from_the_coalitions_mean() {
        let global = [0.0, 0.0];
        let colluding = OwnerAttack::Colluding.coalition_updates(&global, &coalition(), 10, 0);
        assert_eq!(colluding[&1], vec![-8.0, -4.0]);
        assert_eq!(colluding[&1], colluding[&2]);
        // Mean (2, 1), std (1, 1): ALIE goes below the mean by z std, the same for both.
        let alie = OwnerAttack::from_name("alie")
            .expect("known")
            .coalition_updates(&global, &coalition(), 10, 0);
        let z = alie_z(10, 2) as f32;
        assert!(z > 0.0);
        assert!((alie[&1][0] - (2.0 - z)).abs() < 1e-6);
        assert!((alie[&2][1] - (1.0 - z)).abs() < 1e-6);
    }

    #[test]
    fn label_flip_poisons_data_not_updates() {
        let attack = OwnerAttack::from_name("label-flip").expect("known");
        assert!(attack.flips_labels());
        let data = Dataset::new("t", vec![0.0; 4], vec![0, 9], 2, 10).expect("valid");
        assert_eq!(attack.poison_data(&data).labels, vec![9, 0]);
        assert!(OwnerAttack::from_name("nonsense").is_err());
    }
}
