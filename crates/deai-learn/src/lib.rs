//! Federated learning for deai: models, local training, strategies, robust rules, differential privacy and simulation.
//!
//! Layers, bottom up:
//! - [`params`]: flat `Vec<f32>` models — the only representation that crosses the federation.
//! - [`data`]: data sets (digits vendored, Fashion-MNIST from Debian) and partitioners.
//! - [`model`]: architectures with a fixed parameter order, and local training; burn (the
//!   `flex` CPU backend with autodiff) stays inside this module.
//! - [`strategy`]: Flower-shaped aggregation strategies and robust rules, pure and sans-IO.
//! - [`dp`]: DP wrapper strategies and the RDP and PLD accountants.
//! - [`attack`]: Byzantine client models for robustness tests.
//! - [`sim`]: the deterministic in-process simulator that drives all of the above
//!   ([`sim::run`] is `deai simulate`); [`rng`]: the seeded streams it draws from.
//! - `bench`, `robust` (feature `bench`): the timing harnesses of `deai bench fl` and the
//!   attack-by-rule table of `deai bench robust`.
//!
//! ```
//! let cfg = deai_learn::sim::SimConfig { rounds: 2, ..deai_learn::sim::SimConfig::digits_100() };
//! let report = deai_learn::sim::run(&cfg, &mut |_| {}).expect("digits are vendored");
//! assert_eq!(report.per_round.len(), 2);
//! assert_eq!(report.model_hash.len(), 64);
//! ```

pub mod attack;
#[cfg(feature = "bench")]
pub mod bench;
pub mod data;
pub mod dp;
pub mod error;
pub mod model;
pub mod params;
pub mod rng;
#[cfg(feature = "bench")]
pub mod robust;
pub mod sim;
pub mod strategy;

pub use error::{LearnError, Result};
