//! Accounts: balance, nonce, stake and unbonding entries of one ed25519 key.

use crate::types::Address;
use bytes::BufMut;
use commonware_codec::Write;
use serde::{Deserialize, Serialize};

/// Stake on its way back to the balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unbonding {
    /// Amount.
    #[serde(with = "crate::types::amount")]
    pub amount: u128,
    /// The first height at whose start the amount returns to the balance.
    pub release_height: u64,
}

/// One account. A never-seen address is the default (all zero).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The key.
    pub address: Address,
    /// Spendable funds.
    #[serde(with = "crate::types::amount")]
    pub balance: u128,
    /// The nonce the next transaction must carry.
    pub nonce: u64,
    /// Locked stake.
    #[serde(with = "crate::types::amount")]
    pub staked: u128,
    /// Stake being released, oldest first.
    pub unbonding: Vec<Unbonding>,
    /// The declared validator key, if any (see [`super::validators`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validator: Option<super::ValidatorKey>,
}

impl Account {
    /// An empty account for `address`.
    pub fn new(address: Address) -> Self {
        Self {
            address,
            ..Self::default()
        }
    }

    /// Sum of the unbonding entries.
    pub fn unbonding_total(&self) -> u128 {
        self.unbonding.iter().map(|u| u.amount).sum()
    }

    /// The committed bytes of this account (the value of its state-tree leaf).
    pub fn leaf_value(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + 16 + 8 + 16 + 4 + self.unbonding.len() * 24);
        self.address.write(&mut out);
        self.balance.write(&mut out);
        self.nonce.write(&mut out);
        self.staked.write(&mut out);
        self.unbonding.len().write(&mut out);
        for u in &self.unbonding {
            u.amount.write(&mut out);
            out.put_u64(u.release_height);
        }
        // Absent adds nothing, so an undeclared account's leaf is what it was before
        // declarations existed; the unbonding list is length-prefixed, so this stays unambiguous.
        if let Some(v) = &self.validator {
            v.write(&mut out);
        }
        out
    }
}
