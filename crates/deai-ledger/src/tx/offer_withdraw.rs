//! `OfferWithdraw`: the provider stops an active offer. No channel may open on it from this
//! block; channels already open keep being claimable until their own expiry (at most
//! `channel_expiry_max` ahead, since a withdrawn offer's channels cannot be extended). The bond
//! stays locked for `offer_unbond_blocks` (more than `channel_expiry_max +
//! dispute_window_blocks`, checked at genesis), so every receipt the offer signed can still be
//! disputed against it, and returns to the provider at the start of the block at
//! `release_height` (unless a dispute slashed it first).

use super::{Action, Env};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::{OfferStatus, State};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Withdraw an active offer (provider only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferWithdraw {
    /// The offer.
    pub offer: u64,
}

impl Action for OfferWithdraw {
    fn check(&self, _: &Params) -> Result<(), TxError> {
        Ok(())
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let offer = state.offer_checked(self.offer)?;
        State::require_provider(offer, &env.sender)?;
        State::require_active(offer)
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        let release_height = env
            .height
            .saturating_add(state.params().offer_unbond_blocks);
        let offer = state.offer_mut(self.offer);
        offer.status = OfferStatus::Withdrawn;
        offer.release_height = Some(release_height);
        state.queue_offer_release(release_height, self.offer);
        let event = Event::OfferWithdrawn {
            id: self.offer,
            release_height,
        };
        state.record(EntityKind::Offer, self.offer, env, event.clone());
        vec![event]
    }
}

impl Write for OfferWithdraw {
    fn write(&self, buf: &mut impl BufMut) {
        self.offer.write(buf);
    }
}

impl EncodeSize for OfferWithdraw {
    fn encode_size(&self) -> usize {
        8
    }
}

impl Read for OfferWithdraw {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, _: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            offer: u64::read_cfg(buf, &())?,
        })
    }
}
