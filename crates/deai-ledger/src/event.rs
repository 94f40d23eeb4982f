//! Events: what a transaction (or the start of a block) did, in receipts and in the per-entity
//! history of datasets, tasks and models.
//!
//! Invariant: an entity's `history_root` is the BLAKE3 hash chain of its [`HistoryEntry`]
//! encodings, so the state root commits to the full history without re-hashing it per update.

use crate::types::{Address, Digest, TxId};
use bytes::BufMut;
use commonware_codec::{EncodeSize, Write};
use serde::{Deserialize, Serialize};

/// Something that happened to the state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Funds moved between accounts.
    Transferred {
        /// Payer.
        from: Address,
        /// Payee.
        to: Address,
        /// Amount.
        #[serde(with = "crate::types::amount")]
        amount: u128,
    },
    /// Funds locked as stake.
    Staked {
        /// The staker.
        account: Address,
        /// Amount.
        #[serde(with = "crate::types::amount")]
        amount: u128,
    },
    /// Stake started unbonding.
    UnbondingStarted {
        /// The staker.
        account: Address,
        /// Amount.
        #[serde(with = "crate::types::amount")]
        amount: u128,
        /// Height at which the funds return.
        release_height: u64,
    },
    /// Unbonded funds returned to the balance at the start of a block.
    Unbonded {
        /// The staker.
        account: Address,
        /// Amount.
        #[serde(with = "crate::types::amount")]
        amount: u128,
    },
    /// A dataset was registered.
    DatasetRegistered {
        /// Its id.
        id: u64,
        /// Its owner.
        owner: Address,
        /// BLAKE3 commitment of the data.
        commitment: Digest,
    },
    /// A dataset's consent policy was replaced.
    ConsentUpdated {
        /// The dataset.
        id: u64,
    },
    /// A dataset's consent was revoked.
    ConsentRevoked {
        /// The dataset.
        id: u64,
    },
    /// A task was created and its reward escrowed.
    TaskCreated {
        /// Its id.
        id: u64,
        /// The creator.
        creator: Address,
        /// Escrowed reward.
        #[serde(with = "crate::types::amount")]
        escrow: u128,
    },
    /// A dataset was selected by a task's filter (recorded in the dataset's history).
    DatasetSelected {
        /// The dataset.
        dataset: u64,
        /// The task.
        task: u64,
    },
    /// A task was cancelled and its unspent escrow refunded.
    TaskCancelled {
        /// The task.
        id: u64,
        /// Refund to the creator.
        #[serde(with = "crate::types::amount")]
        refund: u128,
    },
    /// A model was registered.
    ModelRegistered {
        /// Its id.
        id: u64,
        /// The task it came from.
        task: u64,
        /// The model it was trained from, if any.
        parent: Option<u64>,
        /// BLAKE3 of the weights.
        model_hash: Digest,
    },
    /// A task's creator designated a coordinator.
    CoordinatorSet {
        /// The task.
        task: u64,
        /// The new coordinator.
        coordinator: Address,
    },
    /// A task's creator committed to its validation data.
    ValidationCommitted {
        /// The task.
        task: u64,
        /// The commitment.
        commitment: Digest,
    },
    /// A round was opened (recorded in the task's and each selected dataset's history).
    RoundOpened {
        /// The task.
        task: u64,
        /// The round number.
        round: u32,
        /// DP ε the round spends, fixed point.
        epsilon: u64,
        /// Datasets eligible when it opened (the denominator of its sampling rate).
        eligible: u32,
        /// Height after which anyone may expire the round if it has no result.
        deadline_height: u64,
    },
    /// A round's result was recorded (in the task's and each survivor's history).
    RoundClosed {
        /// The task.
        task: u64,
        /// The round number.
        round: u32,
        /// BLAKE3 of the new global model.
        new_model: Digest,
    },
    /// A round passed its deadline without a result and was closed as failed by `RoundExpire`
    /// (in the task's and each selected dataset's history). Its ε and δ stay charged.
    RoundExpired {
        /// The task.
        task: u64,
        /// The round number.
        round: u32,
    },
    /// A round selected a dataset and charged it its next step of the task's ε schedule (in the
    /// dataset's history, where the round's own `round_opened` would show the task's figure).
    EpsilonCharged {
        /// The dataset.
        dataset: u64,
        /// The task.
        task: u64,
        /// The round number.
        round: u32,
        /// What this dataset was charged, fixed point ([`crate::EPSILON_SCALE`]).
        epsilon: u64,
    },
    /// A contributor was paid from a task's escrow.
    RewardPaid {
        /// The task.
        task: u64,
        /// The dataset whose scores earned it.
        dataset: u64,
        /// The dataset's owner, who received it.
        owner: Address,
        /// Amount.
        #[serde(with = "crate::types::amount")]
        amount: u128,
    },
    /// A task was closed: rewards paid, the rest refunded, the final model registered.
    TaskClosed {
        /// The task.
        id: u64,
        /// Total paid to contributors.
        #[serde(with = "crate::types::amount")]
        paid: u128,
        /// Refunded to the creator (unscored share and rounding dust).
        #[serde(with = "crate::types::amount")]
        refund: u128,
        /// The registered final model.
        model: u64,
    },
    /// An account declared (or replaced) its validator key.
    ValidatorDeclared {
        /// The account.
        account: Address,
        /// The consensus key.
        key: Address,
    },
    /// The next epoch's validator set was chosen (at the second-to-last block of an epoch).
    ValidatorSetChosen {
        /// The epoch the set validates.
        epoch: u64,
        /// How many members it has.
        members: u32,
        /// Whether no account qualified and the previous set was kept.
        carried_over: bool,
    },
}

/// One entry of an entity's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Block height.
    pub height: u64,
    /// The transaction that caused it.
    pub tx_id: TxId,
    /// What happened.
    pub event: Event,
}

impl Event {
    fn tag(&self) -> u8 {
        match self {
            Self::Transferred { .. } => 0,
            Self::Staked { .. } => 1,
            Self::UnbondingStarted { .. } => 2,
            Self::Unbonded { .. } => 3,
            Self::DatasetRegistered { .. } => 4,
            Self::ConsentUpdated { .. } => 5,
            Self::ConsentRevoked { .. } => 6,
            Self::TaskCreated { .. } => 7,
            Self::DatasetSelected { .. } => 8,
            Self::TaskCancelled { .. } => 9,
            Self::ModelRegistered { .. } => 10,
            Self::CoordinatorSet { .. } => 11,
            Self::ValidationCommitted { .. } => 12,
            Self::RoundOpened { .. } => 13,
            Self::RoundClosed { .. } => 14,
            Self::RewardPaid { .. } => 15,
            Self::TaskClosed { .. } => 16,
            Self::RoundExpired { .. } => 17,
            Self::EpsilonCharged { .. } => 18,
            Self::ValidatorDeclared { .. } => 19,
            Self::ValidatorSetChosen { .. } => 20,
        }
    }
}

impl Write for Event {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.tag());
        match self {
            Self::Transferred { from, to, amount } => {
                from.write(buf);
                to.write(buf);
                amount.write(buf);
            }
            Self::Staked { account, amount } | Self::Unbonded { account, amount } => {
                account.write(buf);
                amount.write(buf);
            }
            Self::UnbondingStarted {
                account,
                amount,
                release_height,
            } => {
                account.write(buf);
                amount.write(buf);
                release_height.write(buf);
            }
            Self::DatasetRegistered {
                id,
                owner,
                commitment,
            } => {
                id.write(buf);
                owner.write(buf);
                commitment.write(buf);
            }
            Self::ConsentUpdated { id } | Self::ConsentRevoked { id } => id.write(buf),
            Self::TaskCreated {
                id,
                creator,
                escrow,
            } => {
                id.write(buf);
                creator.write(buf);
                escrow.write(buf);
            }
            Self::DatasetSelected { dataset, task } => {
                dataset.write(buf);
                task.write(buf);
            }
            Self::TaskCancelled { id, refund } => {
                id.write(buf);
                refund.write(buf);
            }
            Self::ModelRegistered {
                id,
                task,
                parent,
                model_hash,
            } => {
                id.write(buf);
                task.write(buf);
                parent.write(buf);
                model_hash.write(buf);
            }
            Self::CoordinatorSet { task, coordinator } => {
                task.write(buf);
                coordinator.write(buf);
            }
            Self::ValidationCommitted { task, commitment } => {
                task.write(buf);
                commitment.write(buf);
            }
            Self::RoundOpened {
                task,
                round,
                epsilon,
                eligible,
                deadline_height,
            } => {
                task.write(buf);
                round.write(buf);
                epsilon.write(buf);
                eligible.write(buf);
                deadline_height.write(buf);
            }
            Self::RoundExpired { task, round } => {
                task.write(buf);
                round.write(buf);
            }
            Self::EpsilonCharged {
                dataset,
                task,
                round,
                epsilon,
            } => {
                dataset.write(buf);
                task.write(buf);
                round.write(buf);
                epsilon.write(buf);
            }
            Self::RoundClosed {
                task,
                round,
                new_model,
            } => {
                task.write(buf);
                round.write(buf);
                new_model.write(buf);
            }
            Self::RewardPaid {
                task,
                dataset,
                owner,
                amount,
            } => {
                task.write(buf);
                dataset.write(buf);
                owner.write(buf);
                amount.write(buf);
            }
            Self::TaskClosed {
                id,
                paid,
                refund,
                model,
            } => {
                id.write(buf);
                paid.write(buf);
                refund.write(buf);
                model.write(buf);
            }
            Self::ValidatorDeclared { account, key } => {
                account.write(buf);
                key.write(buf);
            }
            Self::ValidatorSetChosen {
                epoch,
                members,
                carried_over,
            } => {
                epoch.write(buf);
                members.write(buf);
                carried_over.write(buf);
            }
        }
    }
}

impl EncodeSize for Event {
    fn encode_size(&self) -> usize {
        1 + match self {
            Self::Transferred { .. } => 32 + 32 + 16,
            Self::Staked { .. } | Self::Unbonded { .. } => 32 + 16,
            Self::UnbondingStarted { .. } => 32 + 16 + 8,
            Self::DatasetRegistered { .. } => 8 + 32 + 32,
            Self::ConsentUpdated { .. } | Self::ConsentRevoked { .. } => 8,
            Self::TaskCreated { .. } => 8 + 32 + 16,
            Self::DatasetSelected { .. } => 16,
            Self::TaskCancelled { .. } => 8 + 16,
            Self::ModelRegistered { parent, .. } => 8 + 8 + parent.encode_size() + 32,
            Self::CoordinatorSet { .. } | Self::ValidationCommitted { .. } => 8 + 32,
            Self::RoundOpened { .. } => 8 + 4 + 8 + 4 + 8,
            Self::RoundExpired { .. } => 8 + 4,
            Self::EpsilonCharged { .. } => 8 + 8 + 4 + 8,
            Self::RoundClosed { .. } => 8 + 4 + 32,
            Self::RewardPaid { .. } => 8 + 8 + 32 + 16,
            Self::TaskClosed { .. } => 8 + 16 + 16 + 8,
            Self::ValidatorDeclared { .. } => 32 + 32,
            Self::ValidatorSetChosen { .. } => 8 + 4 + 1,
        }
    }
}

impl HistoryEntry {
    /// The next link of a history hash chain.
    pub fn chain(&self, previous: &Digest) -> Digest {
        let mut h = blake3::Hasher::new();
        h.update(&previous.0);
        h.update(&self.height.to_be_bytes());
        h.update(&self.tx_id.0);
        let mut bytes = Vec::with_capacity(self.event.encode_size());
        self.event.write(&mut bytes);
        h.update(&bytes);
        Digest(*h.finalize().as_bytes())
    }
}
