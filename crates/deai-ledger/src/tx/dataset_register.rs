//! `DatasetRegister`: record a commitment to data that stays with its owner, with its consent
//! policy. The sender becomes the owner. A commitment already registered by any dataset (revoked
//! ones included) is refused (`duplicate_commitment`), so one body of data cannot be enrolled
//! twice to be selected, charged and paid twice.

use super::{Action, Env};
use crate::codec::{read_str, str_size, write_str};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::{ConsentPolicy, Dataset, State};
use crate::types::Digest;
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Domain of [`dataset_commitment`].
const DATASET_DOMAIN: &[u8] = b"deai/dataset-commitment/v1";

/// The salted commitment an owner registers: `BLAKE3(domain || salt || content_hash)`, where
/// `content_hash` is BLAKE3 of the data file and `salt` 32 random bytes the owner keeps (and
/// shows only to a verifier who needs to check its data). Without the salt, anyone holding a
/// candidate file could confirm a guess of an owner's whole data against the ledger.
pub fn dataset_commitment(salt: &Digest, content_hash: &Digest) -> Digest {
    let mut h = blake3::Hasher::new();
    h.update(DATASET_DOMAIN);
    h.update(&salt.0);
    h.update(&content_hash.0);
    Digest(*h.finalize().as_bytes())
}

/// Register a dataset commitment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetRegister {
    /// Commitment to the data ([`dataset_commitment`] for a salted one; the ledger stores any
    /// digest and never sees the data).
    pub commitment: Digest,
    /// Number of samples (> 0).
    pub samples: u64,
    /// Schema tag.
    pub schema: String,
    /// Consent policy.
    pub policy: ConsentPolicy,
}

impl Action for DatasetRegister {
    fn check(&self, params: &Params) -> Result<(), TxError> {
        TxError::positive("samples", u128::from(self.samples))?;
        TxError::limit(
            "schema",
            self.schema.len(),
            params.string_bytes_max as usize,
        )?;
        self.policy.check(params)
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        state.require_funds(env, state.params().dataset_bond)?;
        if let Some(existing) = state.dataset_by_commitment(&self.commitment) {
            return Err(TxError::DuplicateCommitment {
                commitment: self.commitment,
                existing,
            });
        }
        state.next_id(EntityKind::Dataset).map(|_| ())
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        let id = state
            .next_id(EntityKind::Dataset)
            .expect("validated: id available");
        let bond = state.params().dataset_bond;
        state.debit(&env.sender, bond);
        state.insert_dataset(Dataset {
            id,
            owner: env.sender,
            commitment: self.commitment,
            samples: self.samples,
            schema: self.schema.clone(),
            policy: self.policy.clone(),
            revoked: false,
            registered_height: env.height,
            history_root: Digest::default(),
            history: Vec::new(),
            epsilon_spent: 0,
            bond,
        });
        let event = Event::DatasetRegistered {
            id,
            owner: env.sender,
            commitment: self.commitment,
        };
        state.record(EntityKind::Dataset, id, env, event.clone());
        vec![event]
    }
}

impl Write for DatasetRegister {
    fn write(&self, buf: &mut impl BufMut) {
        self.commitment.write(buf);
        self.samples.write(buf);
        write_str(&self.schema, buf);
        self.policy.write(buf);
    }
}

impl EncodeSize for DatasetRegister {
    fn encode_size(&self) -> usize {
        32 + 8 + str_size(&self.schema) + self.policy.encode_size()
    }
}

impl Read for DatasetRegister {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, cfg: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            commitment: Digest::read_cfg(buf, &())?,
            samples: u64::read_cfg(buf, &())?,
            schema: read_str(buf, cfg.string_bytes_max)?,
            policy: ConsentPolicy::read_cfg(buf, cfg)?,
        })
    }
}
