//! `Delegate` and `Undelegate`: bond stake to a validator without running a node, and take it
//! back through the unbonding delay (see `state::delegation`).

use super::{Action, Env};
use crate::error::TxError;
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::{BlockTarget, DELEGATIONS_MAX, State, Unbonding};
use crate::types::Address;
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Delegate stake to a validator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegate {
    /// The validator's account (one that declared a consensus key).
    pub validator: Address,
    /// Amount, base units.
    #[serde(with = "crate::types::amount")]
    pub amount: u128,
}

/// Start unbonding a delegation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undelegate {
    /// The validator's account.
    pub validator: Address,
    /// Amount, base units.
    #[serde(with = "crate::types::amount")]
    pub amount: u128,
}

impl Action for Delegate {
    fn check(&self, _: &Params) -> Result<(), TxError> {
        TxError::positive("amount", self.amount)
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        state.require_funds(env, self.amount)?;
        if self.validator == env.sender {
            return Err(TxError::InvalidField {
                field: "validator".into(),
                reason: "an account bonds its own stake with Stake, not Delegate".into(),
            });
        }
        if state.account(&self.validator).validator.is_none() {
            return Err(TxError::InvalidField {
                field: "validator".into(),
                reason: format!("{} never declared a validator key", self.validator),
            });
        }
        state.require_unblocked(BlockTarget::Validator(self.validator))?;
        let list = state.delegations_of(&env.sender);
        if !list.contains_key(&self.validator) {
            TxError::limit("delegations", list.len() + 1, DELEGATIONS_MAX)?;
        }
        Ok(())
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        state.debit(&env.sender, self.amount);
        state.add_delegation(env.sender, self.validator, self.amount);
        vec![Event::Delegated {
            delegator: env.sender,
            validator: self.validator,
            amount: self.amount,
        }]
    }
}

impl Action for Undelegate {
    fn check(&self, _: &Params) -> Result<(), TxError> {
        TxError::positive("amount", self.amount)
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let held = state
            .delegations_of(&env.sender)
            .get(&self.validator)
            .copied()
            .unwrap_or(0);
        if held < self.amount {
            return Err(TxError::InsufficientStake {
                needed: self.amount,
                available: held,
            });
        }
        state.check_unbonding(env)
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        let release_height = env.height + state.params().unbonding_delay_blocks;
        state.remove_delegation(env.sender, self.validator, self.amount);
        state.account_mut(&env.sender).unbonding.push(Unbonding {
            amount: self.amount,
            release_height,
        });
        state.queue_unbonding(release_height, env.sender);
        vec![Event::Undelegated {
            delegator: env.sender,
            validator: self.validator,
            amount: self.amount,
            release_height,
        }]
    }
}

macro_rules! delegation_codec {
    ($ty:ident) => {
        impl Write for $ty {
            fn write(&self, buf: &mut impl BufMut) {
                self.validator.write(buf);
                self.amount.write(buf);
            }
        }

        impl EncodeSize for $ty {
            fn encode_size(&self) -> usize {
                32 + 16
            }
        }

        impl Read for $ty {
            type Cfg = Limits;
            fn read_cfg(buf: &mut impl Buf, _: &Limits) -> Result<Self, CodecError> {
                Ok(Self {
                    validator: Address::read_cfg(buf, &())?,
                    amount: u128::read_cfg(buf, &())?,
                })
            }
        }
    };
}

delegation_codec!(Delegate);
delegation_codec!(Undelegate);
