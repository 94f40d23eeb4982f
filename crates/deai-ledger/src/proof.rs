//! State keys, inclusion proofs, and their light-client check [`verify_proof`].
//!
//! Every entry of the state is one leaf of a Merkle Mountain Range
//! (`commonware_storage::merkle::mmr`, BLAKE3, forward-bagged peaks): leaf element =
//! `key bytes || value bytes`, where the key bytes are fixed-length per kind, so the split is
//! unambiguous. A leaf's position never changes once assigned; updates overwrite it in place.
//! The state root is the MMR root. A [`Proof`] carries the key, the committed value bytes, the
//! leaf location and the sibling/peak digests; [`verify_proof`] recomputes the root.

use crate::error::ProofError;
use crate::types::{Address, Digest};
use commonware_cryptography::blake3::{Blake3, Digest as B3Digest};
use commonware_storage::merkle::{Bagging, MAX_PROOF_DIGESTS_PER_ELEMENT, mmr};
use serde::{Deserialize, Serialize};

/// The hasher of the state tree.
pub(crate) type TreeHasher = mmr::StandardHasher<Blake3>;

/// The hasher used for every state-tree operation.
pub(crate) fn tree_hasher() -> TreeHasher {
    TreeHasher::new(Bagging::ForwardFold)
}

/// Which entry of the state a leaf holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum StateKey {
    /// Chain-wide facts: chain id, parameters, genesis supply, fees paid.
    Meta,
    /// An account.
    Account(Address),
    /// A dataset.
    Dataset(u64),
    /// A task.
    Task(u64),
    /// A model.
    Model(u64),
    /// The validator set of an epoch.
    Epoch(u64),
    /// An inference offer.
    Offer(u64),
    /// A payment channel.
    Channel(u64),
    /// A governance proposal.
    Proposal(u64),
    /// A governance block decision on a dataset, model, offer or validator.
    Blocked(crate::state::BlockTarget),
    /// An account's delegations.
    Delegations(Address),
}

impl StateKey {
    /// Fixed-length key bytes: a tag, then the address or the big-endian id.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(33);
        match self {
            Self::Meta => out.push(0),
            Self::Account(a) => {
                out.push(1);
                out.extend_from_slice(&a.0);
            }
            Self::Proposal(id) => {
                out.push(8);
                out.extend_from_slice(&id.to_be_bytes());
            }
            Self::Blocked(target) => {
                out.push(9);
                out.extend_from_slice(&target.key_bytes());
            }
            Self::Delegations(a) => {
                out.push(10);
                out.extend_from_slice(&a.0);
            }
            Self::Dataset(id)
            | Self::Task(id)
            | Self::Model(id)
            | Self::Epoch(id)
            | Self::Offer(id)
            | Self::Channel(id) => {
                out.push(match self {
                    Self::Dataset(_) => 2,
                    Self::Task(_) => 3,
                    Self::Model(_) => 4,
                    Self::Epoch(_) => 5,
                    Self::Offer(_) => 6,
                    _ => 7,
                });
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
        out
    }
}

impl core::fmt::Display for StateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Meta => f.write_str("meta"),
            Self::Account(a) => write!(f, "account/{a}"),
            Self::Dataset(id) => write!(f, "dataset/{id}"),
            Self::Task(id) => write!(f, "task/{id}"),
            Self::Model(id) => write!(f, "model/{id}"),
            Self::Epoch(e) => write!(f, "epoch/{e}"),
            Self::Offer(id) => write!(f, "offer/{id}"),
            Self::Channel(id) => write!(f, "channel/{id}"),
            Self::Proposal(id) => write!(f, "proposal/{id}"),
            Self::Blocked(t) => write!(f, "blocked/{}", t.to_string().replace(' ', "/")),
            Self::Delegations(a) => write!(f, "delegations/{a}"),
        }
    }
}

/// The leaf element of `key` holding `value`.
pub(crate) fn leaf_element(key: &StateKey, value: &[u8]) -> Vec<u8> {
    let mut out = key.to_bytes();
    out.extend_from_slice(value);
    out
}

/// An inclusion proof of one state entry against a state root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    /// The entry's key.
    pub key: StateKey,
    /// The committed value bytes (e.g. [`crate::Account::leaf_value`]).
    #[serde(with = "crate::types::hex_bytes")]
    pub value: Vec<u8>,
    /// The leaf's location in the tree.
    pub location: u64,
    /// Number of leaves in the tree the proof is against.
    pub leaves: u64,
    /// Sibling and peak digests.
    pub digests: Vec<Digest>,
}

/// Largest leaf count of an MMR (2^62, `mmr::Family::MAX_LEAVES`).
const LEAVES_MAX: u64 = 1 << 62;

/// Check that `proof` shows its key holding its value under `root`.
pub fn verify_proof(root: &Digest, proof: &Proof) -> Result<(), ProofError> {
    if proof.location >= proof.leaves {
        return Err(ProofError::Malformed(format!(
            "location {} not below leaf count {}",
            proof.location, proof.leaves
        )));
    }
    if proof.leaves > LEAVES_MAX {
        return Err(ProofError::Malformed(format!(
            "leaf count {} too large",
            proof.leaves
        )));
    }
    if proof.digests.len() > MAX_PROOF_DIGESTS_PER_ELEMENT {
        return Err(ProofError::Malformed(format!(
            "{} digests, at most {MAX_PROOF_DIGESTS_PER_ELEMENT}",
            proof.digests.len()
        )));
    }
    let inner = mmr::Proof::<B3Digest> {
        leaves: mmr::Location::new(proof.leaves),
        inactive_peaks: 0,
        digests: proof.digests.iter().map(|d| B3Digest(d.0)).collect(),
    };
    let element = leaf_element(&proof.key, &proof.value);
    let ok = inner.verify_element_inclusion(
        &tree_hasher(),
        &element,
        mmr::Location::new(proof.location),
        &B3Digest(root.0),
    );
    if ok {
        Ok(())
    } else {
        Err(ProofError::RootMismatch {
            key: proof.key.to_string(),
            root: *root,
        })
    }
}
