//! `Propose`: put a protocol change, an ethics decision or a treasury spend to a vote, locking
//! a deposit. The change is checked now against the current parameters (a proposal that could
//! never execute is refused before anyone votes on it) and again at `Execute`.

use super::{Action, Env};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::{BlockTarget, Proposal, ProposalKind, ProposalStatus, State};
use crate::types::Digest;
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Open a governance proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Propose {
    /// What it does when executed.
    pub kind: ProposalKind,
    /// Locked until the tally: at least `gov_deposit_min`.
    #[serde(with = "crate::types::amount")]
    pub deposit: u128,
    /// Hash of the published description (the text lives off the ledger).
    pub description: Digest,
}

impl Action for Propose {
    fn check(&self, params: &Params) -> Result<(), TxError> {
        if self.deposit < params.gov_deposit_min {
            return Err(TxError::InvalidField {
                field: "deposit".into(),
                reason: format!(
                    "{} is below gov_deposit_min {}",
                    self.deposit, params.gov_deposit_min
                ),
            });
        }
        self.kind.check(params)
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        state.require_funds(env, self.deposit)?;
        state.next_id(EntityKind::Proposal)?;
        env.height
            .checked_add(state.params().gov_voting_blocks)
            .ok_or_else(|| TxError::overflow("end height"))?;
        if let ProposalKind::Block { target, .. } = &self.kind {
            state.require_target(target)?;
        }
        Ok(())
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        let id = state
            .next_id(EntityKind::Proposal)
            .expect("validated: an id is free");
        state.debit(&env.sender, self.deposit);
        let end_height = env.height + state.params().gov_voting_blocks - 1;
        let power = state.power_snapshot();
        state.insert_proposal(Proposal {
            id,
            proposer: env.sender,
            kind: self.kind.clone(),
            description: self.description,
            deposit: self.deposit,
            start_height: env.height,
            end_height,
            power,
            votes: BTreeMap::new(),
            status: ProposalStatus::Voting,
            tally: None,
            executable_from: None,
            executable_until: None,
            executed_at: None,
        });
        vec![Event::Proposed {
            id,
            proposer: env.sender,
            deposit: self.deposit,
            end_height,
        }]
    }
}

impl State {
    /// Err unless `target` names an existing dataset, model or offer, or a declared validator.
    pub(crate) fn require_target(&self, target: &BlockTarget) -> Result<(), TxError> {
        let (kind, id) = match target {
            BlockTarget::Dataset(id) => (EntityKind::Dataset, *id),
            BlockTarget::Model(id) => (EntityKind::Model, *id),
            BlockTarget::Offer(id) => (EntityKind::Offer, *id),
            BlockTarget::Validator(a) => {
                if self.account(a).validator.is_none() {
                    return Err(TxError::InvalidField {
                        field: "target".into(),
                        reason: format!("{a} never declared a validator key"),
                    });
                }
                return Ok(());
            }
        };
        let exists = match kind {
            EntityKind::Dataset => self.dataset(id).is_some(),
            EntityKind::Model => self.model(id).is_some(),
            _ => self.offer(id).is_some(),
        };
        if exists {
            Ok(())
        } else {
            Err(TxError::UnknownId { kind, id })
        }
    }
}

impl Write for Propose {
    fn write(&self, buf: &mut impl BufMut) {
        self.kind.write(buf);
        self.deposit.write(buf);
        self.description.write(buf);
    }
}

impl EncodeSize for Propose {
    fn encode_size(&self) -> usize {
        self.kind.encode_size() + 16 + 32
    }
}

impl Read for Propose {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, cfg: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            kind: ProposalKind::read_cfg(buf, &cfg.string_bytes_max)?,
            deposit: u128::read_cfg(buf, &())?,
            description: Digest::read_cfg(buf, &())?,
        })
    }
}
