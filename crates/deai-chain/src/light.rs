//! Light-client checks: what a node that runs no consensus needs to believe a validator's answer.
//!
//! Consensus finalizes a block's digest, and a block at height `h + 1` carries the state root after
//! height `h` (`parent_state_root`). So the root of height `h` is certified by block `h + 1`
//! together with its finalization certificate: finalize votes for that block's digest from a
//! quorum (2f + 1) of the validator set, signed under the chain's namespace. A [`Verifier`] holds
//! the set (from genesis) and checks both, with no runtime, network or state; an inclusion proof
//! against the certified root ([`deai_ledger::verify_proof`]) then vouches for one state entry.
//!
//! Threat model: every validator the client can reach may lie, but fewer than a third of the
//! validator set's voting keys are compromised (the consensus assumption itself). A forged block,
//! a block swapped under a real certificate, a certificate for another chain or signed by too few
//! or unknown keys, and a root that no certified block carries are all refused.
//!
//! A verifier starts from the genesis set and follows the recorded set changes epoch by epoch
//! ([`Verifier::follow`]): the set of epoch `e + 1` is a state entry chosen at the second-to-last
//! block of epoch `e`, so the last block of epoch `e`, finalized by the set of `e`, carries a root
//! that commits to it. Each new set is thus certified by the one before, back to genesis. A
//! certificate of an epoch the verifier has not followed yet is refused as
//! [`LightError::UnknownEpoch`], never guessed.

use crate::{
    block::{Block, BlockCfg, BlockDigest, digest_bytes},
    engine::FinalizationOf,
};
use commonware_codec::{Decode as _, Encode as _};
use commonware_consensus::{Epochable as _, simplex::scheme::ed25519::Scheme};
use commonware_cryptography::{Digestible as _, certificate::Verifier as _};
use commonware_parallel::Sequential;
use deai_ledger::{Digest, Genesis};
use rand_core_010::CryptoRng;
use std::collections::BTreeMap;

/// Why a light client refused what a validator sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LightError {
    /// The genesis does not name a usable validator set.
    #[error("the genesis names no usable validator set: {0}")]
    Genesis(String),
    /// The block bytes are not a block of this chain.
    #[error("the block does not decode: {0}")]
    BadBlock(String),
    /// The certificate bytes are not a finalization of this chain.
    #[error("the finalization certificate does not decode: {0}")]
    BadCertificate(String),
    /// The certificate is real but finalizes another block.
    #[error("the certificate finalizes block {certified}, not the block sent ({sent})")]
    OtherBlock {
        /// The digest the certificate finalizes.
        certified: Digest,
        /// The digest of the block that came with it.
        sent: Digest,
    },
    /// The certificate's signatures are not a quorum of this chain's validators.
    #[error(
        "the finalization certificate does not verify against the {validators} validators of chain {chain_id}"
    )]
    BadSignatures {
        /// The chain the verifier follows.
        chain_id: String,
        /// The size of its validator set.
        validators: usize,
    },
    /// A block of the chain sent is not the parent of the next one.
    #[error("the blocks sent do not chain: block {height} is not the parent of the next")]
    BrokenChain {
        /// The height of the block that does not link.
        height: u64,
    },
    /// The certificate belongs to an epoch whose set the verifier has not followed yet.
    #[error(
        "the certificate is from epoch {epoch}; this verifier knows the sets up to epoch {newest}"
    )]
    UnknownEpoch {
        /// The certificate's epoch.
        epoch: u64,
        /// The newest epoch whose set the verifier holds.
        newest: u64,
    },
    /// The certified block's height lies outside the certificate's epoch.
    #[error("block {height} is not in epoch {epoch}, whose set certified it")]
    WrongEpoch {
        /// The block's height.
        height: u64,
        /// The certificate's epoch.
        epoch: u64,
    },
    /// A set change that does not check out: not the next epoch, or a proof of another entry.
    #[error("set change to epoch {epoch} refused: {reason}")]
    BadSetChange {
        /// The epoch the change claims.
        epoch: u64,
        /// Why.
        reason: String,
    },
    /// The block is at another height than the one asked for.
    #[error("the certified block is at height {got}, not {want}")]
    WrongHeight {
        /// The height asked for.
        want: u64,
        /// The block's height.
        got: u64,
    },
}

/// Checks finalized blocks of one chain against its validator sets.
pub struct Verifier {
    chain_id: String,
    namespace: Vec<u8>,
    params: deai_ledger::Params,
    /// epoch → (its certificate verifier, how many validators).
    sets: BTreeMap<u64, (Scheme, usize)>,
    block_cfg: BlockCfg,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("chain_id", &self.chain_id)
            .field("epochs", &self.sets.len())
            .finish()
    }
}

impl Verifier {
    /// A verifier of the chain `genesis` starts, trusting its validator set (epoch 0).
    pub fn new(genesis: &Genesis) -> Result<Self, LightError> {
        let state = deai_ledger::State::from_genesis(genesis)
            .map_err(|e| LightError::Genesis(e.to_string()))?;
        let set = state
            .validator_set(0)
            .ok_or_else(|| LightError::Genesis("no validators".into()))?;
        let namespace = crate::config::namespace(&genesis.chain_id);
        let scheme = scheme_of(&namespace, set).map_err(LightError::Genesis)?;
        Ok(Self {
            chain_id: genesis.chain_id.clone(),
            namespace,
            params: genesis.params.clone(),
            sets: BTreeMap::from([(0, (scheme, set.members.len()))]),
            block_cfg: BlockCfg::from_params(&genesis.params),
        })
    }

    /// The newest epoch whose set this verifier holds.
    pub fn newest_epoch(&self) -> u64 {
        self.sets.keys().next_back().copied().unwrap_or(0)
    }

    /// Accepts the set of the epoch after [`Self::newest_epoch`]: `set` must be proven by `proof`
    /// under the root after the block that chose it, which the previous epoch's last block (the
    /// first of `chain`, certified by `finalization` under the set this verifier holds)
    /// carries. Returns the new epoch.
    pub fn follow(
        &mut self,
        rng: &mut impl CryptoRng,
        set: &deai_ledger::ValidatorSet,
        proof: &deai_ledger::Proof,
        chain: &[Vec<u8>],
        finalization: &[u8],
    ) -> Result<u64, LightError> {
        let epoch = self.newest_epoch() + 1;
        let bad = |reason: String| LightError::BadSetChange { epoch, reason };
        if set.epoch != epoch || proof.key != deai_ledger::StateKey::Epoch(epoch) {
            return Err(bad(format!(
                "it is the set of epoch {} (proof of {}), not the next one",
                set.epoch, proof.key
            )));
        }
        let chooser = self
            .params
            .epoch_last(epoch - 1)
            .and_then(|h| h.checked_sub(1))
            .ok_or_else(|| bad("no such epoch".into()))?;
        let root = self.certified_root(rng, chooser, chain, finalization)?;
        deai_ledger::verify_entry(&root, proof, set).map_err(|e| bad(e.to_string()))?;
        let scheme = scheme_of(&self.namespace, set).map_err(bad)?;
        self.sets.insert(epoch, (scheme, set.members.len()));
        Ok(epoch)
    }

    /// The chain this verifier follows.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// Checks that the encoded `finalization` is a quorum certificate of this chain finalizing
    /// the encoded `block`; returns the block. Batch verification draws its coefficients from
    /// `rng`: give it one seeded by the OS, so that whoever crafted the signatures cannot
    /// predict them (this crate takes randomness only from its caller or the runtime).
    pub fn finalized_block(
        &self,
        rng: &mut impl CryptoRng,
        block: &[u8],
        finalization: &[u8],
    ) -> Result<Block, LightError> {
        let block = Block::decode_cfg(block.to_vec(), &self.block_cfg)
            .map_err(|e| LightError::BadBlock(e.to_string()))?;
        let finalization = FinalizationOf::decode_cfg(
            finalization.to_vec(),
            &Scheme::certificate_codec_config_unbounded(),
        )
        .map_err(|e| LightError::BadCertificate(e.to_string()))?;
        let sent: BlockDigest = block.digest();
        let epoch = finalization.epoch().get();
        let Some((scheme, validators)) = self.sets.get(&epoch) else {
            return Err(LightError::UnknownEpoch {
                epoch,
                newest: self.newest_epoch(),
            });
        };
        if self.params.epoch_of(block.height) != epoch {
            return Err(LightError::WrongEpoch {
                height: block.height,
                epoch,
            });
        }
        if finalization.proposal.payload != sent {
            return Err(LightError::OtherBlock {
                certified: digest_bytes(&finalization.proposal.payload),
                sent: digest_bytes(&sent),
            });
        }
        if !finalization.verify(rng, scheme, &Sequential) {
            return Err(LightError::BadSignatures {
                chain_id: self.chain_id.clone(),
                validators: *validators,
            });
        }
        Ok(block)
    }

    /// The state root after `height`: the parent state root of block `height + 1`, the first of
    /// the encoded `chain` of consecutive blocks whose last one the encoded `finalization`
    /// certifies. Usually the chain is that one block; a block that finalized only through a
    /// descendant (consensus skipped its own finalization) is certified by the descendant's
    /// certificate and the parent links between them.
    pub fn certified_root(
        &self,
        rng: &mut impl CryptoRng,
        height: u64,
        chain: &[Vec<u8>],
        finalization: &[u8],
    ) -> Result<Digest, LightError> {
        let Some((last, below)) = chain.split_last() else {
            return Err(LightError::BadBlock("no blocks sent".into()));
        };
        if chain.len() > CHAIN_BLOCKS_MAX {
            return Err(LightError::BadBlock(format!(
                "{} blocks sent, at most {CHAIN_BLOCKS_MAX}",
                chain.len()
            )));
        }
        let mut child = self.finalized_block(rng, last, finalization)?;
        for bytes in below.iter().rev() {
            let block = Block::decode_cfg(bytes.clone(), &self.block_cfg)
                .map_err(|e| LightError::BadBlock(e.to_string()))?;
            if block.digest() != child.parent || block.height.checked_add(1) != Some(child.height) {
                return Err(LightError::BrokenChain {
                    height: block.height,
                });
            }
            child = block;
        }
        let want = height.saturating_add(1);
        if child.height != want {
            return Err(LightError::WrongHeight {
                want,
                got: child.height,
            });
        }
        Ok(child.parent_state_root)
    }
}

/// The certificate verifier of `set`.
fn scheme_of(namespace: &[u8], set: &deai_ledger::ValidatorSet) -> Result<Scheme, String> {
    let participants = crate::epochs::participants(set).map_err(|e| e.to_string())?;
    Ok(Scheme::verifier(namespace, participants))
}

/// Most blocks between a height and the certificate that finalizes it that a verifier follows.
pub const CHAIN_BLOCKS_MAX: usize = 64;

/// Encodes `finalization` for the wire (what [`Verifier::finalized_block`] decodes).
pub(crate) fn encode_finalization(finalization: &FinalizationOf) -> Vec<u8> {
    finalization.encode().to_vec()
}
