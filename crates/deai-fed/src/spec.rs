//! A training task's specification: what `TaskCreate.model_spec` commits to.
//!
//! The spec is JSON with a fixed field order; [`TaskSpec::canonical_bytes`] is that JSON and
//! [`TaskSpec::hash`] its BLAKE3, so every node that holds the spec agrees on the digest the
//! ledger records. Unknown fields are refused: a field a node does not understand would change
//! the training without changing what it checks.
//!
//! The privacy schedule derived from it (what `TaskCreate.epsilon_schedule` records) is
//! [`crate::privacy::schedule`].

use deai_learn::model::ModelKind;
use deai_learn::model::optim::{LocalTrain, Optimizer};
use deai_ledger::{DELTA_SCALE, Digest};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Largest number of rounds a spec may ask for (bounds the accountant's work).
pub const ROUNDS_MAX: u32 = 10_000;
/// Largest group or selection size (the ledger's own limit is lower by default).
pub const DATASETS_MAX: u32 = 100_000;

/// What a task trains and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Data set family every owner's data and the validation set come from (`"digits"` or
    /// `"fashion-mnist"`: a [`crate::schema::Schema::family`]).
    pub dataset: String,
    /// Architecture: `"mlp"` or `"logreg"`.
    pub model: String,
    /// Seed of the initial global model.
    pub init_seed: u64,
    /// Training rounds.
    pub rounds: u32,
    /// Datasets selected per round.
    pub datasets_per_round: u32,
    /// Local passes over an owner's data per round.
    pub local_epochs: u32,
    /// Local mini-batch size.
    pub batch: u32,
    /// Local SGD learning rate.
    pub lr: f32,
    /// Server learning rate applied to the mean update.
    pub server_lr: f32,
    /// L2 bound `C` each owner clips its update to.
    pub clip_norm: f32,
    /// Noise multiplier `σ`: every released sum carries Gaussian noise of std at least `σ·C`.
    pub noise_multiplier: f64,
    /// Quantization levels per coordinate are `0..2^quant_level_bits`.
    pub quant_level_bits: u32,
    /// Smallest scoring group (each group runs its own secure aggregation).
    pub group_size_min: u32,
    /// Target δ of the whole task.
    pub delta: f64,
    /// The server's aggregation rule, by [`deai_learn::strategy::build`]'s names (see
    /// [`crate::strategy`]). Left out of the JSON when it is `fedavg`, so specs written before
    /// the field existed keep their hash.
    #[serde(default = "fedavg", skip_serializing_if = "is_fedavg")]
    pub strategy: String,
    /// Faulty scoring groups per round the robust rules assume (Krum's and Bulyan's `f`, the
    /// trimmed mean's cut). Left out of the JSON when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub byzantine_groups: u32,
}

fn fedavg() -> String {
    "fedavg".into()
}

fn is_fedavg(name: &str) -> bool {
    name == "fedavg"
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Why a spec is unusable.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SpecError {
    /// The spec is not valid JSON for [`TaskSpec`].
    #[error("task spec does not parse: {0}")]
    Parse(String),
    /// No schema has this data family.
    #[error("unknown dataset {0:?}: expected \"digits\" or \"fashion-mnist\"")]
    UnknownDataset(String),
    /// The model name is not one this module trains.
    #[error("unknown model {0:?}: expected \"mlp\" or \"logreg\"")]
    UnknownModel(String),
    /// A count is zero or above its bound.
    #[error("{field} = {value} out of {min}..={max}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// A real number is not finite and positive (or, for δ, not inside `(0, 1)`).
    #[error("{field} = {value}: {reason}")]
    BadNumber {
        /// The field.
        field: &'static str,
        /// Its value.
        value: f64,
        /// What it must be.
        reason: &'static str,
    },
    /// The strategy is unknown, needs what secure aggregation hides, or needs more groups than
    /// a round forms.
    #[error("strategy {name:?}: {reason}")]
    Strategy {
        /// The name in the spec.
        name: String,
        /// Why it cannot run.
        reason: String,
    },
    /// Fewer datasets per round than one scoring group needs.
    #[error("datasets_per_round {per_round} below group_size_min {group}: no group could form")]
    GroupTooLarge {
        /// Datasets per round.
        per_round: u32,
        /// Smallest group.
        group: u32,
    },
}

fn range(field: &'static str, value: u32, min: u32, max: u32) -> Result<(), SpecError> {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    Err(SpecError::OutOfRange {
        field,
        value: u64::from(value),
        min: u64::from(min),
        max: u64::from(max),
    })
}

fn positive(field: &'static str, value: f64) -> Result<(), SpecError> {
    if value.is_finite() && value > 0.0 {
        return Ok(());
    }
    Err(SpecError::BadNumber {
        field,
        value,
        reason: "must be finite and > 0",
    })
}

impl TaskSpec {
    /// A small digits task: logistic regression, groups of 4, modest noise.
    pub fn digits_default() -> Self {
        Self {
            dataset: "digits".into(),
            model: "logreg".into(),
            init_seed: 7,
            rounds: 20,
            datasets_per_round: 8,
            local_epochs: 2,
            batch: 16,
            lr: 0.5,
            server_lr: 1.0,
            clip_norm: 2.0,
            noise_multiplier: 0.3,
            quant_level_bits: 16,
            group_size_min: 4,
            delta: 1e-5,
            strategy: fedavg(),
            byzantine_groups: 0,
        }
    }

    /// Parses and validates a spec.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SpecError> {
        let spec: Self =
            serde_json::from_slice(bytes).map_err(|e| SpecError::Parse(e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.model_kind()?;
        range("rounds", self.rounds, 1, ROUNDS_MAX)?;
        range(
            "datasets_per_round",
            self.datasets_per_round,
            1,
            DATASETS_MAX,
        )?;
        range("local_epochs", self.local_epochs, 1, 1000)?;
        range("batch", self.batch, 1, 1 << 20)?;
        range("quant_level_bits", self.quant_level_bits, 1, 24)?;
        // Two members could each subtract their own update from the group sum and learn the
        // other's; three is the least that hides an update from any single member.
        range("group_size_min", self.group_size_min, 3, DATASETS_MAX)?;
        range("byzantine_groups", self.byzantine_groups, 0, 1000)?;
        positive("lr", f64::from(self.lr))?;
        positive("server_lr", f64::from(self.server_lr))?;
        positive("clip_norm", f64::from(self.clip_norm))?;
        positive("noise_multiplier", self.noise_multiplier)?;
        if !(self.delta > 0.0 && self.delta < 1.0) {
            return Err(SpecError::BadNumber {
                field: "delta",
                value: self.delta,
                reason: "must be inside (0, 1)",
            });
        }
        if self.datasets_per_round < self.group_size_min {
            return Err(SpecError::GroupTooLarge {
                per_round: self.datasets_per_round,
                group: self.group_size_min,
            });
        }
        let groups =
            crate::groups::group_sizes(self.datasets_per_round as usize, self.group_size_min).len();
        crate::strategy::check_groups(self, groups)
    }

    /// The JSON the hash covers: fields in declaration order, floats in shortest round-trip
    /// form, no whitespace.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a struct of strings and numbers serializes")
    }

    /// BLAKE3 of [`Self::canonical_bytes`]: what `TaskCreate.model_spec` records.
    pub fn hash(&self) -> Digest {
        Digest::hash(&self.canonical_bytes())
    }

    /// The architecture for the data family's schema (digits: 64 features; Fashion-MNIST: 784;
    /// both 10 classes).
    pub fn model_kind(&self) -> Result<ModelKind, SpecError> {
        let schema = crate::schema::for_family(&self.dataset)
            .ok_or_else(|| SpecError::UnknownDataset(self.dataset.clone()))?;
        match self.model.as_str() {
            "mlp" | "logreg" => ModelKind::from_name(&self.model, schema.features, schema.classes)
                .map_err(|_| SpecError::UnknownModel(self.model.clone())),
            _ => Err(SpecError::UnknownModel(self.model.clone())),
        }
    }

    /// The initial global model, drawn from [`Self::init_seed`].
    pub fn initial_weights(&self) -> Result<Vec<f32>, SpecError> {
        let kind = self.model_kind()?;
        Ok(kind.init(&mut deai_learn::rng::stream(
            "deai-node/fed/init",
            &[self.init_seed],
        )))
    }

    /// What each owner runs locally: plain SGD, with the proximal term if the strategy asks
    /// for one (FedProx).
    pub fn local_train(&self) -> Result<LocalTrain, SpecError> {
        Ok(LocalTrain {
            lr: self.lr,
            epochs: self.local_epochs as usize,
            batch: self.batch as usize,
            optimizer: Optimizer::SGD,
            prox_mu: crate::strategy::prox_mu(self)?,
        })
    }

    /// δ charged per round in fixed point ([`DELTA_SCALE`]): `⌈δ·10¹²/rounds⌉`, at least 1.
    pub fn delta_per_round(&self) -> u64 {
        let total = self.delta * DELTA_SCALE as f64;
        ((total / f64::from(self.rounds.max(1))).ceil() as u64).max(1)
    }

    /// The δ budget to put in `TaskCreate`: exactly what the rounds will charge.
    pub fn delta_budget(&self) -> u64 {
        self.delta_per_round() * u64::from(self.rounds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_bytes_and_hash_are_stable() {
        let spec = TaskSpec::digits_default();
        let bytes = spec.canonical_bytes();
        assert_eq!(TaskSpec::from_json(&bytes).expect("valid"), spec);
        assert_eq!(spec.hash(), Digest::hash(&bytes));
        let mut other = spec.clone();
        other.lr = 0.25;
        assert_ne!(other.hash(), spec.hash());
        assert!(bytes.starts_with(br#"{"dataset":"digits","model":"logreg""#));
    }

    #[test]
    fn unknown_fields_and_bad_values_are_named() {
        let mut json: serde_json::Value =
            serde_json::from_slice(&TaskSpec::digits_default().canonical_bytes()).expect("json");
        json["extra"] = 1.into();
        let err = TaskSpec::from_json(json.to_string().as_bytes()).expect_err("unknown field");
        assert!(
            matches!(err, SpecError::Parse(ref m) if m.contains("extra")),
            "{err}"
        );

        let bad = |f: fn(&mut TaskSpec)| {
            let mut s = TaskSpec::digits_default();
            f(&mut s);
            s.validate().expect_err("invalid")
        };
        assert_eq!(
            bad(|s| s.model = "cnn".into()),
            SpecError::UnknownModel("cnn".into())
        );
        assert_eq!(
            bad(|s| s.dataset = "mnist".into()),
            SpecError::UnknownDataset("mnist".into())
        );
        assert!(matches!(
            bad(|s| s.rounds = 0),
            SpecError::OutOfRange {
                field: "rounds",
                ..
            }
        ));
        assert!(matches!(
            bad(|s| s.group_size_min = 2),
            SpecError::OutOfRange {
                field: "group_size_min",
                ..
            }
        ));
        assert!(matches!(
            bad(|s| s.clip_norm = f32::NAN),
            SpecError::BadNumber {
                field: "clip_norm",
                ..
            }
        ));
        assert!(matches!(
            bad(|s| s.noise_multiplier = 0.0),
            SpecError::BadNumber {
                field: "noise_multiplier",
                ..
            }
        ));
        assert!(matches!(
            bad(|s| s.delta = 1.0),
            SpecError::BadNumber { field: "delta", .. }
        ));
        assert!(matches!(
            bad(|s| s.datasets_per_round = 3),
            SpecError::GroupTooLarge { .. }
        ));
    }

    #[test]
    fn delta_per_round_fits_the_budget() {
        let spec = TaskSpec::digits_default();
        assert_eq!(spec.delta_per_round(), 500_000); // 1e-5 · 1e12 / 20
        assert_eq!(spec.delta_budget(), 10_000_000);
        assert!(spec.delta_budget() < DELTA_SCALE);
    }
}
