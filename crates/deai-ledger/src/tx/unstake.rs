//! `Unstake`: start unbonding stake; it returns to the balance `unbonding_delay_blocks` later.

use super::{Action, Env};
use crate::error::TxError;
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::{State, Unbonding};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Start unbonding stake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unstake {
    /// Amount, base units (> 0, ≤ staked).
    #[serde(with = "crate::types::amount")]
    pub amount: u128,
}

impl Action for Unstake {
    fn check(&self, _: &Params) -> Result<(), TxError> {
        TxError::positive("amount", self.amount)
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let acc = state.account(&env.sender);
        if acc.staked < self.amount {
            return Err(TxError::InsufficientStake {
                needed: self.amount,
                available: acc.staked,
            });
        }
        state.check_unbonding(env)
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        let release_height = env.height + state.params().unbonding_delay_blocks;
        let acc = state.account_mut(&env.sender);
        acc.staked -= self.amount;
        acc.unbonding.push(Unbonding {
            amount: self.amount,
            release_height,
        });
        state.queue_unbonding(release_height, env.sender);
        vec![Event::UnbondingStarted {
            account: env.sender,
            amount: self.amount,
            release_height,
        }]
    }
}

impl Write for Unstake {
    fn write(&self, buf: &mut impl BufMut) {
        self.amount.write(buf);
    }
}

impl EncodeSize for Unstake {
    fn encode_size(&self) -> usize {
        16
    }
}

impl Read for Unstake {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, _: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            amount: u128::read_cfg(buf, &())?,
        })
    }
}
