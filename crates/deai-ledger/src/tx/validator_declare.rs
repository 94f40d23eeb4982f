//! `ValidatorDeclare`: name the consensus key (and p2p address) the sender's stake validates
//! with. The key proves possession by signing the sender's address, so nobody can declare a key
//! another operator holds (which would let them block it from the set).

use super::{Action, Env};
use crate::codec::{read_str, str_size, write_str};
use crate::error::TxError;
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::{State, ValidatorKey};
use crate::types::Address;
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use ed25519_dalek::Signer as _;
use serde::{Deserialize, Serialize};

/// Prefix of the possession signature, so it can never be replayed as another message.
pub const POSSESSION_DOMAIN: &[u8] = b"deai/validator-key/v1";

/// Declare (or replace) the sender's validator key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorDeclare {
    /// The ed25519 consensus key.
    pub key: Address,
    /// The node's p2p address, `ip:port` (empty: peers know it from their own configuration).
    pub p2p: String,
    /// The key's signature over [`POSSESSION_DOMAIN`] || chain id || sender address.
    #[serde(with = "crate::types::hex_sig")]
    pub possession: [u8; 64],
}

impl ValidatorDeclare {
    /// The bytes the possession signature covers.
    pub fn possession_message(chain_id: &str, account: &Address) -> Vec<u8> {
        let mut out = Vec::with_capacity(POSSESSION_DOMAIN.len() + chain_id.len() + 40);
        out.extend_from_slice(POSSESSION_DOMAIN);
        write_str(chain_id, &mut out);
        out.extend_from_slice(&account.0);
        out
    }

    /// A declaration of `node_key` for `account` on chain `chain_id`.
    pub fn new(
        chain_id: &str,
        account: &Address,
        node_key: &ed25519_dalek::SigningKey,
        p2p: String,
    ) -> Self {
        let possession = node_key
            .sign(&Self::possession_message(chain_id, account))
            .to_bytes();
        Self {
            key: Address::from_key(&node_key.verifying_key()),
            p2p,
            possession,
        }
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> TxError {
    TxError::InvalidField {
        field: field.to_string(),
        reason: reason.into(),
    }
}

impl Action for ValidatorDeclare {
    fn check(&self, params: &Params) -> Result<(), TxError> {
        TxError::limit("p2p", self.p2p.len(), params.string_bytes_max as usize)?;
        if !self.p2p.is_empty() && self.p2p.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid("p2p", "not an ip:port address"));
        }
        ed25519_dalek::VerifyingKey::from_bytes(&self.key.0)
            .map_err(|_| invalid("key", "not an ed25519 public key"))?;
        Ok(())
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        state.require_unblocked(crate::state::BlockTarget::Validator(env.sender))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&self.key.0)
            .map_err(|_| invalid("key", "not an ed25519 public key"))?;
        let message = Self::possession_message(state.chain_id(), &env.sender);
        key.verify_strict(
            &message,
            &ed25519_dalek::Signature::from_bytes(&self.possession),
        )
        .map_err(|_| {
            invalid(
                "possession",
                "the key did not sign this account's declaration",
            )
        })?;
        match state.validator_account(&self.key) {
            Some(account) if account != env.sender => Err(TxError::ValidatorKeyTaken {
                key: self.key,
                account,
            }),
            _ => Ok(()),
        }
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        state.declare_validator(
            &env.sender,
            ValidatorKey {
                key: self.key,
                p2p: self.p2p.clone(),
            },
        );
        vec![Event::ValidatorDeclared {
            account: env.sender,
            key: self.key,
        }]
    }
}

impl Write for ValidatorDeclare {
    fn write(&self, buf: &mut impl BufMut) {
        self.key.write(buf);
        write_str(&self.p2p, buf);
        buf.put_slice(&self.possession);
    }
}

impl EncodeSize for ValidatorDeclare {
    fn encode_size(&self) -> usize {
        32 + str_size(&self.p2p) + 64
    }
}

impl Read for ValidatorDeclare {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, cfg: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            key: Address::read_cfg(buf, &())?,
            p2p: read_str(buf, cfg.string_bytes_max)?,
            possession: <[u8; 64]>::read_cfg(buf, &())?,
        })
    }
}
