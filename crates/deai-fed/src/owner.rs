//! The data owner's side of one round, sans-IO: train on local data, clip, noise, quantize, and
//! run the group's SecAgg+ client. The owner's data and its unmasked update never leave this
//! type; what it emits are SecAgg messages (its update only ever masked).
//!
//! Use (the sans-IO idiom of this crate and of `deai-secagg`: `handle_*` in, `poll_transmit`
//! out): after [`OwnerRound::start`], send what [`OwnerRound::poll_transmit`] gives (the key
//! advert); then pass each message the coordinator sends to [`OwnerRound::handle_server_msg`]
//! and send what `poll_transmit` gives after it (three server messages in all).
//!
//! # Privacy of the update
//!
//! `Δ = local − global` is clipped to L2 norm `C`, then every coordinate gets
//! `N(0, (σC)²/m)` noise, `m` the fewest survivors any completed group sum has
//! ([`crate::groups`]): each group sum, hence the round's total, carries noise of std
//! `≥ σC`. This is distributed DP: it relies on at least `m` honest owners' noise being in each
//! released sum, which SecAgg's threshold guarantees for completed groups. Clamping to the
//! quantizer's range (`C + 4·std`) and stochastic rounding happen after the noise, on the
//! owner's side; both are mild (clamping touches a coordinate with probability `< 10⁻⁴`) but
//! mean the released sum is not exactly a Gaussian mechanism (docs/scoring.md lists this).

use deai_learn::data::Dataset;
use deai_learn::model::{ModelKind, optim};
use deai_learn::params;
use deai_ledger::Digest;
use deai_secagg::client::{Client, ClientPhase};
use deai_secagg::msg::{ServerBody, ServerMsg};
use ed25519_dalek::SigningKey;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rand_distr::{Distribution, Normal};

use super::groups::RoundPlan;
use super::{FedError, RoundInfo, TaskSpec, weights};

/// Checks a global-model blob against the round's recorded hash and decodes it.
pub fn load_global(spec: &TaskSpec, info: &RoundInfo, bytes: &[u8]) -> Result<Vec<f32>, FedError> {
    let got = weights::model_hash(bytes);
    if got != info.global_model {
        return Err(FedError::ModelHash {
            expected: info.global_model,
            got,
        });
    }
    Ok(weights::decode(&spec.model_kind()?, bytes)?)
}

/// Err unless `global` has the model's length and only finite values.
pub(crate) fn check_global(expected: usize, global: &[f32]) -> Result<(), FedError> {
    if global.len() != expected {
        return Err(FedError::GlobalLength {
            expected,
            got: global.len(),
        });
    }
    match global.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(FedError::GlobalNonFinite { index }),
        None => Ok(()),
    }
}

fn rng(context: &str, seed: &[u8; 32]) -> ChaCha20Rng {
    ChaCha20Rng::from_seed(blake3::derive_key(context, seed))
}

/// Statistics of the owner's local step (nothing here is sent anywhere).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalStats {
    /// Mean batch loss of the last local epoch.
    pub train_loss: f64,
    /// L2 norm of the update before clipping.
    pub update_norm: f64,
    /// Whether clipping scaled the update down.
    pub clipped: bool,
}

/// One owner's part of one round.
pub struct OwnerRound {
    client: Client,
    limits: deai_secagg::msg::Limits,
    rng: ChaCha20Rng,
    group: usize,
    /// Survivors its group must keep before this owner signs the survivor list.
    survivors_required: u32,
    stats: LocalStats,
}

impl OwnerRound {
    /// Trains, privatizes and masks this owner's update; the key advert is then the first
    /// message [`Self::poll_transmit`] gives. `seed` drives local shuffling, noise, rounding and SecAgg keys: fresh secret
    /// randomness for every round (the owner's own, never shared).
    pub fn start(
        spec: &TaskSpec,
        round: &RoundInfo,
        dataset_id: u64,
        local: &Dataset,
        global: &[f32],
        identity: &SigningKey,
        seed: [u8; 32],
    ) -> Result<Self, FedError> {
        let plan = Self::plan(spec, round, dataset_id, identity, global)?;
        let (delta, train_loss) = local_update(spec, &plan.kind, local, global, &seed)?;
        let update_norm = params::l2_norm(&delta);
        let mut delta = delta;
        let clipped = params::clip_to_norm(&mut delta, f64::from(spec.clip_norm)) < 1.0;
        let stats = LocalStats {
            train_loss,
            update_norm,
            clipped,
        };
        Self::submit(&plan, dataset_id, identity, delta, stats, &seed)
    }

    /// Submits `update` as this owner's contribution without clipping it: what a malicious owner
    /// can do (see [`crate::attack`]), since nothing in the protocol can check the masked input.
    /// Noise, the quantizer's per-coordinate clamp and secure aggregation apply as for an
    /// honest owner, because they happen on the owner's side and any other input is equivalent
    /// to an update chosen to produce it.
    pub fn start_with_update(
        spec: &TaskSpec,
        round: &RoundInfo,
        dataset_id: u64,
        update: Vec<f32>,
        global: &[f32],
        identity: &SigningKey,
        seed: [u8; 32],
    ) -> Result<Self, FedError> {
        let plan = Self::plan(spec, round, dataset_id, identity, global)?;
        check_global(plan.kind.num_params(), &update)?;
        let update_norm = params::l2_norm(&update);
        let stats = LocalStats {
            train_loss: f64::NAN,
            update_norm,
            clipped: false,
        };
        Self::submit(&plan, dataset_id, identity, update, stats, &seed)
    }

    /// Submits raw quantized `words` (the update's levels and the weight word last) without any
    /// check of their range: what a malicious owner that skips the quantizer can send. Only
    /// tests of the coordinator's defences use it.
    pub fn start_with_words(
        spec: &TaskSpec,
        round: &RoundInfo,
        dataset_id: u64,
        words: Vec<u32>,
        global: &[f32],
        identity: &SigningKey,
        seed: [u8; 32],
    ) -> Result<Self, FedError> {
        let plan = Self::plan(spec, round, dataset_id, identity, global)?;
        let stats = LocalStats {
            train_loss: f64::NAN,
            update_norm: f64::NAN,
            clipped: false,
        };
        Self::mask(&plan, dataset_id, identity, words, stats, &seed)
    }

    /// The round's plan, after checking this owner is selected under `identity`.
    fn plan(
        spec: &TaskSpec,
        round: &RoundInfo,
        dataset_id: u64,
        identity: &SigningKey,
        global: &[f32],
    ) -> Result<RoundPlan, FedError> {
        let plan = RoundPlan::new(spec, round)?;
        if !plan.position.contains_key(&dataset_id) {
            return Err(FedError::NotSelected(dataset_id));
        }
        if round.identities.get(&dataset_id) != Some(&identity.verifying_key()) {
            return Err(FedError::WrongIdentity(dataset_id));
        }
        check_global(plan.kind.num_params(), global)?;
        Ok(plan)
    }

    /// Noises, quantizes and masks `delta` for this owner's group.
    fn submit(
        plan: &RoundPlan,
        dataset_id: u64,
        identity: &SigningKey,
        mut delta: Vec<f32>,
        stats: LocalStats,
        seed: &[u8; 32],
    ) -> Result<Self, FedError> {
        let mut noise_rng = rng("deai-node fed owner noise v1", seed);
        let normal =
            Normal::new(0.0, plan.noise_std).map_err(|_| FedError::Noise(plan.noise_std))?;
        for v in &mut delta {
            *v = (f64::from(*v) + normal.sample(&mut noise_rng)) as f32;
        }
        let words = plan.quantizer.quantize(&delta, 1, 1, &mut noise_rng)?;
        Self::mask(plan, dataset_id, identity, words, stats, seed)
    }

    /// Runs the group's SecAgg+ client on `words`.
    fn mask(
        plan: &RoundPlan,
        dataset_id: u64,
        identity: &SigningKey,
        words: Vec<u32>,
        stats: LocalStats,
        seed: &[u8; 32],
    ) -> Result<Self, FedError> {
        let &(group, me) = plan
            .position
            .get(&dataset_id)
            .ok_or(FedError::NotSelected(dataset_id))?;
        let mut secagg_rng = rng("deai-node fed owner secagg v1", seed);
        let config = plan.groups[group].config.clone();
        let limits = config.limits();
        let client = Client::new(config, me, identity, words, &mut secagg_rng)?;
        Ok(Self {
            client,
            limits,
            rng: secagg_rng,
            group,
            survivors_required: plan.groups[group].survivors_required,
            stats,
        })
    }

    /// Handles one message from the group's SecAgg server; the reply, if any, is then what
    /// [`Self::poll_transmit`] gives. An error aborts this owner's round (it sends nothing more).
    pub fn handle_server_msg(&mut self, server_msg: &[u8]) -> Result<(), FedError> {
        let msg = ServerMsg::decode(server_msg, &self.limits).map_err(FedError::ServerMessage)?;
        // Fewer survivors than the threat model allows would leave too few honest members'
        // noise in the group sum: refuse to sign, so the group cannot be unmasked.
        if let ServerBody::Consistency(survivors) = &msg.body
            && survivors.len() < self.survivors_required as usize
        {
            return Err(FedError::TooFewSurvivors {
                have: survivors.len(),
                need: self.survivors_required,
            });
        }
        self.client.handle_server_msg(msg, &mut self.rng)?;
        Ok(())
    }

    /// The next message to send to the group's server, encoded.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.client.poll_transmit().map(|m| m.encode())
    }

    /// The group this owner's update is summed in (plan order).
    pub fn group(&self) -> usize {
        self.group
    }

    /// Where the SecAgg client is.
    pub fn phase(&self) -> ClientPhase {
        self.client.phase()
    }

    /// Local statistics (kept private by the owner unless it chooses to publish them).
    pub fn stats(&self) -> LocalStats {
        self.stats
    }
}

/// Trains on `local` from `global` (the round's local step, with the owner's own shuffling
/// stream drawn from `seed`): the update `local − global`, unclipped, and the last epoch's mean
/// loss.
pub fn local_update(
    spec: &TaskSpec,
    kind: &ModelKind,
    local: &Dataset,
    global: &[f32],
    seed: &[u8; 32],
) -> Result<(Vec<f32>, f64), FedError> {
    if local.is_empty() {
        return Err(FedError::LocalData("the local dataset is empty".into()));
    }
    kind.check_data(local)
        .map_err(|e| FedError::LocalData(e.to_string()))?;
    let mut train_rng = rng("deai-node fed owner train v1", seed);
    let trained = optim::train(kind, global, local, &spec.local_train()?, &mut train_rng)
        .map_err(|e| FedError::LocalData(e.to_string()))?;
    let delta = params::sub(&trained.params, global);
    if let Some(index) = delta.iter().position(|v| !v.is_finite()) {
        return Err(FedError::Diverged { index });
    }
    Ok((delta, trained.loss))
}

/// A round seed derived from a secret: distinct per task, round and dataset. Only the
/// deterministic in-process harness uses it (reproducible tests); a real owner node draws every
/// round's seed from the OS RNG, so a stolen long-term key recovers no past round.
pub fn round_seed(secret: &[u8; 32], info: &RoundInfo, dataset: u64) -> [u8; 32] {
    let mut material = Vec::with_capacity(32 + 8 + 4 + 8 + 32);
    material.extend_from_slice(secret);
    material.extend_from_slice(&info.task.to_be_bytes());
    material.extend_from_slice(&info.round.to_be_bytes());
    material.extend_from_slice(&dataset.to_be_bytes());
    material.extend_from_slice(&info.seed.0);
    blake3::derive_key("deai-node fed owner round seed v1", &material)
}

/// Hash helper for tests and drivers: the digest of a global model's weights.
pub fn weights_hash(spec: &TaskSpec, global: &[f32]) -> Result<Digest, FedError> {
    Ok(weights::model_hash(&weights::encode(
        &spec.model_kind()?,
        global,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::tests::{first_round, owners, spec};

    #[test]
    fn bad_inputs_are_refused_by_name() {
        let spec = spec();
        let (owners, _) = owners(10);
        let (info, global) = first_round(&spec, &owners);
        let me = owners
            .iter()
            .find(|o| info.selected.contains(&o.dataset))
            .expect("someone is selected");
        let start = |id: u64, global: &[f32], key: &SigningKey| {
            OwnerRound::start(&spec, &info, id, &me.data, global, key, [1; 32]).map(|_| ())
        };
        assert!(start(me.dataset, &global, &me.key).is_ok());
        let mut nan = global.clone();
        nan[7] = f32::NAN;
        assert!(matches!(
            start(me.dataset, &nan, &me.key),
            Err(FedError::GlobalNonFinite { index: 7 })
        ));
        assert!(matches!(
            start(me.dataset, &global[..10], &me.key),
            Err(FedError::GlobalLength { got: 10, .. })
        ));
        let outsider = owners.iter().find(|o| !info.selected.contains(&o.dataset));
        let outsider = outsider.expect("8 of 10 selected");
        assert!(matches!(
            start(outsider.dataset, &global, &outsider.key),
            Err(FedError::NotSelected(_))
        ));
        assert!(matches!(
            start(me.dataset, &global, &outsider.key),
            Err(FedError::WrongIdentity(_))
        ));

        let mut owner = OwnerRound::start(
            &spec, &info, me.dataset, &me.data, &global, &me.key, [1; 32],
        )
        .expect("starts");
        assert!(owner.poll_transmit().is_some(), "the advert is queued");
        assert!(matches!(
            owner.handle_server_msg(b"junk"),
            Err(FedError::ServerMessage(_))
        ));
        assert!(owner.stats().update_norm > 0.0);
    }

    #[test]
    fn the_global_blob_must_match_the_round() {
        let spec = spec();
        let (owners, _) = owners(10);
        let (info, global) = first_round(&spec, &owners);
        let kind = spec.model_kind().expect("valid");
        let bytes = weights::encode(&kind, &global).expect("encodes");
        assert_eq!(load_global(&spec, &info, &bytes).expect("matches"), global);
        let mut other = global.clone();
        other[0] += 1.0;
        let bytes = weights::encode(&kind, &other).expect("encodes");
        assert!(matches!(
            load_global(&spec, &info, &bytes),
            Err(FedError::ModelHash { .. })
        ));
    }

    #[test]
    fn round_seeds_differ_per_dataset_round_and_secret() {
        let spec = spec();
        let (owners, _) = owners(10);
        let (info, _) = first_round(&spec, &owners);
        let a = round_seed(&[1; 32], &info, 5);
        assert_ne!(a, round_seed(&[2; 32], &info, 5));
        assert_ne!(a, round_seed(&[1; 32], &info, 6));
        let next = RoundInfo {
            round: 2,
            ..info.clone()
        };
        assert_ne!(a, round_seed(&[1; 32], &next, 5));
    }
}
