//! `ChannelOpen`: a payer locks a deposit for one active offer's provider, claimable by vouchers
//! until `expiry_height` (see [`crate::Channel`] for the life cycle). The sender is the payer: its
//! key signs the vouchers.

use super::{Action, Env};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::{Channel, ChannelStatus, State};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Open a payment channel to an offer's provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelOpen {
    /// The offer paid for (active).
    pub offer: u64,
    /// Locked from the sender's balance (> 0).
    #[serde(with = "crate::types::amount")]
    pub deposit: u128,
    /// Last height the provider may claim: after the block's height, at most
    /// `channel_expiry_max` past it.
    pub expiry_height: u64,
}

/// Err unless `expiry_height` lies after `height` and at most `channel_expiry_max` past it.
pub(crate) fn check_expiry(
    expiry_height: u64,
    height: u64,
    params: &Params,
) -> Result<(), TxError> {
    let latest = height.saturating_add(params.channel_expiry_max);
    if expiry_height <= height || expiry_height > latest {
        return Err(TxError::InvalidField {
            field: "expiry_height".into(),
            reason: format!(
                "{expiry_height} is not in {}..={latest} (channel_expiry_max {} past height {height})",
                height.saturating_add(1),
                params.channel_expiry_max
            ),
        });
    }
    Ok(())
}

impl Action for ChannelOpen {
    fn check(&self, _: &Params) -> Result<(), TxError> {
        TxError::positive("deposit", self.deposit)
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let offer = state.offer_checked(self.offer)?;
        State::require_active(offer)?;
        state.require_unblocked(crate::state::BlockTarget::Offer(self.offer))?;
        check_expiry(self.expiry_height, env.height, state.params())?;
        state.require_funds(env, self.deposit)?;
        state.next_id(EntityKind::Channel).map(|_| ())
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        let id = state
            .next_id(EntityKind::Channel)
            .expect("validated: id available");
        let provider = state.offer(self.offer).expect("validated: offer").provider;
        state.debit(&env.sender, self.deposit);
        state.insert_channel(Channel {
            id,
            offer: self.offer,
            payer: env.sender,
            provider,
            deposit: self.deposit,
            claimed: 0,
            expiry_height: self.expiry_height,
            opened_height: env.height,
            status: ChannelStatus::Open,
            disputed: Vec::new(),
        });
        vec![Event::ChannelOpened {
            id,
            offer: self.offer,
            payer: env.sender,
            deposit: self.deposit,
            expiry_height: self.expiry_height,
        }]
    }
}

impl Write for ChannelOpen {
    fn write(&self, buf: &mut impl BufMut) {
        self.offer.write(buf);
        self.deposit.write(buf);
        self.expiry_height.write(buf);
    }
}

impl EncodeSize for ChannelOpen {
    fn encode_size(&self) -> usize {
        8 + 16 + 8
    }
}

impl Read for ChannelOpen {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, _: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            offer: u64::read_cfg(buf, &())?,
            deposit: u128::read_cfg(buf, &())?,
            expiry_height: u64::read_cfg(buf, &())?,
        })
    }
}
