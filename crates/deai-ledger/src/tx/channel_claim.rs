//! `ChannelClaim`: the provider redeems the highest voucher the payer signed, before the
//! channel's expiry, once or in steps. It pays `voucher.cumulative_amount − claimed` out of the
//! deposit (the checks are [`crate::State::voucher_claimable`]: replays, lower or equal amounts,
//! another payer's signature, another channel or chain, an expired or closed channel, an amount
//! above the deposit and a suspended offer are all refused), then splits it: the offer's
//! `royalty_bps` to the model's contributors by their recorded scores
//! ([`crate::State::contributors_of`]), the rest and the rounding dust to the provider. Every
//! payment is an event: one `channel_claimed`, one `royalty_paid` per dataset paid (also in the
//! dataset's history).

use super::{Action, Env};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::payment::SignedVoucher;
use crate::state::{State, royalty_of, split};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Redeem a payer's voucher (the channel's provider only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelClaim {
    /// The channel (must equal the voucher's).
    pub channel: u64,
    /// The payer's signed cumulative voucher.
    pub voucher: SignedVoucher,
}

impl Action for ChannelClaim {
    fn check(&self, _: &Params) -> Result<(), TxError> {
        Ok(())
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let c = state.channel_checked(self.channel)?;
        if c.provider != env.sender {
            return Err(TxError::NotOwner {
                kind: EntityKind::Channel,
                id: self.channel,
                owner: c.provider,
                sender: env.sender,
            });
        }
        state.require_unblocked(crate::state::BlockTarget::Offer(c.offer))?;
        state
            .voucher_claimable(self.channel, &self.voucher, env.height)
            .map(|_| ())
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        let c = state.channel_mut(self.channel);
        // Validated: above what was claimed, within the deposit, signed by the payer.
        let amount = self.voucher.voucher.cumulative_amount - c.claimed;
        c.claimed = self.voucher.voucher.cumulative_amount;
        let (offer_id, provider) = (c.offer, c.provider);
        let offer = state.offer(offer_id).expect("channels name offers");
        let model = offer.model;
        let royalty = royalty_of(amount, offer.royalty_bps);
        let (shares, dust) = split(royalty, &offer.contributors);
        let mut events = Vec::with_capacity(shares.len() + 1);
        let mut royalties = 0u128;
        for (dataset, share) in shares {
            let owner = state.dataset(dataset).expect("contributors exist").owner;
            state.credit(&owner, share);
            royalties += share;
            let event = Event::RoyaltyPaid {
                offer: offer_id,
                model,
                dataset,
                owner,
                amount: share,
            };
            state.record(EntityKind::Dataset, dataset, env, event.clone());
            events.push(event);
        }
        let provider_amount = amount - royalty + dust;
        state.credit(&provider, provider_amount);
        events.insert(
            0,
            Event::ChannelClaimed {
                id: self.channel,
                offer: offer_id,
                provider,
                amount,
                provider_amount,
                royalty: royalties,
            },
        );
        events
    }
}

impl Write for ChannelClaim {
    fn write(&self, buf: &mut impl BufMut) {
        self.channel.write(buf);
        self.voucher.write(buf);
    }
}

impl EncodeSize for ChannelClaim {
    fn encode_size(&self) -> usize {
        8 + self.voucher.encode_size()
    }
}

impl Read for ChannelClaim {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, cfg: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            channel: u64::read_cfg(buf, &())?,
            voucher: SignedVoucher::read_cfg(buf, cfg)?,
        })
    }
}
