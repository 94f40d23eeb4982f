//! `ChannelTopUp`: the payer adds to an open, unexpired channel's deposit and may push its expiry
//! later (never earlier, at most `channel_expiry_max` past the block), while its offer is active:
//! a withdrawn offer's channels cannot outlive the bond that backs their receipts.

use super::channel_open::check_expiry;
use super::{Action, Env};
use crate::error::TxError;
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::{ChannelStatus, State};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Add to a channel's deposit and/or extend it (payer only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelTopUp {
    /// The channel.
    pub channel: u64,
    /// Added to the deposit from the sender's balance (may be 0 if the expiry moves).
    #[serde(with = "crate::types::amount")]
    pub amount: u128,
    /// The new expiry: the current one to keep it, or later.
    pub expiry_height: u64,
}

impl Action for ChannelTopUp {
    fn check(&self, _: &Params) -> Result<(), TxError> {
        Ok(())
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let c = state.channel_checked(self.channel)?;
        if c.payer != env.sender {
            return Err(TxError::NotOwner {
                kind: crate::EntityKind::Channel,
                id: self.channel,
                owner: c.payer,
                sender: env.sender,
            });
        }
        state.require_unblocked(crate::state::BlockTarget::Offer(c.offer))?;
        if c.status != ChannelStatus::Open {
            return Err(TxError::ChannelNotOpen {
                channel: self.channel,
            });
        }
        if env.height > c.expiry_height {
            return Err(TxError::ChannelExpired {
                channel: self.channel,
                expiry_height: c.expiry_height,
                height: env.height,
            });
        }
        State::require_active(state.offer_checked(c.offer)?)?;
        if self.expiry_height < c.expiry_height {
            return Err(TxError::InvalidField {
                field: "expiry_height".into(),
                reason: format!(
                    "{} is before the channel's expiry {}",
                    self.expiry_height, c.expiry_height
                ),
            });
        }
        if self.expiry_height > c.expiry_height {
            check_expiry(self.expiry_height, env.height, state.params())?;
        } else if self.amount == 0 {
            return Err(TxError::ZeroAmount {
                field: "amount (the expiry does not move)".into(),
            });
        }
        state.require_funds(env, self.amount)?;
        c.deposit
            .checked_add(self.amount)
            .map(|_| ())
            .ok_or_else(|| TxError::overflow("channel deposit"))
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        state.debit(&env.sender, self.amount);
        let c = state.channel_mut(self.channel);
        c.deposit += self.amount;
        c.expiry_height = self.expiry_height;
        vec![Event::ChannelToppedUp {
            id: self.channel,
            amount: self.amount,
            expiry_height: self.expiry_height,
        }]
    }
}

impl Write for ChannelTopUp {
    fn write(&self, buf: &mut impl BufMut) {
        self.channel.write(buf);
        self.amount.write(buf);
        self.expiry_height.write(buf);
    }
}

impl EncodeSize for ChannelTopUp {
    fn encode_size(&self) -> usize {
        8 + 16 + 8
    }
}

impl Read for ChannelTopUp {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, _: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            channel: u64::read_cfg(buf, &())?,
            amount: u128::read_cfg(buf, &())?,
            expiry_height: u64::read_cfg(buf, &())?,
        })
    }
}
