//! `ConsentUpdate`: the owner replaces a dataset's consent policy. Tasks already created keep
//! the datasets they admitted; the new policy judges tasks created from now on.

use super::{Action, Env};
use crate::error::{EntityKind, TxError};
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::state::{ConsentPolicy, State};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Replace a dataset's consent policy (owner only, not after revocation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentUpdate {
    /// The dataset.
    pub dataset: u64,
    /// The new policy.
    pub policy: ConsentPolicy,
}

/// Err unless `dataset` exists, `env.sender` owns it and consent is not revoked.
pub(super) fn owned_live_dataset(state: &State, env: &Env, dataset: u64) -> Result<(), TxError> {
    let d = state.dataset_checked(dataset)?;
    if d.owner != env.sender {
        return Err(TxError::NotOwner {
            kind: EntityKind::Dataset,
            id: dataset,
            owner: d.owner,
            sender: env.sender,
        });
    }
    if d.revoked {
        return Err(TxError::ConsentRevoked { dataset });
    }
    Ok(())
}

impl Action for ConsentUpdate {
    fn check(&self, params: &Params) -> Result<(), TxError> {
        self.policy.check(params)
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        owned_live_dataset(state, env, self.dataset)
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        state.dataset_mut(self.dataset).policy = self.policy.clone();
        let event = Event::ConsentUpdated { id: self.dataset };
        state.record(EntityKind::Dataset, self.dataset, env, event.clone());
        vec![event]
    }
}

impl Write for ConsentUpdate {
    fn write(&self, buf: &mut impl BufMut) {
        self.dataset.write(buf);
        self.policy.write(buf);
    }
}

impl EncodeSize for ConsentUpdate {
    fn encode_size(&self) -> usize {
        8 + self.policy.encode_size()
    }
}

impl Read for ConsentUpdate {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, cfg: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            dataset: u64::read_cfg(buf, &())?,
            policy: ConsentPolicy::read_cfg(buf, cfg)?,
        })
    }
}
