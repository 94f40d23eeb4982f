//! Block application and transaction checks.
//!
//! Order inside a block: (1) unbonding entries, then the bonds of withdrawn offers, whose
//! release height ≤ the block height return to their balances, settling tasks settle, ended
//! proposals are tallied, and the block's emission is minted; (2) each transaction in order: signature → stateless checks → nonce and fee →
//! the body's `validate` → the body's `apply`, then fee to the proposer and nonce + 1;
//! (3) the next validator set is chosen at its height and an epoch's last block pays its
//! emission pool; (4) the tree commits every changed entry and the new root is returned. A transaction that
//! fails any check changes nothing and gets a receipt with its error.

use super::State;
use crate::block::{Block, BlockOutcome, Receipt};
use crate::error::TxError;
use crate::event::Event;
use crate::tx::{Env, SignedTx};
use crate::types::Digest;
use crate::verify::verify_signatures;
use commonware_codec::EncodeSize;

impl State {
    /// Apply `block`, verifying its signatures (batched, in parallel) first.
    pub fn apply_block(&mut self, block: &Block) -> BlockOutcome {
        let sig_ok = verify_signatures(&block.txs);
        self.apply_block_verified(block, &sig_ok)
    }

    /// Apply `block` whose signatures the caller already checked: `sig_ok[i]` says whether
    /// transaction `i` verified (missing entries count as bad).
    pub fn apply_block_verified(&mut self, block: &Block, sig_ok: &[bool]) -> BlockOutcome {
        // Checked in release too: applying a height twice or backwards would silently fork this
        // replica's state from every other's, which is worse than stopping.
        assert!(
            block.height > self.height,
            "blocks apply at increasing heights (block {} on state at {})",
            block.height,
            self.height
        );
        self.height = block.height;
        let mut events = self.release_unbonded(block.height);
        events.extend(self.release_offer_bonds(block.height));
        events.extend(self.settle_due(block.height));
        events.extend(self.tally_due(block.height));
        events.extend(self.emit_for_block(&block.proposer));
        let mut receipts = Vec::with_capacity(block.txs.len());
        let txs_max = self.params.block_txs_max as usize;
        for (i, tx) in block.txs.iter().enumerate() {
            let tx_id = tx.id();
            let result = if i >= txs_max {
                Err(TxError::BlockFull { max: txs_max })
            } else if !sig_ok.get(i).copied().unwrap_or(false) {
                Err(TxError::BadSignature {
                    sender: tx.tx.sender,
                })
            } else {
                self.execute(tx, tx_id, block)
            };
            let receipt = match result {
                Ok(tx_events) => {
                    events.extend(tx_events.iter().cloned());
                    Receipt {
                        tx_id,
                        result: Ok(()),
                        events: tx_events,
                        fee_paid: tx.tx.fee,
                    }
                }
                Err(e) => Receipt {
                    tx_id,
                    result: Err(e),
                    events: Vec::new(),
                    fee_paid: 0,
                },
            };
            receipts.push(receipt);
        }
        if self.params.chooses_next_set(block.height) {
            events.push(self.choose_next_set(block.height));
        }
        events.extend(self.pay_epoch(block.height));
        self.commit();
        BlockOutcome {
            height: block.height,
            receipts,
            events,
            root: self.root(),
        }
    }

    /// Signature, chain id, size, fee minimum and body limits: everything that does not read state.
    pub fn check_tx_stateless(&self, tx: &SignedTx) -> Result<(), TxError> {
        tx.verify_signature()?;
        self.check_unsigned(tx)
    }

    /// [`Self::check_tx_stateless`] plus the checks against the current state (nonce equals the
    /// next nonce, funds, ids, ownership, consent), as if in the next block.
    pub fn check_tx(&self, tx: &SignedTx) -> Result<(), TxError> {
        tx.verify_signature()?;
        self.check_tx_verified(tx)
    }

    /// [`Self::check_tx_stateless`] for a transaction whose signature the caller already
    /// verified (e.g. in a [`crate::verify_signatures`] batch of many submissions).
    pub fn check_tx_stateless_verified(&self, tx: &SignedTx) -> Result<(), TxError> {
        self.check_unsigned(tx)
    }

    /// [`Self::check_tx`] for a transaction whose signature the caller already verified.
    pub fn check_tx_verified(&self, tx: &SignedTx) -> Result<(), TxError> {
        self.check_unsigned(tx)?;
        let env = Env {
            sender: tx.tx.sender,
            fee: tx.tx.fee,
            height: self.height.saturating_add(1),
            tx_id: tx.id(),
            beacon: Digest::default(),
        };
        self.validate(tx, &env)
    }

    /// Stateless checks except the signature.
    fn check_unsigned(&self, tx: &SignedTx) -> Result<(), TxError> {
        if tx.tx.chain_id != self.chain_id {
            return Err(TxError::WrongChainId {
                expected: self.chain_id.clone(),
                got: tx.tx.chain_id.clone(),
            });
        }
        let size = tx.encode_size();
        // A dispute carries a model and an input on top of an ordinary transaction.
        let max = match tx.tx.body {
            crate::TxBody::ReceiptDispute(_) => self.params.dispute_tx_bytes_max(),
            _ => self.params.tx_bytes_max as usize,
        };
        if size > max {
            return Err(TxError::Oversized { size, max });
        }
        if tx.tx.fee < self.params.fee_min {
            return Err(TxError::FeeTooLow {
                fee: tx.tx.fee,
                min: self.params.fee_min,
            });
        }
        tx.tx.body.action().check(&self.params)
    }

    /// Nonce, fee and the body's checks against state.
    fn validate(&self, tx: &SignedTx, env: &Env) -> Result<(), TxError> {
        let (balance, nonce) = self
            .accounts
            .get(&env.sender)
            .map_or((0, 0), |a| (a.balance, a.nonce));
        if tx.tx.nonce < nonce {
            return Err(TxError::NonceReplayed {
                expected: nonce,
                got: tx.tx.nonce,
            });
        }
        if tx.tx.nonce > nonce {
            return Err(TxError::NonceFuture {
                expected: nonce,
                got: tx.tx.nonce,
            });
        }
        if nonce == u64::MAX {
            return Err(TxError::overflow("nonce"));
        }
        if balance < env.fee {
            return Err(TxError::InsufficientFunds {
                needed: env.fee,
                available: balance,
            });
        }
        tx.tx.body.action().validate(self, env)
    }

    /// Check and apply one transaction whose signature verified.
    fn execute(
        &mut self,
        tx: &SignedTx,
        tx_id: crate::TxId,
        block: &Block,
    ) -> Result<Vec<Event>, TxError> {
        self.check_unsigned(tx)?;
        let env = Env {
            sender: tx.tx.sender,
            fee: tx.tx.fee,
            height: block.height,
            tx_id,
            beacon: block.beacon,
        };
        self.validate(tx, &env)?;
        let events = tx.tx.body.action().apply(self, &env);
        self.debit(&env.sender, env.fee);
        self.account_mut(&env.sender).nonce += 1;
        // The proposer is a consensus key; its fees go to the account that declared it.
        let payee = self
            .validator_account(&block.proposer)
            .unwrap_or(block.proposer);
        self.credit(&payee, env.fee);
        // Cumulative fees circulate (proposers spend them again), so this counter alone could
        // pass u128::MAX; it is informational, so it saturates instead of halting the chain.
        self.fees_paid = self.fees_paid.saturating_add(env.fee);
        if env.fee > 0 {
            self.dirty.insert(crate::proof::StateKey::Meta);
        }
        Ok(events)
    }

    /// Return every unbonding entry released at or before `height` to its balance.
    fn release_unbonded(&mut self, height: u64) -> Vec<Event> {
        let mut events = Vec::new();
        let later = self.unbonding_queue.split_off(&height.saturating_add(1));
        let due = std::mem::replace(&mut self.unbonding_queue, later);
        for account in due.into_values().flatten() {
            let acc = self.account_mut(&account);
            let (ready, pending): (Vec<_>, Vec<_>) = acc
                .unbonding
                .iter()
                .partition(|u| u.release_height <= height);
            acc.unbonding = pending;
            let amount: u128 = ready.iter().map(|u| u.amount).sum();
            if amount == 0 {
                continue;
            }
            acc.balance += amount;
            events.push(Event::Unbonded { account, amount });
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Address, Genesis};

    #[test]
    #[should_panic(expected = "blocks apply at increasing heights")]
    fn a_height_applied_twice_stops_the_replica() {
        let genesis = Genesis::dev(Address([1; 32]), vec![Address([2; 32])]);
        let mut state = State::from_genesis(&genesis).expect("dev genesis");
        let block = |height| Block {
            height,
            proposer: Address([2; 32]),
            beacon: Digest([height as u8; 32]),
            txs: Vec::new(),
        };
        state.apply_block(&block(1));
        state.apply_block(&block(1));
    }
}
