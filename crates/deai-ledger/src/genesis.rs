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

impl Genesis {
    /// A development genesis: chain `deai-dev`, `dev_account` funded with one million tokens,
    /// each validator staked with one thousand tokens, default parameters.
    pub fn dev(dev_account: Address, validators: Vec<Address>) -> Genesis {
        Genesis {
            chain_id: "deai-dev".to_string(),
            balances: vec![(dev_account, 1_000_000 * TOKEN)],
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
        let positive = [
            ("tx_bytes_max", u64::from(self.params.tx_bytes_max)),
            ("block_txs_max", u64::from(self.params.block_txs_max)),
            ("string_bytes_max", u64::from(self.params.string_bytes_max)),
            ("round_timeout_blocks", self.params.round_timeout_blocks),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(GenesisError::Param {
                    name,
                    value: value.to_string(),
                    reason: "must be positive",
                });
            }
        }
        if self.params.epoch_blocks < crate::params::EPOCH_BLOCKS_MIN {
            return Err(GenesisError::Param {
                name: "epoch_blocks",
                value: self.params.epoch_blocks.to_string(),
                reason: "must be at least 4 (the next set is chosen two blocks before an epoch ends)",
            });
        }
        if self.params.validators_max == 0
            || self.validators.len() > self.params.validators_max as usize
        {
            return Err(GenesisError::Param {
                name: "validators_max",
                value: self.params.validators_max.to_string(),
                reason: "must be positive and at least the number of genesis validators",
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
