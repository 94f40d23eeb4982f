//! Payment channels: a payer's deposit for one offer, paid out to the provider by cumulative
//! vouchers the payer signs off-chain ([`crate::payment`]).
//!
//! Life cycle: `ChannelOpen` locks the deposit (offer active, expiry at most
//! `channel_expiry_max` ahead) → any number of `ChannelClaim`s by the provider while
//! `height ≤ expiry_height`, each paying `voucher − claimed` → `ChannelClose`: by the payer once
//! `height > expiry_height` (or at once if the offer was suspended by a dispute), or by the
//! provider at any time (ending its own claims); the payer gets `deposit − claimed` back.
//! `ChannelTopUp` adds deposit or extends the expiry while the offer is active. Receipts of the
//! channel may be disputed until `expiry_height + dispute_window_blocks`, closed or not.
//!
//! Invariants: `claimed ≤ deposit`; an open channel locks `deposit − claimed` (counted in
//! [`crate::SupplyReport::channels`]), a closed one nothing; `disputed` is ascending and
//! holds each disputed receipt sequence once.

use super::State;
use crate::codec::write_list;
use crate::error::{EntityKind, TxError};
use crate::payment::SignedVoucher;
use crate::proof::StateKey;
use crate::state::OfferStatus;
use crate::types::Address;
use commonware_codec::Write;
use serde::{Deserialize, Serialize};

/// Where a channel stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelStatus {
    /// Deposit locked; the provider may claim until expiry.
    Open,
    /// Remainder refunded; nothing more is paid.
    Closed,
}

/// A payment channel from a payer to an offer's provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    /// Its id (from 1).
    pub id: u64,
    /// The offer it pays for.
    pub offer: u64,
    /// Who deposited and signs the vouchers.
    pub payer: Address,
    /// Who claims (the offer's provider).
    pub provider: Address,
    /// Everything deposited so far, base units.
    #[serde(with = "crate::types::amount")]
    pub deposit: u128,
    /// Everything claimed so far (the highest voucher redeemed), base units.
    #[serde(with = "crate::types::amount")]
    pub claimed: u128,
    /// Last height at which the provider may claim.
    pub expiry_height: u64,
    /// Height of the `ChannelOpen`.
    pub opened_height: u64,
    /// Where it stands.
    pub status: ChannelStatus,
    /// Receipt sequences already disputed, ascending.
    pub disputed: Vec<u64>,
}

impl Channel {
    /// What the channel still locks: `deposit − claimed` while open, 0 once closed.
    pub fn locked(&self) -> u128 {
        match self.status {
            ChannelStatus::Open => self.deposit - self.claimed,
            ChannelStatus::Closed => 0,
        }
    }

    /// What a claim of `voucher` at `height` would pay (before royalties), checking every term
    /// but the payer's signature ([`Self::voucher_signed`]): the channel is open and not
    /// expired, its offer (in `offer_status`) not suspended, the voucher names `chain_id` and
    /// this channel, and its amount is above what was claimed and within the deposit. A
    /// provider runs this on every query and the signature check only on a voucher it has not
    /// seen.
    pub fn voucher_terms(
        &self,
        chain_id: &str,
        offer_status: OfferStatus,
        voucher: &SignedVoucher,
        height: u64,
    ) -> Result<u128, TxError> {
        let channel = self.id;
        if self.status != ChannelStatus::Open {
            return Err(TxError::ChannelNotOpen { channel });
        }
        if height > self.expiry_height {
            return Err(TxError::ChannelExpired {
                channel,
                expiry_height: self.expiry_height,
                height,
            });
        }
        if offer_status == OfferStatus::Suspended {
            return Err(TxError::OfferNotActive {
                offer: self.offer,
                status: offer_status.name().into(),
            });
        }
        let v = &voucher.voucher;
        if v.chain_id != chain_id {
            return Err(TxError::WrongChainId {
                expected: chain_id.to_string(),
                got: v.chain_id.clone(),
            });
        }
        if v.channel_id != channel {
            return Err(TxError::InvalidField {
                field: "voucher.channel_id".into(),
                reason: format!("the voucher is for channel {}, not {channel}", v.channel_id),
            });
        }
        if v.cumulative_amount <= self.claimed {
            return Err(TxError::VoucherNotNewer {
                channel,
                amount: v.cumulative_amount,
                claimed: self.claimed,
            });
        }
        if v.cumulative_amount > self.deposit {
            return Err(TxError::VoucherOverdrawn {
                channel,
                amount: v.cumulative_amount,
                deposit: self.deposit,
            });
        }
        Ok(v.cumulative_amount - self.claimed)
    }

    /// Checks that the channel's payer signed `voucher`.
    pub fn voucher_signed(&self, voucher: &SignedVoucher) -> Result<(), TxError> {
        voucher
            .verify(&self.payer)
            .map_err(|_| TxError::VoucherBadSignature {
                channel: self.id,
                payer: self.payer,
            })
    }

    /// Last height at which its receipts may be disputed.
    pub fn dispute_deadline(&self, window: u64) -> u64 {
        self.expiry_height.saturating_add(window)
    }

    /// The committed bytes (the state-tree leaf value).
    pub fn leaf_value(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160 + self.disputed.len() * 8);
        self.id.write(&mut out);
        self.offer.write(&mut out);
        self.payer.write(&mut out);
        self.provider.write(&mut out);
        self.deposit.write(&mut out);
        self.claimed.write(&mut out);
        self.expiry_height.write(&mut out);
        self.opened_height.write(&mut out);
        out.push(match self.status {
            ChannelStatus::Open => 0,
            ChannelStatus::Closed => 1,
        });
        write_list(&self.disputed, &mut out);
        out
    }
}

impl State {
    /// A channel by id.
    pub fn channel(&self, id: u64) -> Option<&Channel> {
        self.channels.get(&id)
    }

    /// All channels by id.
    pub fn channels(&self) -> impl Iterator<Item = &Channel> {
        self.channels.values()
    }

    /// The channels paying for offer `offer`, by id.
    pub fn channels_by_offer(&self, offer: u64) -> impl Iterator<Item = &Channel> {
        self.channels.values().filter(move |c| c.offer == offer)
    }

    /// The channels `payer` opened, by id.
    pub fn channels_by_payer<'a>(
        &'a self,
        payer: &'a Address,
    ) -> impl Iterator<Item = &'a Channel> + 'a {
        self.channels.values().filter(move |c| c.payer == *payer)
    }

    /// What a `ChannelClaim` of `voucher` on channel `channel`, in a block at `height`, would pay
    /// the provider (before royalties), or why it would be refused: the channel is open and not
    /// expired, its offer not suspended, the voucher names this chain and this channel, is
    /// signed by the channel's payer, and its cumulative amount is above what was claimed and
    /// within the deposit. A provider checks a query's voucher with this against its replica
    /// (its own higher vouchers not yet claimed are its business).
    pub fn voucher_claimable(
        &self,
        channel: u64,
        voucher: &SignedVoucher,
        height: u64,
    ) -> Result<u128, TxError> {
        let c = self.channel_checked(channel)?;
        let offer = self.offer_checked(c.offer)?;
        let pays = c.voucher_terms(&self.chain_id, offer.status, voucher, height)?;
        // Last: the one check that costs a signature verification.
        c.voucher_signed(voucher)?;
        Ok(pays)
    }

    pub(crate) fn channel_checked(&self, id: u64) -> Result<&Channel, TxError> {
        self.channels.get(&id).ok_or(TxError::UnknownId {
            kind: EntityKind::Channel,
            id,
        })
    }

    pub(crate) fn channel_mut(&mut self, id: u64) -> &mut Channel {
        self.dirty.insert(StateKey::Channel(id));
        self.channels
            .get_mut(&id)
            .expect("validated: channel exists")
    }

    pub(crate) fn insert_channel(&mut self, c: Channel) {
        self.dirty.insert(StateKey::Channel(c.id));
        self.channels.insert(c.id, c);
    }
}
