//! Inference offers: a provider serves a registered model's quantized blob at a price per query,
//! behind a bond it loses if a dispute shows a wrong answer.
//!
//! Life cycle: `Active` (channels open, claims paid) → `Withdrawn` by its provider (no new
//! channels; existing channels keep being claimed until they expire; the bond stays until
//! `release_height` so every receipt can still be disputed, then returns at the start of that
//! block) or → `Suspended` by a won dispute (bond slashed, no claims, no new channels; final).
//!
//! Invariants: `bond` is locked (counted in [`crate::SupplyReport::bonds`]) until slashed or
//! released, then 0; `release_height` is set iff the offer was withdrawn; `contributors` is fixed
//! at creation, ascending by dataset, every weight positive.

use super::State;
use crate::codec::{write_list, write_str};
use crate::error::{EntityKind, TxError};
use crate::event::HistoryEntry;
use crate::proof::StateKey;
use crate::types::{Address, Digest};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Where an offer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferStatus {
    /// Serving: channels may open, claims are paid.
    Active,
    /// Lost a dispute: bond slashed, nothing more is paid (final).
    Suspended,
    /// Withdrawn by its provider: no new channels; the bond returns at `release_height`.
    Withdrawn,
}

impl OfferStatus {
    fn code(self) -> u8 {
        match self {
            Self::Active => 0,
            Self::Suspended => 1,
            Self::Withdrawn => 2,
        }
    }

    /// The snake-case name (as in JSON).
    pub fn name(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Withdrawn => "withdrawn",
        }
    }
}

/// A dataset that trained an offer's model, and its royalty weight: its contribution scores
/// summed over the rounds of the model's task closed at or before the model's registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contributor {
    /// The dataset (its current owner is paid).
    pub dataset: u64,
    /// Summed scores, fixed point ([`crate::SCORE_SCALE`] per round).
    #[serde(with = "crate::types::amount")]
    pub weight: u128,
}

impl Write for Contributor {
    fn write(&self, buf: &mut impl BufMut) {
        self.dataset.write(buf);
        self.weight.write(buf);
    }
}

impl EncodeSize for Contributor {
    fn encode_size(&self) -> usize {
        8 + 16
    }
}

impl Read for Contributor {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            dataset: u64::read_cfg(buf, &())?,
            weight: u128::read_cfg(buf, &())?,
        })
    }
}

/// An inference offer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// Its id (from 1).
    pub id: u64,
    /// Who serves it, signs its receipts and is paid its claims.
    pub provider: Address,
    /// The registered model it serves (lineage, royalties).
    pub model: u64,
    /// BLAKE3 of the quantized model blob (`deai_infer::QuantModel::hash`) that answers.
    pub quant_hash: Digest,
    /// The blob's declared `deai_infer::QuantModel::ops`, at most `dispute_ops_max`.
    pub ops: u64,
    /// Price of one query, base units.
    #[serde(with = "crate::types::amount")]
    pub price_per_query: u128,
    /// Locked bond, base units (0 once slashed or released).
    #[serde(with = "crate::types::amount")]
    pub bond: u128,
    /// Where the provider answers queries (a URL).
    pub endpoint: String,
    /// Share of every claim paid to the contributors, basis points.
    pub royalty_bps: u32,
    /// Who earns the royalty, ascending by dataset; empty pays the royalty to the provider.
    pub contributors: Vec<Contributor>,
    /// Where it stands.
    pub status: OfferStatus,
    /// Height of creation.
    pub created_height: u64,
    /// When withdrawn: the height at whose start the bond returns.
    pub release_height: Option<u64>,
    /// Hash chain over `history`.
    pub history_root: Digest,
    /// Everything that happened to this offer (claims are in block receipts).
    pub history: Vec<HistoryEntry>,
}

impl Offer {
    /// The committed bytes (the state-tree leaf value): every field but the history itself,
    /// which `history_root` commits to.
    pub fn leaf_value(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.endpoint.len() + self.contributors.len() * 24);
        self.id.write(&mut out);
        self.provider.write(&mut out);
        self.model.write(&mut out);
        self.quant_hash.write(&mut out);
        self.ops.write(&mut out);
        self.price_per_query.write(&mut out);
        self.bond.write(&mut out);
        write_str(&self.endpoint, &mut out);
        self.royalty_bps.write(&mut out);
        write_list(&self.contributors, &mut out);
        out.push(self.status.code());
        self.created_height.write(&mut out);
        self.release_height.write(&mut out);
        self.history_root.write(&mut out);
        out
    }
}

impl State {
    /// An offer by id.
    pub fn offer(&self, id: u64) -> Option<&Offer> {
        self.offers.get(&id)
    }

    /// All offers by id.
    pub fn offers(&self) -> impl Iterator<Item = &Offer> {
        self.offers.values()
    }

    /// The offers serving model `model`, by id.
    pub fn offers_by_model(&self, model: u64) -> impl Iterator<Item = &Offer> {
        self.offers.values().filter(move |o| o.model == model)
    }

    /// The offers of provider `provider`, by id.
    pub fn offers_by_provider<'a>(
        &'a self,
        provider: &'a Address,
    ) -> impl Iterator<Item = &'a Offer> + 'a {
        self.offers
            .values()
            .filter(move |o| o.provider == *provider)
    }

    pub(crate) fn offer_checked(&self, id: u64) -> Result<&Offer, TxError> {
        self.offers.get(&id).ok_or(TxError::UnknownId {
            kind: EntityKind::Offer,
            id,
        })
    }

    /// Err unless `sender` is the offer's provider.
    pub(crate) fn require_provider(offer: &Offer, sender: &Address) -> Result<(), TxError> {
        if offer.provider != *sender {
            return Err(TxError::NotOwner {
                kind: EntityKind::Offer,
                id: offer.id,
                owner: offer.provider,
                sender: *sender,
            });
        }
        Ok(())
    }

    /// Err unless the offer is active.
    pub(crate) fn require_active(offer: &Offer) -> Result<(), TxError> {
        if offer.status != OfferStatus::Active {
            return Err(TxError::OfferNotActive {
                offer: offer.id,
                status: offer.status.name().into(),
            });
        }
        Ok(())
    }

    pub(crate) fn offer_mut(&mut self, id: u64) -> &mut Offer {
        self.dirty.insert(StateKey::Offer(id));
        self.offers.get_mut(&id).expect("validated: offer exists")
    }

    pub(crate) fn insert_offer(&mut self, o: Offer) {
        self.dirty.insert(StateKey::Offer(o.id));
        self.offers.insert(o.id, o);
    }

    /// Schedules the bond of withdrawn offer `id` to return at the start of `release_height`.
    pub(crate) fn queue_offer_release(&mut self, release_height: u64, id: u64) {
        self.offer_release_queue
            .entry(release_height)
            .or_default()
            .insert(id);
    }

    /// Returns the bond of every withdrawn offer whose release height is at or before `height`
    /// to its provider (bonds slashed in between are already 0 and return nothing).
    pub(crate) fn release_offer_bonds(&mut self, height: u64) -> Vec<crate::Event> {
        let later = self
            .offer_release_queue
            .split_off(&height.saturating_add(1));
        let due = std::mem::replace(&mut self.offer_release_queue, later);
        let mut events = Vec::new();
        for id in due.into_values().flatten() {
            let offer = self.offer_mut(id);
            let amount = std::mem::take(&mut offer.bond);
            let provider = offer.provider;
            if amount == 0 {
                continue;
            }
            self.credit(&provider, amount);
            events.push(crate::Event::OfferBondReleased {
                offer: id,
                provider,
                amount,
            });
        }
        events
    }
}
