//! Genesis: chain id, initial balances, validators with their stake, and every parameter.
//! Read from a JSON file; amounts are decimal strings.

use crate::error::GenesisError;
use crate::params::Params;
use crate::types::Address;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One base unit per 10^-18 token (so a token is `TOKEN` base units).
pub const TOKEN: u128 = 1_000_000_000_000_000_000;

/// The initial state of a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// Chain id every transaction must carry.
    pub chain_id: String,
    /// Initial spendable balances.
    #[serde(with = "crate::types::allocations")]
    pub balances: Vec<(Address, u128)>,
    /// Validators and their initial stake.
    #[serde(with = "crate::types::allocations")]
    pub validators: Vec<(Address, u128)>,
    /// Protocol parameters.
    pub params: Params,
}

/// What a development genesis gives each validator to spend (beside its stake): the fees of its
/// challenge votes.
pub const VALIDATOR_DEV_BALANCE: u128 = 100 * TOKEN;

impl Genesis {
    /// A development genesis: chain `deai-dev`, `dev_account` funded with one million tokens,
    /// each validator staked with one thousand tokens and holding [`VALIDATOR_DEV_BALANCE`] to
    /// pay the fees of its duties (its votes on round challenges), default parameters.
    pub fn dev(dev_account: Address, validators: Vec<Address>) -> Genesis {
        let mut balances = vec![(dev_account, 1_000_000 * TOKEN)];
        balances.extend(
            validators
                .iter()
                .filter(|v| **v != dev_account)
                .map(|v| (*v, VALIDATOR_DEV_BALANCE)),
        );
        Genesis {
            chain_id: "deai-dev".to_string(),
            balances,
            validators: validators.into_iter().map(|v| (v, 1_000 * TOKEN)).collect(),
            params: Params::default(),
        }
    }

    /// Parse a genesis JSON document.
    pub fn from_json(json: &str) -> Result<Genesis, GenesisError> {
        let g: Genesis = serde_json::from_str(json)?;
        g.validate()?;
        Ok(g)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("genesis serializes")
    }

    /// Total tokens at genesis (balances + stake).
    pub fn supply(&self) -> Result<u128, GenesisError> {
        self.balances
            .iter()
            .chain(&self.validators)
            .try_fold(0u128, |acc, &(_, v)| acc.checked_add(v))
            .ok_or(GenesisError::SupplyOverflow)
    }

    /// Check everything `State::from_genesis` relies on.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let max = self.params.chain_id_bytes_max as usize;
        if self.chain_id.is_empty() || self.chain_id.len() > max {
            return Err(GenesisError::ChainId {
                chain_id: self.chain_id.clone(),
                max,
            });
        }
        for (list, name) in [
            (&self.balances, "balances"),
            (&self.validators, "validators"),
        ] {
            let mut seen = BTreeSet::new();
            for (a, _) in list {
                if !seen.insert(a) {
                    return Err(GenesisError::Duplicate(*a, name));
                }
            }
        }
        self.supply()?;
        self.params.validate()?;
        if self.validators.len() > self.params.validators_max as usize {
            return Err(GenesisError::Param {
                name: "validators_max",
                value: self.params.validators_max.to_string(),
                reason: "must be at least the number of genesis validators",
            });
        }
        if let Some((a, stake)) = self
            .validators
            .iter()
            .find(|(_, stake)| *stake < self.params.validator_stake_min)
        {
            return Err(GenesisError::ValidatorStake {
                validator: *a,
                stake: *stake,
                min: self.params.validator_stake_min,
            });
        }
        Ok(())
    }
}

/// The inference-market parameters: positive where a zero would disable a rule, within the caps
/// that bound a dispute's work, and a bond release late enough for every dispute.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{CHANNEL_EXPIRY_MAX_DEFAULT, DISPUTE_WINDOW_BLOCKS_DEFAULT};

    fn with(params: Params) -> Result<(), GenesisError> {
        Genesis {
            params,
            ..Genesis::dev(crate::Address([1; 32]), vec![])
        }
        .validate()
    }

    fn refused(params: Params, name: &str) {
        match with(params) {
            Err(GenesisError::Param { name: got, .. }) => assert_eq!(got, name),
            other => panic!("{name}: expected a parameter error, got {other:?}"),
        }
    }

    #[test]
    fn market_parameters_are_bounded() {
        with(Params::default()).expect("the defaults are valid");
        let d = Params::default;
        // The bond must outlive the longest channel and its dispute window.
        let reach = CHANNEL_EXPIRY_MAX_DEFAULT + DISPUTE_WINDOW_BLOCKS_DEFAULT;
        refused(
            Params {
                offer_unbond_blocks: reach,
                ..d()
            },
            "offer_unbond_blocks",
        );
        with(Params {
            offer_unbond_blocks: reach + 1,
            ..d()
        })
        .expect("one block past the window");
        refused(
            Params {
                channel_expiry_max: u64::MAX,
                ..d()
            },
            "offer_unbond_blocks",
        );
        refused(
            Params {
                dispute_reward_bps: 10_001,
                ..d()
            },
            "dispute_reward_bps",
        );
        // A block must hold the largest dispute, and stay within one consensus message.
        let dispute = d().dispute_tx_bytes_max() as u64;
        refused(
            Params {
                block_bytes_max: dispute - 1,
                ..d()
            },
            "block_bytes_max",
        );
        with(Params {
            block_bytes_max: dispute,
            ..d()
        })
        .expect("a block of exactly one largest dispute");
        refused(
            Params {
                block_bytes_max: crate::params::BLOCK_BYTES_MAX_LIMIT + 1,
                ..d()
            },
            "block_bytes_max",
        );
        for ops in [0, crate::params::DISPUTE_OPS_MAX_LIMIT + 1] {
            refused(
                Params {
                    dispute_ops_max: ops,
                    ..d()
                },
                "dispute_ops_max",
            );
        }
        for bytes in [0, crate::params::DISPUTE_MODEL_BYTES_MAX_LIMIT + 1] {
            refused(
                Params {
                    dispute_model_bytes_max: bytes,
                    ..d()
                },
                "dispute_model_bytes_max",
            );
        }
        refused(
            Params {
                receipt_output_bytes_max: 11,
                ..d()
            },
            "receipt_output_bytes_max",
        );
        refused(
            Params {
                offer_bond_min: 0,
                ..d()
            },
            "offer_bond_min",
        );
        refused(
            Params {
                channel_expiry_max: 0,
                ..d()
            },
            "channel_expiry_max",
        );
    }

    #[test]
    fn a_genesis_written_before_the_market_loads_its_defaults() {
        let mut json = serde_json::to_value(Genesis::dev(crate::Address([1; 32]), vec![]))
            .expect("serializes");
        let params = json["params"].as_object_mut().expect("an object");
        for name in [
            "offer_bond_min",
            "offer_endpoint_bytes_max",
            "offer_unbond_blocks",
            "channel_expiry_max",
            "dispute_window_blocks",
            "dispute_ops_max",
            "dispute_model_bytes_max",
            "dispute_input_bytes_max",
            "receipt_output_bytes_max",
            "dispute_reward_bps",
            "dispute_bond",
            "dispute_fee_per_byte",
            "coordinator_bond",
            "challenge_window_blocks",
            "challenge_deposit",
            "challenge_vote_blocks",
            "challenge_reward_bps",
        ] {
            assert!(params.remove(name).is_some(), "{name}");
        }
        let g = Genesis::from_json(&json.to_string()).expect("loads");
        assert_eq!(g.params, Params::default());
    }
}
