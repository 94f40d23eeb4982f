//! FedAdam (Reddi et al. 2021): FedAvg mean, then a server step with the Adam second-moment rule
//! (see [`super::fedopt`]).

use super::fedopt::{FedOpt, Rule, fedopt_strategy};

/// FedAdam server optimiser.
#[derive(Debug, Clone)]
pub struct FedAdam(FedOpt);

fedopt_strategy!(FedAdam, "fedadam", Rule::Adam);
