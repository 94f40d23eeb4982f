//! `Vote`: cast or change a vote on a proposal while it is open. Only accounts with power in the
//! proposal's snapshot may vote (own stake, a delegation, or stake delegated to them); the
//! weight is counted at the tally, from the snapshot.

use super::{Action, Env};
use crate::error::TxError;
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::{Choice, ProposalStatus, State};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Vote on a proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The proposal.
    pub proposal: u64,
    /// The vote.
    pub choice: Choice,
}

impl Action for Vote {
    fn check(&self, _: &Params) -> Result<(), TxError> {
        Ok(())
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let p = state.proposal_checked(self.proposal)?;
        if p.status != ProposalStatus::Voting || env.height > p.end_height {
            return Err(TxError::ProposalNotVoting {
                proposal: self.proposal,
            });
        }
        if !p.power.has_power(&env.sender) {
            return Err(TxError::NoVotingPower {
                proposal: self.proposal,
                voter: env.sender,
            });
        }
        Ok(())
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        state
            .proposal_mut(self.proposal)
            .votes
            .insert(env.sender, self.choice);
        vec![Event::Voted {
            proposal: self.proposal,
            voter: env.sender,
            choice: self.choice,
        }]
    }
}

impl Write for Vote {
    fn write(&self, buf: &mut impl BufMut) {
        self.proposal.write(buf);
        self.choice.write(buf);
    }
}

impl EncodeSize for Vote {
    fn encode_size(&self) -> usize {
        8 + 1
    }
}

impl Read for Vote {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, _: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            proposal: u64::read_cfg(buf, &())?,
            choice: Choice::read_cfg(buf, &())?,
        })
    }
}
