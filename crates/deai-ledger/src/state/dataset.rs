//! Datasets: a commitment to data that stays with its owner, and the consent policy that decides
//! which tasks may use it.

use crate::codec::{list_size, read_list, read_strs, strs_size, write_list, write_strs};
use crate::error::TxError;
use crate::event::HistoryEntry;
use crate::params::{Limits, Params};
use crate::types::{Address, Digest};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// What a data owner accepts. A task may use the dataset only if every rule holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentPolicy {
    /// Purposes the data may be used for (a task's purpose must be one of them).
    pub purposes: Vec<String>,
    /// Task creators allowed to use the data; `None` means any creator.
    pub creators: Option<Vec<Address>>,
    /// Smallest total task reward accepted, base units.
    #[serde(with = "crate::types::amount")]
    pub reward_min: u128,
    /// Largest DP ε accepted, fixed point ([`crate::EPSILON_SCALE`]).
    pub epsilon_max: u64,
    /// Consent ends at this height: tasks created at or after it cannot select the dataset.
    pub expiry_height: u64,
    /// Largest DP ε one round may spend on the dataset, fixed point ([`crate::EPSILON_SCALE`]);
    /// 0 means no per-round cap. Enforced by the ledger: a dataset is not eligible for a round
    /// whose ε is above it (`dataset_round_epsilon_exceeded`). At most `epsilon_max`.
    #[serde(default)]
    pub epsilon_round_max: u64,
    /// Smallest DP noise multiplier σ the owner accepts, fixed point ([`crate::NOISE_SCALE`],
    /// σ = 1.1 is `1_100_000`); 0 means no floor. The ledger only stores it: σ lives in the
    /// off-chain task specification, so the owner's node enforces it by refusing to train for a
    /// spec whose σ is below it.
    #[serde(default)]
    pub noise_multiplier_min: u64,
    /// Smallest royalty, basis points of every paid query, that an inference offer of a model
    /// trained on this dataset must pay its contributors (`0..=10_000`); 0 asks none. Checked
    /// when an offer is created, against the policy as it stands then.
    #[serde(default)]
    pub royalty_bps_min: u32,
}

/// The facts about a task that a consent policy judges.
#[derive(Clone, Copy, Debug)]
pub struct TaskTerms<'a> {
    /// Who creates the task.
    pub creator: &'a Address,
    /// Its purpose.
    pub purpose: &'a str,
    /// Its reward, base units.
    pub reward: u128,
    /// Its ε budget, fixed point.
    pub epsilon: u64,
}

impl ConsentPolicy {
    /// Stateless limits.
    pub(crate) fn check(&self, params: &Params) -> Result<(), TxError> {
        let str_max = params.string_bytes_max as usize;
        TxError::limit(
            "policy.purposes",
            self.purposes.len(),
            params.dataset_purposes_max as usize,
        )?;
        for p in &self.purposes {
            TxError::limit("policy.purpose", p.len(), str_max)?;
        }
        if let Some(creators) = &self.creators {
            TxError::limit(
                "policy.creators",
                creators.len(),
                params.consent_creators_max as usize,
            )?;
        }
        if self.royalty_bps_min > crate::params::BPS_SCALE {
            return Err(TxError::InvalidField {
                field: "policy.royalty_bps_min".into(),
                reason: format!("{} basis points is above the whole", self.royalty_bps_min),
            });
        }
        if self.epsilon_round_max > self.epsilon_max {
            return Err(TxError::InvalidField {
                field: "policy.epsilon_round_max".into(),
                reason: format!(
                    "per-round cap {} above the total epsilon_max {}",
                    self.epsilon_round_max, self.epsilon_max
                ),
            });
        }
        Ok(())
    }

    /// Err unless a round spending `epsilon` respects dataset `id`'s per-round cap.
    pub(crate) fn admits_round(&self, id: u64, epsilon: u64) -> Result<(), TxError> {
        if self.epsilon_round_max != 0 && epsilon > self.epsilon_round_max {
            return Err(TxError::DatasetRoundEpsilonExceeded {
                dataset: id,
                round: epsilon,
                max: self.epsilon_round_max,
            });
        }
        Ok(())
    }

    /// Whether a task with `terms`, created at `height`, may use dataset `id` under this policy
    /// (what `TaskCreate` checks; clients use it to pick the datasets a task may name).
    pub fn admits(&self, id: u64, terms: &TaskTerms<'_>, height: u64) -> Result<(), TxError> {
        if height >= self.expiry_height {
            return Err(TxError::ConsentExpired {
                dataset: id,
                expiry_height: self.expiry_height,
                height,
            });
        }
        let violated = |reason: String| TxError::ConsentViolated {
            dataset: id,
            reason,
        };
        if !self.purposes.iter().any(|p| p == terms.purpose) {
            return Err(violated(format!(
                "purpose {:?} not in {:?}",
                terms.purpose, self.purposes
            )));
        }
        if let Some(creators) = &self.creators
            && !creators.contains(terms.creator)
        {
            return Err(violated(format!("creator {} not allowed", terms.creator)));
        }
        if terms.reward < self.reward_min {
            return Err(violated(format!(
                "reward {} below minimum {}",
                terms.reward, self.reward_min
            )));
        }
        if terms.epsilon > self.epsilon_max {
            return Err(violated(format!(
                "epsilon {} above maximum {}",
                terms.epsilon, self.epsilon_max
            )));
        }
        Ok(())
    }
}

impl Write for ConsentPolicy {
    fn write(&self, buf: &mut impl BufMut) {
        write_strs(&self.purposes, buf);
        match &self.creators {
            None => buf.put_u8(0),
            Some(c) => {
                buf.put_u8(1);
                write_list(c, buf);
            }
        }
        self.reward_min.write(buf);
        self.epsilon_max.write(buf);
        self.expiry_height.write(buf);
        self.epsilon_round_max.write(buf);
        self.noise_multiplier_min.write(buf);
        self.royalty_bps_min.write(buf);
    }
}

impl EncodeSize for ConsentPolicy {
    fn encode_size(&self) -> usize {
        strs_size(&self.purposes)
            + 1
            + self.creators.as_deref().map_or(0, list_size)
            + 16
            + 8
            + 8
            + 8
            + 8
            + 4
    }
}

impl Read for ConsentPolicy {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, cfg: &Limits) -> Result<Self, CodecError> {
        let purposes = read_strs(buf, cfg.dataset_purposes_max, cfg.string_bytes_max)?;
        let creators = match u8::read_cfg(buf, &())? {
            0 => None,
            1 => Some(read_list(buf, cfg.consent_creators_max, &())?),
            other => return Err(CodecError::InvalidEnum(other)),
        };
        Ok(Self {
            purposes,
            creators,
            reward_min: u128::read_cfg(buf, &())?,
            epsilon_max: u64::read_cfg(buf, &())?,
            expiry_height: u64::read_cfg(buf, &())?,
            epsilon_round_max: u64::read_cfg(buf, &())?,
            noise_multiplier_min: u64::read_cfg(buf, &())?,
            royalty_bps_min: u32::read_cfg(buf, &())?,
        })
    }
}

/// A registered dataset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dataset {
    /// Its id (assigned in registration order from 1).
    pub id: u64,
    /// The owner (only it may update or revoke consent).
    pub owner: Address,
    /// BLAKE3 commitment of the data.
    pub commitment: Digest,
    /// Number of samples.
    pub samples: u64,
    /// Schema tag (e.g. `"digits-8x8"`).
    pub schema: String,
    /// Current consent policy.
    pub policy: ConsentPolicy,
    /// Whether consent was revoked (final).
    pub revoked: bool,
    /// Height of registration.
    pub registered_height: u64,
    /// Hash chain over `history`.
    pub history_root: Digest,
    /// Everything that happened to this dataset.
    pub history: Vec<HistoryEntry>,
    /// DP ε spent on this dataset by every round that selected it, over all tasks (basic
    /// composition), fixed point; never above `policy.epsilon_max`.
    #[serde(default)]
    pub epsilon_spent: u64,
    /// What registering locked (`dataset_bond` then), base units; returned when consent is
    /// revoked.
    #[serde(default, with = "crate::types::amount")]
    pub bond: u128,
}

impl Dataset {
    /// The committed bytes (the state-tree leaf value): every field but the history itself,
    /// which `history_root` commits to.
    pub fn leaf_value(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.policy.encode_size());
        self.id.write(&mut out);
        self.owner.write(&mut out);
        self.commitment.write(&mut out);
        self.samples.write(&mut out);
        crate::codec::write_str(&self.schema, &mut out);
        self.policy.write(&mut out);
        self.revoked.write(&mut out);
        self.registered_height.write(&mut out);
        self.history_root.write(&mut out);
        self.epsilon_spent.write(&mut out);
        // Every field above has a fixed length or a length prefix, so a trailing bond is
        // unambiguous; without one the leaf is what it was before bonds existed.
        if self.bond > 0 {
            self.bond.write(&mut out);
        }
        out
    }
}
