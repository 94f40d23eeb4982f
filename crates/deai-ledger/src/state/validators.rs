//! Validator sets by epoch, chosen by stake.
//!
//! An account declares a consensus key (and the p2p address its node listens on) with
//! `ValidatorDeclare`; genesis validators are declared with their own address as key. When the
//! block at the second-to-last height of epoch `e` is applied ([`crate::Params::chooses_next_set`]),
//! the set of epoch `e + 1` is chosen: every declared account whose bonded stake is at least
//! `validator_stake_min` (its own plus what is delegated to it) and that governance has not
//! barred, by stake (highest first, ties by key), at most `validators_max`. An
//! unbonding stake no longer counts, so `Unstake` removes a validator at the next boundary.
//!
//! Choosing one block early is what lets a light client follow set changes: the epoch's last
//! block, finalized by the outgoing set, carries the state root that commits to the incoming set
//! (its `StateKey::Epoch` leaf).
//!
//! A chain on which no account qualifies keeps its last set (the chain cannot run without one);
//! the carried-over set is recorded for the new epoch like any other.
//!
//! Invariants: each epoch's set is written once and never changes; keys are unique across
//! declaring accounts (`validator_keys` is the derived reverse index, rebuilt on restore).

use super::State;
use crate::codec::{read_str, str_size, write_str};
use crate::event::Event;
use crate::proof::StateKey;
use crate::types::Address;
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// A validator declaration held by an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorKey {
    /// The ed25519 consensus key the account's node signs votes with.
    pub key: Address,
    /// Where the node accepts p2p connections (`host:port`); empty for genesis validators,
    /// whose addresses come from the nodes' bootstrapper lists.
    pub p2p: String,
}

impl Write for ValidatorKey {
    fn write(&self, buf: &mut impl BufMut) {
        self.key.write(buf);
        write_str(&self.p2p, buf);
    }
}

impl EncodeSize for ValidatorKey {
    fn encode_size(&self) -> usize {
        32 + str_size(&self.p2p)
    }
}

impl Read for ValidatorKey {
    type Cfg = usize;
    fn read_cfg(buf: &mut impl Buf, max: &usize) -> Result<Self, CodecError> {
        Ok(Self {
            key: Address::read_cfg(buf, &())?,
            p2p: read_str(buf, *max)?,
        })
    }
}

/// One member of an epoch's set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its consensus key.
    pub key: Address,
    /// The account that declared it (and whose stake put it here).
    pub account: Address,
    /// Its bonded stake when the set was chosen.
    #[serde(with = "crate::types::amount")]
    pub stake: u128,
    /// Its declared p2p address (may be empty).
    pub p2p: String,
}

/// The validators of one epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorSet {
    /// The epoch.
    pub epoch: u64,
    /// The height the set was chosen at (0 for the genesis set).
    pub chosen_at: u64,
    /// The members, highest stake first (ties by key).
    pub members: Vec<Member>,
}

impl ValidatorSet {
    /// The consensus keys, in member order.
    pub fn keys(&self) -> impl Iterator<Item = &Address> {
        self.members.iter().map(|m| &m.key)
    }

    /// The committed bytes (the value of its `StateKey::Epoch` leaf).
    pub fn leaf_value(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20 + self.members.len() * 100);
        self.epoch.write(&mut out);
        self.chosen_at.write(&mut out);
        self.members.len().write(&mut out);
        for m in &self.members {
            m.key.write(&mut out);
            m.account.write(&mut out);
            m.stake.write(&mut out);
            write_str(&m.p2p, &mut out);
        }
        out
    }

    /// Decodes [`Self::leaf_value`] (a light client reads a proven set this way); trailing
    /// bytes are an error.
    pub fn from_leaf_value(
        bytes: &[u8],
        members_max: usize,
        p2p_max: usize,
    ) -> Result<Self, CodecError> {
        <Self as commonware_codec::Decode>::decode_cfg(
            commonware_codec::Copying(bytes),
            &(members_max, p2p_max),
        )
    }
}

impl Read for ValidatorSet {
    /// (most members, longest p2p address)
    type Cfg = (usize, usize);
    fn read_cfg(
        buf: &mut impl Buf,
        &(members_max, p2p_max): &Self::Cfg,
    ) -> Result<Self, CodecError> {
        let epoch = u64::read_cfg(buf, &())?;
        let chosen_at = u64::read_cfg(buf, &())?;
        let n = usize::read_cfg(buf, &commonware_codec::RangeCfg::from(0..=members_max))?;
        let mut members = Vec::with_capacity(n);
        for _ in 0..n {
            members.push(Member {
                key: Address::read_cfg(buf, &())?,
                account: Address::read_cfg(buf, &())?,
                stake: u128::read_cfg(buf, &())?,
                p2p: read_str(buf, p2p_max)?,
            });
        }
        Ok(Self {
            epoch,
            chosen_at,
            members,
        })
    }
}

impl State {
    /// The set of `epoch`, once chosen.
    pub fn validator_set(&self, epoch: u64) -> Option<&ValidatorSet> {
        self.epochs.get(&epoch)
    }

    /// The newest chosen set (the next epoch's once chosen, else the current one's).
    pub fn latest_validator_set(&self) -> Option<&ValidatorSet> {
        self.epochs.values().next_back()
    }

    /// The account that declared consensus key `key`, if any.
    pub fn validator_account(&self, key: &Address) -> Option<Address> {
        self.validator_keys.get(key).copied()
    }

    /// Every account that could be chosen at the next boundary (declared, enough stake), in the
    /// order the choice ranks them, at most `limit`.
    pub fn validator_candidates(&self, limit: usize) -> Vec<Member> {
        let min = self.params.validator_stake_min;
        let mut all: Vec<Member> = self
            .accounts
            .values()
            .filter(|a| {
                self.blocked(&super::BlockTarget::Validator(a.address))
                    .is_none()
            })
            .filter_map(|a| {
                let stake = a.staked.saturating_add(self.delegated_to(&a.address));
                let v = a.validator.as_ref().filter(|_| stake >= min)?;
                Some(Member {
                    key: v.key,
                    account: a.address,
                    stake,
                    p2p: v.p2p.clone(),
                })
            })
            .collect();
        all.sort_by(|a, b| b.stake.cmp(&a.stake).then_with(|| a.key.cmp(&b.key)));
        all.truncate(limit);
        all
    }

    /// Records `set` as its epoch's.
    pub(crate) fn insert_validator_set(&mut self, set: ValidatorSet) {
        self.dirty.insert(StateKey::Epoch(set.epoch));
        self.epochs.insert(set.epoch, set);
    }

    /// Declares (or replaces) `account`'s consensus key.
    pub(crate) fn declare_validator(&mut self, account: &Address, decl: ValidatorKey) {
        let key = decl.key;
        let previous = self.account_mut(account).validator.replace(decl);
        if let Some(old) = previous.filter(|old| old.key != key) {
            self.validator_keys.remove(&old.key);
        }
        self.validator_keys.insert(key, *account);
    }

    /// Chooses the set of the epoch after the one `height` is in (called for the block at
    /// [`crate::Params::chooses_next_set`] heights).
    pub(crate) fn choose_next_set(&mut self, height: u64) -> Event {
        let epoch = self.params.epoch_of(height).saturating_add(1);
        let mut members = self.validator_candidates(self.params.validators_max as usize);
        let carried = members.is_empty();
        if carried {
            members = self
                .epochs
                .values()
                .next_back()
                .map(|s| s.members.clone())
                .unwrap_or_default();
        }
        let event = Event::ValidatorSetChosen {
            epoch,
            members: u32::try_from(members.len()).unwrap_or(u32::MAX),
            carried_over: carried,
        };
        self.insert_validator_set(ValidatorSet {
            epoch,
            chosen_at: height,
            members,
        });
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Block, Digest, Genesis, Params, SignedTx, Stake, Tx, TxBody, TxError, Unstake,
        ValidatorDeclare, verify_proof,
    };
    use ed25519_dalek::SigningKey;

    const E: u64 = 6;
    const MIN: u128 = 100;

    fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i; 32])
    }

    fn addr(k: &SigningKey) -> Address {
        Address::from_key(&k.verifying_key())
    }

    /// Accounts 1..=5 funded; 1 and 2 are genesis validators with stake 300 and 200.
    fn state(validators_max: u32) -> State {
        let g = Genesis {
            chain_id: "sets".into(),
            balances: (1..=5).map(|i| (addr(&key(i)), 10_000)).collect(),
            validators: vec![(addr(&key(1)), 300), (addr(&key(2)), 200)],
            params: Params {
                epoch_blocks: E,
                validators_max,
                validator_stake_min: MIN,
                ..Params::default()
            },
        };
        State::from_genesis(&g).expect("genesis")
    }

    fn tx(state: &State, from: &SigningKey, body: TxBody) -> SignedTx {
        let sender = addr(from);
        SignedTx::sign(
            Tx {
                chain_id: state.chain_id().to_string(),
                sender,
                nonce: state.account(&sender).nonce,
                fee: 1,
                body,
            },
            from,
        )
    }

    /// Applies one block of `txs` (proposed by validator 1), asserting every one succeeded.
    fn block(state: &mut State, txs: Vec<SignedTx>) -> Vec<Event> {
        let height = state.height() + 1;
        let out = state.apply_block(&Block {
            height,
            proposer: addr(&key(1)),
            beacon: Digest::default(),
            txs,
        });
        for r in &out.receipts {
            assert!(r.result.is_ok(), "height {height}: {:?}", r.result);
        }
        out.events
    }

    fn run_to(state: &mut State, height: u64) {
        while state.height() < height {
            block(state, Vec::new());
        }
    }

    fn declare(state: &State, account: &SigningKey, node: &SigningKey, p2p: &str) -> SignedTx {
        let body = ValidatorDeclare::new(state.chain_id(), &addr(account), node, p2p.into());
        tx(state, account, TxBody::ValidatorDeclare(body))
    }

    fn keys_of(set: &ValidatorSet) -> Vec<Address> {
        set.keys().copied().collect()
    }

    #[test]
    fn genesis_set_is_epoch_zero_and_provable() {
        let s = state(10);
        let set = s.validator_set(0).expect("epoch 0");
        assert_eq!(keys_of(set), vec![addr(&key(1)), addr(&key(2))]);
        assert!(s.validator_set(1).is_none());
        let proof = s.prove(&StateKey::Epoch(0)).expect("proof");
        verify_proof(&s.root(), &proof).expect("verifies");
        let decoded = ValidatorSet::from_leaf_value(&proof.value, 10, 64).expect("decodes");
        assert_eq!(&decoded, set);
        assert!(ValidatorSet::from_leaf_value(&proof.value, 1, 64).is_err());
    }

    #[test]
    fn stake_and_a_declared_key_join_at_the_next_boundary_and_unbonding_leaves() {
        let mut s = state(10);
        let (owner, node) = (key(3), key(30));
        let txs = vec![tx(&s, &owner, TxBody::Stake(Stake { amount: 250 }))];
        block(&mut s, txs);
        let txs = vec![declare(&s, &owner, &node, "127.0.0.1:9000")];
        block(&mut s, txs);
        // The set of epoch 1 is chosen at height E - 2, not before.
        run_to(&mut s, E - 3);
        assert!(s.validator_set(1).is_none());
        let events = block(&mut s, Vec::new());
        assert!(events.contains(&Event::ValidatorSetChosen {
            epoch: 1,
            members: 3,
            carried_over: false
        }));
        let set = s.validator_set(1).expect("chosen");
        assert_eq!(set.chosen_at, E - 2);
        assert_eq!(
            keys_of(set),
            vec![addr(&key(1)), addr(&node), addr(&key(2))],
            "by stake: 300, 250, 200"
        );
        assert_eq!(set.members[1].account, addr(&owner));
        assert_eq!(set.members[1].p2p, "127.0.0.1:9000");
        // Unbonding below the minimum removes it from epoch 2's set.
        let txs = vec![tx(&s, &owner, TxBody::Unstake(Unstake { amount: 200 }))];
        block(&mut s, txs);
        run_to(&mut s, 2 * E - 2);
        assert_eq!(
            keys_of(s.validator_set(2).expect("chosen")),
            vec![addr(&key(1)), addr(&key(2))]
        );
        // Epoch 1's set never changes once written.
        assert_eq!(keys_of(s.validator_set(1).expect("kept")).len(), 3);
    }

    #[test]
    fn the_top_validators_max_by_stake_form_the_set() {
        let mut s = state(2);
        let (owner, node) = (key(3), key(30));
        let txs = vec![tx(&s, &owner, TxBody::Stake(Stake { amount: 250 }))];
        block(&mut s, txs);
        let txs = vec![declare(&s, &owner, &node, "")];
        block(&mut s, txs);
        run_to(&mut s, E - 2);
        assert_eq!(
            keys_of(s.validator_set(1).expect("chosen")),
            vec![addr(&key(1)), addr(&node)],
            "validator 2 (200) is outranked"
        );
    }

    #[test]
    fn a_set_nobody_qualifies_for_carries_the_last_one_over() {
        let mut s = state(10);
        let txs = vec![
            tx(&s, &key(1), TxBody::Unstake(Unstake { amount: 300 })),
            tx(&s, &key(2), TxBody::Unstake(Unstake { amount: 150 })),
        ];
        block(&mut s, txs);
        run_to(&mut s, E - 3);
        let events = block(&mut s, Vec::new());
        assert!(events.contains(&Event::ValidatorSetChosen {
            epoch: 1,
            members: 2,
            carried_over: true
        }));
        assert_eq!(
            keys_of(s.validator_set(1).expect("chosen")),
            keys_of(s.validator_set(0).expect("genesis"))
        );
    }

    #[test]
    fn declarations_need_the_keys_signature_and_a_free_key() {
        let mut s = state(10);
        let (owner, node) = (key(3), key(30));
        // Signed by another key than the one declared.
        let mut forged =
            ValidatorDeclare::new(s.chain_id(), &addr(&owner), &key(31), String::new());
        forged.key = addr(&node);
        let t = tx(&s, &owner, TxBody::ValidatorDeclare(forged));
        assert!(
            matches!(s.check_tx(&t), Err(TxError::InvalidField { field, .. }) if field == "possession")
        );
        // A possession signed for another account cannot be replayed by this one.
        let theirs = ValidatorDeclare::new(s.chain_id(), &addr(&key(4)), &node, String::new());
        let t = tx(&s, &owner, TxBody::ValidatorDeclare(theirs));
        assert!(s.check_tx(&t).is_err());
        // A malformed address is refused before any state is read.
        let bad = ValidatorDeclare::new(s.chain_id(), &addr(&owner), &node, "nowhere".into());
        assert!(matches!(
            s.check_tx_stateless(&tx(&s, &owner, TxBody::ValidatorDeclare(bad))),
            Err(TxError::InvalidField { field, .. }) if field == "p2p"
        ));
        // The first declaration takes the key; another account holding it too is refused.
        let txs = vec![declare(&s, &owner, &node, "")];
        block(&mut s, txs);
        let second = declare(&s, &key(4), &node, "");
        assert!(
            matches!(s.check_tx(&second), Err(TxError::ValidatorKeyTaken { account, .. }) if account == addr(&owner))
        );
        // Replacing the key frees the old one.
        let txs = vec![declare(&s, &owner, &key(32), "")];
        block(&mut s, txs);
        assert_eq!(s.validator_account(&addr(&node)), None);
        let txs = vec![declare(&s, &key(4), &node, "")];
        block(&mut s, txs);
        assert_eq!(s.validator_account(&addr(&node)), Some(addr(&key(4))));
    }

    #[test]
    fn fees_go_to_the_account_that_declared_the_proposers_key() {
        let mut s = state(10);
        let (owner, node) = (key(3), key(30));
        let txs = vec![declare(&s, &owner, &node, "")];
        block(&mut s, txs);
        let before = s.account(&addr(&owner)).balance;
        let t = tx(&s, &key(4), TxBody::Stake(Stake { amount: 5 }));
        let out = s.apply_block(&Block {
            height: s.height() + 1,
            proposer: addr(&node),
            beacon: Digest::default(),
            txs: vec![t],
        });
        assert!(out.receipts[0].result.is_ok());
        assert_eq!(s.account(&addr(&owner)).balance, before + 1);
        assert_eq!(s.account(&addr(&node)).balance, 0);
        assert_eq!(s.supply().total, s.supply().genesis);
    }

    #[test]
    fn snapshots_keep_sets_and_declarations() {
        let mut s = state(10);
        let txs = vec![declare(&s, &key(3), &key(30), "127.0.0.1:1")];
        block(&mut s, txs);
        run_to(&mut s, E - 2);
        let restored = State::from_snapshot(s.snapshot()).expect("restores");
        assert_eq!(restored.root(), s.root());
        assert_eq!(restored.validator_set(1), s.validator_set(1));
        assert_eq!(
            restored.validator_account(&addr(&key(30))),
            Some(addr(&key(3)))
        );
    }
}
