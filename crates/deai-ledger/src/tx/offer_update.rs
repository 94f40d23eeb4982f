//! `OfferUpdate`: the provider changes an active offer's price or endpoint, or adds to its bond.
//! The model, blob, declared operations and royalty are fixed at creation (channels and
//! contributors rely on them); a new price applies to queries priced after it, which the
//! provider's node enforces (vouchers carry amounts, not prices).

use super::offer_create::check_price_endpoint;
use super::{Action, Env};
use crate::codec::{read_str, str_size, write_str};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::State;
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Change an active offer (provider only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferUpdate {
    /// The offer.
    pub offer: u64,
    /// A new price per query (> 0), or `None` to keep it.
    #[serde(default, with = "option_amount")]
    pub price_per_query: Option<u128>,
    /// A new endpoint, or `None` to keep it.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Added to the bond from the sender's balance (may be 0).
    #[serde(default, with = "crate::types::amount")]
    pub bond_top_up: u128,
}

/// Serde for an optional amount as a decimal string or `null`.
mod option_amount {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &Option<u128>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => crate::types::amount::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u128>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "crate::types::amount")] u128);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

impl Action for OfferUpdate {
    fn check(&self, params: &Params) -> Result<(), TxError> {
        // Unchanged fields are checked as if they were set to a valid value.
        check_price_endpoint(
            self.price_per_query.unwrap_or(1),
            self.endpoint.as_deref().unwrap_or(""),
            params,
        )
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let offer = state.offer_checked(self.offer)?;
        State::require_provider(offer, &env.sender)?;
        State::require_active(offer)?;
        state.require_funds(env, self.bond_top_up)?;
        offer
            .bond
            .checked_add(self.bond_top_up)
            .map(|_| ())
            .ok_or_else(|| TxError::overflow("offer bond"))
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        state.debit(&env.sender, self.bond_top_up);
        let offer = state.offer_mut(self.offer);
        if let Some(price) = self.price_per_query {
            offer.price_per_query = price;
        }
        if let Some(endpoint) = &self.endpoint {
            offer.endpoint.clone_from(endpoint);
        }
        offer.bond += self.bond_top_up;
        let event = Event::OfferUpdated {
            id: self.offer,
            price_per_query: offer.price_per_query,
            bond_added: self.bond_top_up,
        };
        state.record(EntityKind::Offer, self.offer, env, event.clone());
        vec![event]
    }
}

impl Write for OfferUpdate {
    fn write(&self, buf: &mut impl BufMut) {
        self.offer.write(buf);
        self.price_per_query.write(buf);
        match &self.endpoint {
            None => buf.put_u8(0),
            Some(e) => {
                buf.put_u8(1);
                write_str(e, buf);
            }
        }
        self.bond_top_up.write(buf);
    }
}

impl EncodeSize for OfferUpdate {
    fn encode_size(&self) -> usize {
        8 + self.price_per_query.encode_size()
            + 1
            + self.endpoint.as_deref().map_or(0, str_size)
            + 16
    }
}

impl Read for OfferUpdate {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, cfg: &Limits) -> Result<Self, CodecError> {
        let offer = u64::read_cfg(buf, &())?;
        let price_per_query = Option::<u128>::read_cfg(buf, &())?;
        let endpoint = match u8::read_cfg(buf, &())? {
            0 => None,
            1 => Some(read_str(buf, cfg.offer_endpoint_bytes_max)?),
            other => return Err(CodecError::InvalidEnum(other)),
        };
        Ok(Self {
            offer,
            price_per_query,
            endpoint,
            bond_top_up: u128::read_cfg(buf, &())?,
        })
    }
}
