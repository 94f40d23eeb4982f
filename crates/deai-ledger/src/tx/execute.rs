//! `Execute`: carry out a passed proposal once its timelock has run (anyone may send it; the
//! sender pays only the fee). The change is checked again against the state of now: parameters
//! another proposal changed since, a treasury that spent in between, a target that vanished.

use super::{Action, Env};
use crate::error::TxError;
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::{ProposalKind, ProposalStatus, State, apply_changes, treasury};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Execute a passed proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execute {
    /// The proposal.
    pub proposal: u64,
}

impl Action for Execute {
    fn check(&self, _: &Params) -> Result<(), TxError> {
        Ok(())
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let p = state.proposal_checked(self.proposal)?;
        let (Some(from), Some(until)) = (p.executable_from, p.executable_until) else {
            return Err(TxError::NotExecutable {
                proposal: self.proposal,
                reason: format!("its status is {:?}", p.status).to_lowercase(),
            });
        };
        if p.status != ProposalStatus::Passed {
            return Err(TxError::NotExecutable {
                proposal: self.proposal,
                reason: "it was already executed".into(),
            });
        }
        if env.height < from || env.height > until {
            return Err(TxError::NotExecutable {
                proposal: self.proposal,
                reason: format!(
                    "it is executable at heights {from}..={until}, not {}",
                    env.height
                ),
            });
        }
        match &p.kind {
            ProposalKind::ParamChange { changes } => {
                apply_changes(state.params(), changes)?;
            }
            ProposalKind::Block { target, .. } => state.require_target(target)?,
            ProposalKind::TreasurySpend { amount, .. } => {
                let available = state.account(&treasury()).balance;
                if available < *amount {
                    return Err(TxError::InsufficientFunds {
                        needed: *amount,
                        available,
                    });
                }
            }
        }
        Ok(())
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        let kind = state
            .proposal(self.proposal)
            .expect("validated: proposal exists")
            .kind
            .clone();
        let mut events = Vec::new();
        match kind {
            ProposalKind::ParamChange { changes } => {
                let new = apply_changes(state.params(), &changes).expect("validated: applies");
                for c in &changes {
                    events.push(Event::ParamChanged {
                        proposal: self.proposal,
                        name: c.name.clone(),
                        value: c.value.clone(),
                    });
                }
                state.set_params(new);
            }
            ProposalKind::Block {
                target,
                blocked,
                reason,
            } => {
                state.set_blocked(target, blocked, reason);
                events.push(Event::BlockDecided {
                    proposal: self.proposal,
                    target,
                    blocked,
                });
            }
            ProposalKind::TreasurySpend { to, amount } => {
                state.debit(&treasury(), amount);
                state.credit(&to, amount);
                events.push(Event::TreasurySpent {
                    proposal: self.proposal,
                    to,
                    amount,
                });
            }
        }
        let p = state.proposal_mut(self.proposal);
        p.status = ProposalStatus::Executed;
        p.executed_at = Some(env.height);
        events
    }
}

impl Write for Execute {
    fn write(&self, buf: &mut impl BufMut) {
        self.proposal.write(buf);
    }
}

impl EncodeSize for Execute {
    fn encode_size(&self) -> usize {
        8
    }
}

impl Read for Execute {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, _: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            proposal: u64::read_cfg(buf, &())?,
        })
    }
}
