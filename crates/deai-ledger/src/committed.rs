//! Checking a state entry that came from someone else against what the state tree commits to.
//!
//! A validator answers with an entry in full (a task with its rounds and history, say) and an
//! inclusion [`Proof`] of the entry's leaf. The leaf commits to every field: most directly, the
//! round log through each round's digest and the history through its hash chain. So a reader that
//! re-encodes the entry it was sent, finds exactly the proof's value, and recomputes the history
//! chain to the committed `history_root` has checked every byte of the answer, not only the
//! fields a leaf spells out.

use crate::{
    Account, BlockDecision, Channel, Dataset, DelegationList, Digest, HistoryEntry, Model, Offer,
    Proof, Proposal, StateKey, Task, ValidatorSet, error::ProofError,
};

/// A state entry whose committed bytes a reader can recompute.
pub trait Committed {
    /// The entry's key in the state tree.
    fn key(&self) -> StateKey;
    /// The bytes its leaf commits to.
    fn leaf_value(&self) -> Vec<u8>;
    /// The committed hash chain and the entries it covers, for entries that keep a history.
    fn history(&self) -> Option<(&Digest, &[HistoryEntry])> {
        None
    }
}

impl Committed for Account {
    fn key(&self) -> StateKey {
        StateKey::Account(self.address)
    }
    fn leaf_value(&self) -> Vec<u8> {
        Account::leaf_value(self)
    }
}

impl Committed for Dataset {
    fn key(&self) -> StateKey {
        StateKey::Dataset(self.id)
    }
    fn leaf_value(&self) -> Vec<u8> {
        Dataset::leaf_value(self)
    }
    fn history(&self) -> Option<(&Digest, &[HistoryEntry])> {
        Some((&self.history_root, &self.history))
    }
}

impl Committed for Task {
    fn key(&self) -> StateKey {
        StateKey::Task(self.id)
    }
    fn leaf_value(&self) -> Vec<u8> {
        Task::leaf_value(self)
    }
    fn history(&self) -> Option<(&Digest, &[HistoryEntry])> {
        Some((&self.history_root, &self.history))
    }
}

impl Committed for ValidatorSet {
    fn key(&self) -> StateKey {
        StateKey::Epoch(self.epoch)
    }
    fn leaf_value(&self) -> Vec<u8> {
        ValidatorSet::leaf_value(self)
    }
}

impl Committed for Proposal {
    fn key(&self) -> StateKey {
        StateKey::Proposal(self.id)
    }
    fn leaf_value(&self) -> Vec<u8> {
        Proposal::leaf_value(self)
    }
}

impl Committed for BlockDecision {
    fn key(&self) -> StateKey {
        StateKey::Blocked(self.target)
    }
    fn leaf_value(&self) -> Vec<u8> {
        BlockDecision::leaf_value(self)
    }
}

impl Committed for DelegationList {
    fn key(&self) -> StateKey {
        StateKey::Delegations(self.delegator)
    }
    fn leaf_value(&self) -> Vec<u8> {
        DelegationList::leaf_value(self)
    }
}

impl Committed for Model {
    fn key(&self) -> StateKey {
        StateKey::Model(self.id)
    }
    fn leaf_value(&self) -> Vec<u8> {
        Model::leaf_value(self)
    }
    fn history(&self) -> Option<(&Digest, &[HistoryEntry])> {
        Some((&self.history_root, &self.history))
    }
}

impl Committed for Offer {
    fn key(&self) -> StateKey {
        StateKey::Offer(self.id)
    }
    fn leaf_value(&self) -> Vec<u8> {
        Offer::leaf_value(self)
    }
    fn history(&self) -> Option<(&Digest, &[HistoryEntry])> {
        Some((&self.history_root, &self.history))
    }
}

impl Committed for Channel {
    fn key(&self) -> StateKey {
        StateKey::Channel(self.id)
    }
    fn leaf_value(&self) -> Vec<u8> {
        Channel::leaf_value(self)
    }
}

/// Checks that `entry` is exactly what `proof` proves under `root`: the proof verifies, names the
/// entry's key, carries the entry's committed bytes, and the entry's history hashes to the
/// committed chain.
pub fn verify_entry<T: Committed>(
    root: &Digest,
    proof: &Proof,
    entry: &T,
) -> Result<(), ProofError> {
    let key = entry.key();
    if proof.key != key {
        return Err(ProofError::EntryMismatch {
            key: key.to_string(),
            what: format!("the proof is of {}", proof.key),
        });
    }
    if proof.value != entry.leaf_value() {
        return Err(ProofError::EntryMismatch {
            key: key.to_string(),
            what: "its fields differ from the committed leaf".into(),
        });
    }
    if let Some((committed, history)) = entry.history() {
        let chained = history
            .iter()
            .fold(Digest::default(), |root, entry| entry.chain(&root));
        if chained != *committed {
            return Err(ProofError::EntryMismatch {
                key: key.to_string(),
                what: format!(
                    "its {} history entries do not hash to the committed chain",
                    history.len()
                ),
            });
        }
    }
    crate::verify_proof(root, proof)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Address, Block, Genesis, SignedTx, State, Transfer, Tx, TxBody};
    use ed25519_dalek::SigningKey;

    /// A state with one funded account that sent one transfer.
    fn state() -> (State, Address, Digest) {
        let alice = SigningKey::from_bytes(&[7; 32]);
        let address = Address::from_key(&alice.verifying_key());
        let mut state = State::from_genesis(&Genesis::dev(address, vec![])).expect("genesis");
        let tx = SignedTx::sign(
            Tx {
                chain_id: state.chain_id().to_string(),
                sender: address,
                nonce: 0,
                fee: 10,
                body: TxBody::Transfer(Transfer {
                    to: Address([9; 32]),
                    amount: 500,
                }),
            },
            &alice,
        );
        let root = state
            .apply_block(&Block {
                height: 1,
                proposer: Address([8; 32]),
                beacon: Digest::hash(b"1"),
                txs: vec![tx],
            })
            .root;
        (state, address, root)
    }

    #[test]
    fn an_honest_entry_verifies_and_a_changed_one_does_not() {
        let (state, address, root) = state();
        let account = state.account(&address);
        let proof = state.prove(&StateKey::Account(address)).expect("exists");
        verify_entry(&root, &proof, &account).expect("the entry as committed");

        let mut richer = account.clone();
        richer.balance += 1;
        let err = verify_entry(&root, &proof, &richer).expect_err("a changed balance");
        assert!(
            err.to_string().contains("differ from the committed leaf"),
            "{err}"
        );

        // A proof of another entry does not vouch for this one.
        let other = state
            .prove(&StateKey::Account(Address([9; 32])))
            .expect("the recipient exists");
        let err = verify_entry(&root, &other, &account).expect_err("another key");
        assert!(err.to_string().contains("the proof is of"), "{err}");

        // The right bytes under a root they are not in.
        let err = verify_entry(&Digest([1; 32]), &proof, &account).expect_err("wrong root");
        assert!(matches!(err, ProofError::RootMismatch { .. }), "{err}");
    }
}
