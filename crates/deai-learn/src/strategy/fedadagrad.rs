//! FedAdagrad (Reddi et al. 2021): FedAvg mean, then a server step with the Adagrad second-moment rule
//! (see [`super::fedopt`]).

use super::fedopt::{FedOpt, Rule, fedopt_strategy};

/// FedAdagrad server optimiser.
#[derive(Debug, Clone)]
pub struct FedAdagrad(FedOpt);

fedopt_strategy!(FedAdagrad, "fedadagrad", Rule::Adagrad);
