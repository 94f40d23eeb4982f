//! Simulation configuration and the reference tasks.

use crate::attack::Attack;
use crate::data::partition::Partition;
use crate::error::{LearnError, Result};
use crate::model::optim::{LocalTrain, Optimizer};
use crate::strategy::Sampling;

/// Where the data comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSource {
    /// The vendored scikit-learn digits, split as in digits-100.
    Digits,
    /// Fashion-MNIST from the Debian package; `limit` keeps the first samples of each split.
    FashionMnist {
        /// Keep at most this many train and test samples.
        limit: Option<usize>,
    },
    /// Shakespeare by speaking role (natural partition), a sample every `stride` characters.
    Shakespeare {
        /// Characters between consecutive samples of a role.
        stride: usize,
    },
}

impl DataSource {
    /// Parses `digits` or `fashion-mnist`.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "digits" => Ok(Self::Digits),
            "fashion-mnist" | "fmnist" => Ok(Self::FashionMnist { limit: None }),
            other => Err(LearnError::config(
                "dataset",
                other,
                "expected digits or fashion-mnist",
            )),
        }
    }

    /// Display name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Digits => "digits",
            Self::FashionMnist { .. } => "fashion-mnist",
            Self::Shakespeare { .. } => "shakespeare",
        }
    }
}

/// Which DP mechanism wraps the strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum DpMode {
    /// Server clips each update, adds Gaussian noise to the mean.
    ServerFixed,
    /// Clients clip their own update; server adds the noise.
    ClientFixed,
    /// Server-side adaptive clipping (Andrew et al. 2021).
    Adaptive,
}

/// Differential privacy settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct DpConfig {
    /// Mechanism.
    pub mode: DpMode,
    /// Clipping norm C (initial norm when adaptive).
    pub clip: f64,
    /// Noise multiplier σ (noise std on the sum is σC).
    pub noise: f64,
    /// δ for the reported ε.
    pub delta: f64,
}

/// Everything a simulation run needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Task name for the report (`custom` when built by hand).
    pub task: String,
    /// Data set.
    pub dataset: DataSource,
    /// How training data is split.
    pub partition: Partition,
    /// Model name (`mlp`, `logistic`, `cnn`).
    pub model: String,
    /// Clients in the federation.
    pub clients: usize,
    /// Clients per round.
    pub sampling: Sampling,
    /// Rounds.
    pub rounds: u64,
    /// Strategy name (see [`crate::strategy::NAMES`]).
    pub strategy: String,
    /// Local training.
    pub local: LocalTrain,
    /// Seed of every random stream.
    pub seed: u64,
    /// Attack, if any.
    pub attack: Option<Attack>,
    /// Number of attacking clients (of `clients`).
    pub attackers: usize,
    /// Byzantine count the robust rules assume per round (default: expected attackers per round).
    pub byzantine: Option<usize>,
    /// Differential privacy, if any.
    pub dp: Option<DpConfig>,
    /// Server learning rate of FedAvgM / FedAdagrad / FedAdam / FedYogi (their default if `None`).
    pub server_lr: Option<f32>,
}

impl SimConfig {
    /// The reference task `digits-100` exactly as `shared/tasks/digits-100.md` writes it.
    pub fn digits_100() -> Self {
        Self {
            task: "digits-100".into(),
            dataset: DataSource::Digits,
            partition: Partition::Iid,
            model: "mlp".into(),
            clients: 100,
            sampling: Sampling::count(10),
            rounds: 50,
            strategy: "fedavg".into(),
            local: LocalTrain {
                lr: 0.1,
                epochs: 1,
                batch: 10,
                optimizer: Optimizer::SGD,
                prox_mu: 0.0,
            },
            seed: 0,
            attack: None,
            attackers: 0,
            byzantine: None,
            dp: None,
            server_lr: None,
        }
    }

    /// A named task.
    pub fn task(name: &str) -> Result<Self> {
        match name {
            "digits-100" => Ok(Self::digits_100()),
            other => Err(LearnError::UnknownTask(other.into())),
        }
    }

    /// Byzantine clients the robust rules assume in a round.
    pub fn byzantine_per_round(&self) -> usize {
        self.byzantine.unwrap_or_else(|| {
            let per_round = self.sampling.count.unwrap_or(1) as f64;
            (per_round * self.attackers as f64 / self.clients as f64).ceil() as usize
        })
    }

    /// Checks ranges before a run.
    pub fn validate(&self) -> Result<()> {
        self.local.validate()?;
        if self.rounds == 0 {
            return Err(LearnError::config("rounds", 0, "must be at least 1"));
        }
        if self.attackers > self.clients {
            return Err(LearnError::config(
                "attackers",
                self.attackers,
                "more than clients",
            ));
        }
        if let Some(dp) = self.dp {
            let ok =
                dp.clip > 0.0 && dp.noise >= 0.0 && dp.clip.is_finite() && dp.noise.is_finite();
            if !ok {
                return Err(LearnError::config(
                    "dp",
                    format!("clip {} noise {}", dp.clip, dp.noise),
                    "clip > 0, noise ≥ 0",
                ));
            }
        }
        Ok(())
    }
}
