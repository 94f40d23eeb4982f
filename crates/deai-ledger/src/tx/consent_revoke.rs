//! `ConsentRevoke`: the owner revokes a dataset's consent for good; no new task may select it.

use super::consent_update::owned_live_dataset;
use super::{Action, Env};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::State;
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Revoke a dataset's consent (owner only; final).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRevoke {
    /// The dataset.
    pub dataset: u64,
}

impl Action for ConsentRevoke {
    fn check(&self, _: &Params) -> Result<(), TxError> {
        Ok(())
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        owned_live_dataset(state, env, self.dataset)
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        let d = state.dataset_mut(self.dataset);
        d.revoked = true;
        let (owner, bond) = (d.owner, std::mem::take(&mut d.bond));
        state.credit(&owner, bond);
        let event = Event::ConsentRevoked { id: self.dataset };
        state.record(EntityKind::Dataset, self.dataset, env, event.clone());
        let mut events = vec![event];
        if bond > 0 {
            let returned = Event::DatasetBondReturned {
                id: self.dataset,
                owner,
                amount: bond,
            };
            state.record(EntityKind::Dataset, self.dataset, env, returned.clone());
            events.push(returned);
        }
        events
    }
}

impl Write for ConsentRevoke {
    fn write(&self, buf: &mut impl BufMut) {
        self.dataset.write(buf);
    }
}

impl EncodeSize for ConsentRevoke {
    fn encode_size(&self) -> usize {
        8
    }
}

impl Read for ConsentRevoke {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, _: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            dataset: u64::read_cfg(buf, &())?,
        })
    }
}
