//! `Transfer`: move `amount` from the sender to `to`.

use super::{Action, Env};
use crate::error::TxError;
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::State;
use crate::types::Address;
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Move funds to another account (created if new).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// Payee.
    pub to: Address,
    /// Amount, base units (> 0).
    #[serde(with = "crate::types::amount")]
    pub amount: u128,
}

impl Action for Transfer {
    fn check(&self, _: &Params) -> Result<(), TxError> {
        TxError::positive("amount", self.amount)
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        state.require_funds(env, self.amount)
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        state.debit(&env.sender, self.amount);
        state.credit(&self.to, self.amount);
        vec![Event::Transferred {
            from: env.sender,
            to: self.to,
            amount: self.amount,
        }]
    }
}

impl Write for Transfer {
    fn write(&self, buf: &mut impl BufMut) {
        self.to.write(buf);
        self.amount.write(buf);
    }
}

impl EncodeSize for Transfer {
    fn encode_size(&self) -> usize {
        32 + 16
    }
}

impl Read for Transfer {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, _: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            to: Address::read_cfg(buf, &())?,
            amount: u128::read_cfg(buf, &())?,
        })
    }
}
