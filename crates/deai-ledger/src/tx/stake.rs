//! `Stake`: lock part of the sender's balance as stake.

use super::{Action, Env};
use crate::error::TxError;
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::State;
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Lock funds as stake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stake {
    /// Amount, base units (> 0).
    #[serde(with = "crate::types::amount")]
    pub amount: u128,
}

impl Action for Stake {
    fn check(&self, _: &Params) -> Result<(), TxError> {
        TxError::positive("amount", self.amount)
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        state.require_funds(env, self.amount)
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        state.debit(&env.sender, self.amount);
        let acc = state.account_mut(&env.sender);
        acc.staked = acc
            .staked
            .checked_add(self.amount)
            .expect("total supply fits in u128");
        vec![Event::Staked {
            account: env.sender,
            amount: self.amount,
        }]
    }
}

impl Write for Stake {
    fn write(&self, buf: &mut impl BufMut) {
        self.amount.write(buf);
    }
}

impl EncodeSize for Stake {
    fn encode_size(&self) -> usize {
        16
    }
}

impl Read for Stake {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, _: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            amount: u128::read_cfg(buf, &())?,
        })
    }
}
