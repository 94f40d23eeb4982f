//! `OfferCreate`: a provider offers a registered model for paid queries, locking a bond.
//!
//! The offer names two things: `model`, the registered (float) model whose lineage decides the
//! royalties, and `quant_hash`, the BLAKE3 of the `deai-infer` blob that answers. The ledger
//! cannot check that the blob is a faithful quantization of the model (that is float work off
//! the ledger): the offer *attests* the link, anyone can check it offline (the blob is public;
//! `deai model quantize` reproduces it, its accuracy on the task's revealed validation set is
//! measurable), and what a dispute enforces is the other link: every answer comes from exactly
//! the named blob, re-executed bit for bit. So the blob needs no `ModelRegister` of its own
//! (which only a task's creator may send, and which would give the blob a lineage of its own).
//! Anyone may offer any registered model, so several providers can compete on one.
//!
//! Checks: the model exists; `ops` (the blob's `QuantModel::ops`) is within `dispute_ops_max`, so
//! a dispute is bounded work; the bond is at least `offer_bond_min`; `royalty_bps` is at least
//! the floor of the model's training datasets ([`crate::State::royalty_floor`]). The royalty's
//! contributors are fixed here ([`crate::State::contributors_of`]).

use super::{Action, Env};
use crate::codec::{read_str, str_size, write_str};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{BPS_SCALE, Limits, Params};
use crate::state::{Offer, OfferStatus, State};
use crate::types::Digest;
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Offer a registered model for paid queries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferCreate {
    /// The registered model served.
    pub model: u64,
    /// BLAKE3 of the quantized blob that answers (`deai_infer::QuantModel::hash`).
    pub quant_hash: Digest,
    /// The blob's `deai_infer::QuantModel::ops` (`1..=dispute_ops_max`).
    pub ops: u64,
    /// Price of one query, base units (> 0).
    #[serde(with = "crate::types::amount")]
    pub price_per_query: u128,
    /// Bond locked from the sender's balance (≥ `offer_bond_min`).
    #[serde(with = "crate::types::amount")]
    pub bond: u128,
    /// Where queries go (a URL, at most `offer_endpoint_bytes_max` bytes).
    pub endpoint: String,
    /// Share of every claim paid to the model's contributors, basis points (≤ 10 000).
    pub royalty_bps: u32,
}

/// The stateless checks shared by offer creation and update.
pub(crate) fn check_price_endpoint(
    price: u128,
    endpoint: &str,
    params: &Params,
) -> Result<(), TxError> {
    TxError::positive("price_per_query", price)?;
    TxError::limit(
        "endpoint",
        endpoint.len(),
        params.offer_endpoint_bytes_max as usize,
    )
}

impl Action for OfferCreate {
    fn check(&self, params: &Params) -> Result<(), TxError> {
        check_price_endpoint(self.price_per_query, &self.endpoint, params)?;
        TxError::positive("ops", u128::from(self.ops))?;
        if self.ops > params.dispute_ops_max {
            return Err(TxError::DisputeTooCostly {
                ops: self.ops,
                max: params.dispute_ops_max,
            });
        }
        if self.bond < params.offer_bond_min.max(1) {
            return Err(TxError::InvalidField {
                field: "bond".into(),
                reason: format!(
                    "{} is below offer_bond_min {}",
                    self.bond, params.offer_bond_min
                ),
            });
        }
        if self.royalty_bps > BPS_SCALE {
            return Err(TxError::InvalidField {
                field: "royalty_bps".into(),
                reason: format!("{} basis points is above the whole", self.royalty_bps),
            });
        }
        Ok(())
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        state.model_checked(self.model)?;
        state.require_unblocked(crate::state::BlockTarget::Model(self.model))?;
        state.require_royalty_floor(self.model, self.royalty_bps)?;
        state.require_funds(env, self.bond)?;
        state.next_id(EntityKind::Offer).map(|_| ())
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        let id = state
            .next_id(EntityKind::Offer)
            .expect("validated: id available");
        state.debit(&env.sender, self.bond);
        let contributors = state.contributors_of(self.model);
        state.insert_offer(Offer {
            id,
            provider: env.sender,
            model: self.model,
            quant_hash: self.quant_hash,
            ops: self.ops,
            price_per_query: self.price_per_query,
            bond: self.bond,
            endpoint: self.endpoint.clone(),
            royalty_bps: self.royalty_bps,
            contributors,
            status: OfferStatus::Active,
            created_height: env.height,
            release_height: None,
            history_root: Digest::default(),
            history: Vec::new(),
        });
        let event = Event::OfferCreated {
            id,
            model: self.model,
            provider: env.sender,
            bond: self.bond,
        };
        state.record(EntityKind::Offer, id, env, event.clone());
        state.record(EntityKind::Model, self.model, env, event.clone());
        vec![event]
    }
}

impl Write for OfferCreate {
    fn write(&self, buf: &mut impl BufMut) {
        self.model.write(buf);
        self.quant_hash.write(buf);
        self.ops.write(buf);
        self.price_per_query.write(buf);
        self.bond.write(buf);
        write_str(&self.endpoint, buf);
        self.royalty_bps.write(buf);
    }
}

impl EncodeSize for OfferCreate {
    fn encode_size(&self) -> usize {
        8 + 32 + 8 + 16 + 16 + str_size(&self.endpoint) + 4
    }
}

impl Read for OfferCreate {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, cfg: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            model: u64::read_cfg(buf, &())?,
            quant_hash: Digest::read_cfg(buf, &())?,
            ops: u64::read_cfg(buf, &())?,
            price_per_query: u128::read_cfg(buf, &())?,
            bond: u128::read_cfg(buf, &())?,
            endpoint: read_str(buf, cfg.offer_endpoint_bytes_max)?,
            royalty_bps: u32::read_cfg(buf, &())?,
        })
    }
}
