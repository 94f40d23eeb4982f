//! FedYogi (Reddi et al. 2021): FedAvg mean, then a server step with the Yogi second-moment rule
//! (see [`super::fedopt`]).

use super::fedopt::{FedOpt, Rule, fedopt_strategy};

/// FedYogi server optimiser.
#[derive(Debug, Clone)]
pub struct FedYogi(FedOpt);

fedopt_strategy!(FedYogi, "fedyogi", Rule::Yogi);
