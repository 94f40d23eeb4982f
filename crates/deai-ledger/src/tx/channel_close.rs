//! `ChannelClose`: ends a channel and returns the unclaimed deposit to its payer. The payer may
//! close once the channel expired (`height > expiry_height`), or at once when a dispute has
//! suspended the offer (nothing more can be claimed); the provider may close at any time, giving
//! up its own further claims (how a payer gets its change back early, by agreement). Receipts of
//! a closed channel can still be disputed until its dispute window ends.

use super::{Action, Env};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::{ChannelStatus, OfferStatus, State};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Close a channel (its payer after expiry, or its provider).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelClose {
    /// The channel.
    pub channel: u64,
}

impl Action for ChannelClose {
    fn check(&self, _: &Params) -> Result<(), TxError> {
        Ok(())
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let c = state.channel_checked(self.channel)?;
        if c.status != ChannelStatus::Open {
            return Err(TxError::ChannelNotOpen {
                channel: self.channel,
            });
        }
        if env.sender == c.provider {
            return Ok(());
        }
        if env.sender != c.payer {
            return Err(TxError::NotOwner {
                kind: EntityKind::Channel,
                id: self.channel,
                owner: c.payer,
                sender: env.sender,
            });
        }
        let suspended = state.offer_checked(c.offer)?.status == OfferStatus::Suspended;
        if env.height <= c.expiry_height && !suspended {
            return Err(TxError::ChannelNotExpired {
                channel: self.channel,
                expiry_height: c.expiry_height,
                height: env.height,
            });
        }
        Ok(())
    }

    fn apply(&self, state: &mut State, _: &Env) -> Vec<Event> {
        let c = state.channel_mut(self.channel);
        let refund = c.locked();
        c.status = ChannelStatus::Closed;
        let payer = c.payer;
        state.credit(&payer, refund);
        vec![Event::ChannelClosed {
            id: self.channel,
            payer,
            refund,
        }]
    }
}

impl Write for ChannelClose {
    fn write(&self, buf: &mut impl BufMut) {
        self.channel.write(buf);
    }
}

impl EncodeSize for ChannelClose {
    fn encode_size(&self) -> usize {
        8
    }
}

impl Read for ChannelClose {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, _: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            channel: u64::read_cfg(buf, &())?,
        })
    }
}
