//! Transactions: the signed envelope ([`SignedTx`], [`Tx`]), its canonical encoding, and the
//! [`TxBody`] enum with one module per transaction kind.
//!
//! # Canonical encoding
//!
//! `SignedTx = Tx || signature[64]`, `Tx = chain_id(len-prefixed UTF-8) || sender[32] ||
//! nonce(u64 BE) || fee(u128 BE) || tag(u8) || body`. A transaction is at most
//! [`Params::tx_bytes_max`] bytes, except a `ReceiptDispute`, which carries a model blob and an
//! input and may reach [`Params::dispute_tx_bytes_max`] ([`Limits::tx_bytes_max`] is the larger,
//! the bound of a length prefix in a block). Lengths are canonical varints, so every value
//! has exactly one encoding and `decode(encode(x)) == x`, `encode(decode(b)) == b`. The
//! signature covers [`SIGNING_DOMAIN`] followed by the `Tx` encoding; the id is BLAKE3 of the whole
//! `SignedTx` encoding.
//!
//! # Adding a transaction
//!
//! 1. Write `src/tx/<name>.rs` with the body struct, its codec (`Write`, `EncodeSize`,
//!    `Read<Cfg = Limits>`) and an [`Action`] impl (`check` against params, `validate` against
//!    state without mutating, `apply` that cannot fail).
//! 2. Add one variant to [`TxBody`] and one line in each of the `tx_bodies!` arms below (tag,
//!    variant, type). Tags are never reused.
//!
//! Nothing else changes: signing, ids, fees, nonces, receipts and the state root are generic.

mod challenge_vote;
mod channel_claim;
mod channel_close;
mod channel_open;
mod channel_top_up;
mod consent_revoke;
mod consent_update;
mod dataset_register;
mod delegate;
mod execute;
mod model_register;
mod offer_create;
mod offer_update;
mod offer_withdraw;
mod propose;
mod receipt_dispute;
mod round_challenge;
mod round_expire;
mod round_open;
mod round_result;
mod stake;
mod task_cancel;
mod task_close;
mod task_commit_validation;
mod task_create;
mod task_set_coordinator;
mod transfer;
mod unstake;
mod validator_declare;
mod vote;

pub use challenge_vote::ChallengeVote;
pub use channel_claim::ChannelClaim;
pub use channel_close::ChannelClose;
pub use channel_open::ChannelOpen;
pub use channel_top_up::ChannelTopUp;
pub use consent_revoke::ConsentRevoke;
pub use consent_update::ConsentUpdate;
pub use dataset_register::{DatasetRegister, dataset_commitment};
pub use delegate::{Delegate, Undelegate};
pub use execute::Execute;
pub use model_register::ModelRegister;
pub use offer_create::OfferCreate;
pub use offer_update::OfferUpdate;
pub use offer_withdraw::OfferWithdraw;
pub use propose::Propose;
pub use receipt_dispute::ReceiptDispute;
pub use round_challenge::RoundChallenge;
pub use round_expire::RoundExpire;
pub use round_open::RoundOpen;
pub use round_result::RoundResult;
pub use stake::Stake;
pub use task_cancel::TaskCancel;
pub use task_close::TaskClose;
pub(crate) use task_close::payouts;
pub use task_commit_validation::{TaskCommitValidation, validation_commitment};
pub use task_create::TaskCreate;
pub use task_set_coordinator::TaskSetCoordinator;
pub use transfer::Transfer;
pub use unstake::Unstake;
pub use validator_declare::{POSSESSION_DOMAIN, ValidatorDeclare};
pub use vote::Vote;

use crate::codec::{read_str, str_size, write_str};
use crate::error::{DecodeError, TxError};
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::State;
use crate::types::{Address, Digest, TxId};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{Decode, Encode, EncodeSize, Error as CodecError, Read, Write};
use ed25519_dalek::{Signer, Verifier};
use serde::{Deserialize, Serialize};

/// Prefix of every signed message, so a tx signature can never be replayed as another protocol's.
pub const SIGNING_DOMAIN: &[u8] = b"deai/tx/v1";

/// What a transaction's body sees while it runs: who sent it, the fee reserved, where it is.
#[derive(Clone, Copy, Debug)]
pub struct Env {
    /// The signer.
    pub sender: Address,
    /// The fee already reserved from the sender's balance (not spendable by the body).
    pub fee: u128,
    /// The height of the block being applied.
    pub height: u64,
    /// The transaction's id.
    pub tx_id: TxId,
    /// The randomness of the block being applied ([`crate::Block::beacon`]); all zero when a
    /// transaction is checked for admission, so no `validate` may depend on it.
    pub beacon: Digest,
}

/// The behaviour every transaction body implements.
///
/// Contract: `validate` returning `Ok` guarantees `apply` succeeds on the same state; `apply`
/// is only called right after a successful `validate`, so a rejected transaction changes nothing.
pub trait Action {
    /// Checks that need only the parameters (lengths, positive amounts).
    fn check(&self, params: &Params) -> Result<(), TxError>;
    /// Checks against the current state, without changing it.
    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError>;
    /// The state change. Returns the events it produced.
    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event>;
}

/// The unsigned transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tx {
    /// The chain this transaction is for.
    pub chain_id: String,
    /// The signer, who pays the fee.
    pub sender: Address,
    /// Must equal the sender's next nonce.
    pub nonce: u64,
    /// Paid to the block proposer.
    #[serde(with = "crate::types::amount")]
    pub fee: u128,
    /// What the transaction does.
    pub body: TxBody,
}

/// A transaction with its ed25519 signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTx {
    /// The signed content.
    pub tx: Tx,
    /// ed25519 signature over [`SIGNING_DOMAIN`] || `tx` encoding.
    #[serde(with = "crate::types::hex_sig")]
    pub signature: [u8; 64],
}

macro_rules! tx_bodies {
    ($($tag:literal => $variant:ident($ty:ty), $doc:literal;)*) => {
        /// The body of a transaction: one variant per kind, one module per kind.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        pub enum TxBody {
            $(#[doc = $doc] $variant($ty),)*
        }

        impl TxBody {
            /// The wire tag of this kind.
            pub fn tag(&self) -> u8 {
                match self { $(Self::$variant(_) => $tag,)* }
            }

            /// A short snake-case name of the kind.
            pub fn kind(&self) -> &'static str {
                match self { $(Self::$variant(_) => stringify!($variant),)* }
            }

            pub(crate) fn action(&self) -> &dyn Action {
                match self { $(Self::$variant(b) => b,)* }
            }
        }

        impl Write for TxBody {
            fn write(&self, buf: &mut impl BufMut) {
                buf.put_u8(self.tag());
                match self { $(Self::$variant(b) => b.write(buf),)* }
            }
        }

        impl EncodeSize for TxBody {
            fn encode_size(&self) -> usize {
                1 + match self { $(Self::$variant(b) => b.encode_size(),)* }
            }
        }

        impl Read for TxBody {
            type Cfg = Limits;
            fn read_cfg(buf: &mut impl Buf, cfg: &Limits) -> Result<Self, CodecError> {
                let tag = u8::read_cfg(buf, &())?;
                match tag {
                    $($tag => Ok(Self::$variant(<$ty>::read_cfg(buf, cfg)?)),)*
                    other => Err(CodecError::InvalidEnum(other)),
                }
            }
        }
    };
}

tx_bodies! {
    0 => Transfer(Transfer), "Move funds to another account.";
    1 => Stake(Stake), "Lock funds as validator stake.";
    2 => Unstake(Unstake), "Start unbonding stake; funds return after the unbonding delay.";
    3 => DatasetRegister(DatasetRegister), "Register a dataset commitment with its consent policy.";
    4 => ConsentUpdate(ConsentUpdate), "Replace a dataset's consent policy (owner only).";
    5 => ConsentRevoke(ConsentRevoke), "Revoke a dataset's consent (owner only).";
    6 => TaskCreate(TaskCreate), "Create a training task, moving its reward into escrow.";
    7 => TaskCancel(TaskCancel), "Cancel a task and refund unspent escrow (creator only).";
    8 => ModelRegister(ModelRegister), "Register a model produced by a task.";
    9 => TaskSetCoordinator(TaskSetCoordinator), "Designate the address that runs a task's rounds (creator only).";
    10 => TaskCommitValidation(TaskCommitValidation), "Commit to a task's validation data before its first round (creator only).";
    11 => RoundOpen(RoundOpen), "Open a task's next round with its deterministic selection and DP spend (coordinator only).";
    12 => RoundResult(RoundResult), "Record a round's result and close it (coordinator only).";
    13 => TaskClose(TaskClose), "Close a task: reveal validation data; rewards, refund and the final model follow its challenge window.";
    14 => RoundExpire(RoundExpire), "Close a round past its deadline without a result as failed (anyone).";
    15 => ValidatorDeclare(ValidatorDeclare), "Declare the consensus key (and p2p address) the sender's stake validates with.";
    16 => OfferCreate(OfferCreate), "Offer a registered model's quantized blob for paid queries, locking a bond.";
    17 => OfferUpdate(OfferUpdate), "Change an active offer's price or endpoint, or add to its bond (provider only).";
    18 => OfferWithdraw(OfferWithdraw), "Withdraw an offer: no new channels; the bond returns after offer_unbond_blocks (provider only).";
    19 => ChannelOpen(ChannelOpen), "Open a payment channel to an offer's provider, locking a deposit until an expiry height.";
    20 => ChannelTopUp(ChannelTopUp), "Add to a channel's deposit or extend its expiry (payer only).";
    21 => ChannelClaim(ChannelClaim), "Redeem a payer's cumulative voucher before the channel expires, paying royalties (provider only).";
    22 => ChannelClose(ChannelClose), "Close a channel and refund the unclaimed deposit (payer after expiry, or provider).";
    23 => ReceiptDispute(ReceiptDispute), "Dispute a signed query receipt: validators re-execute it and slash a wrong provider's bond (anyone).";
    24 => RoundChallenge(RoundChallenge), "Challenge one claim of a round's result, locking a deposit; validators re-check it and vote (anyone).";
    25 => ChallengeVote(ChallengeVote), "Vote on a pending round challenge (validators of its epoch).";
    26 => Propose(Propose), "Put a parameter change, an ethics block or a treasury spend to a stake-weighted vote, locking a deposit.";
    27 => Vote(Vote), "Vote yes, no, abstain or veto on an open proposal (stake at its start only).";
    28 => Execute(Execute), "Carry out a passed proposal after its timelock (anyone).";
    29 => Delegate(Delegate), "Bond stake to a validator without running a node.";
    30 => Undelegate(Undelegate), "Start unbonding a delegation; the funds return after the unbonding delay.";
}

impl Write for Tx {
    fn write(&self, buf: &mut impl BufMut) {
        write_str(&self.chain_id, buf);
        self.sender.write(buf);
        self.nonce.write(buf);
        self.fee.write(buf);
        self.body.write(buf);
    }
}

impl EncodeSize for Tx {
    fn encode_size(&self) -> usize {
        str_size(&self.chain_id) + 32 + 8 + 16 + self.body.encode_size()
    }
}

impl Read for Tx {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, cfg: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            chain_id: read_str(buf, cfg.chain_id_bytes_max)?,
            sender: Address::read_cfg(buf, &())?,
            nonce: u64::read_cfg(buf, &())?,
            fee: u128::read_cfg(buf, &())?,
            body: TxBody::read_cfg(buf, cfg)?,
        })
    }
}

impl Write for SignedTx {
    fn write(&self, buf: &mut impl BufMut) {
        self.tx.write(buf);
        buf.put_slice(&self.signature);
    }
}

impl EncodeSize for SignedTx {
    fn encode_size(&self) -> usize {
        self.tx.encode_size() + 64
    }
}

impl Read for SignedTx {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, cfg: &Limits) -> Result<Self, CodecError> {
        // Bound the whole transaction before reading any field.
        let start = buf.remaining();
        let tx = Tx::read_cfg(buf, cfg)?;
        let signature = <[u8; 64]>::read_cfg(buf, &())?;
        let size = start - buf.remaining();
        let max = match tx.body {
            TxBody::ReceiptDispute(_) => cfg.tx_bytes_max,
            _ => cfg.tx_standard_bytes_max,
        };
        if size > max {
            return Err(CodecError::Invalid("SignedTx", "larger than tx_bytes_max"));
        }
        Ok(Self { tx, signature })
    }
}

impl Tx {
    /// The bytes the signature covers: [`SIGNING_DOMAIN`] || canonical encoding.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SIGNING_DOMAIN.len() + self.encode_size());
        out.extend_from_slice(SIGNING_DOMAIN);
        self.write(&mut out);
        out
    }
}

impl SignedTx {
    /// Sign `tx` with `key`. The caller sets `tx.sender` to the key's address.
    pub fn sign(tx: Tx, key: &ed25519_dalek::SigningKey) -> Self {
        let signature = key.sign(&tx.signing_bytes()).to_bytes();
        Self { tx, signature }
    }

    /// The transaction id: BLAKE3 of the canonical encoding.
    pub fn id(&self) -> TxId {
        Digest::hash(&self.encode())
    }

    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        Encode::encode(self).to_vec()
    }

    /// Decode canonical bytes, bounded by `params`; trailing bytes are an error.
    pub fn decode(bytes: &[u8], params: &Params) -> Result<Self, DecodeError> {
        Self::decode_limits(bytes, &params.limits())
    }

    /// [`Self::decode`] with precomputed limits.
    pub fn decode_limits(bytes: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
        if bytes.len() > limits.tx_bytes_max {
            return Err(DecodeError(CodecError::Invalid(
                "SignedTx",
                "larger than tx_bytes_max",
            )));
        }
        Ok(<Self as Decode>::decode_cfg(
            commonware_codec::Copying(bytes),
            limits,
        )?)
    }

    /// Check the signature alone (one-by-one; see [`crate::verify_signatures`] for batches).
    pub fn verify_signature(&self) -> Result<(), TxError> {
        let bad = || TxError::BadSignature {
            sender: self.tx.sender,
        };
        let key = ed25519_dalek::VerifyingKey::from_bytes(&self.tx.sender.0).map_err(|_| bad())?;
        let sig = ed25519_dalek::Signature::from_bytes(&self.signature);
        key.verify(&self.tx.signing_bytes(), &sig)
            .map_err(|_| bad())
    }
}
