//! Fault injection for this crate's simulation tests (feature `test-utils`; the node never
//! enables it): a Byzantine leader's proposals.
//!
//! A test registers a tamper function for a validator key with [`tamper_proposals`]; that
//! validator's application hands every block it builds to the function and proposes whatever
//! comes back. So a simulation can make one validator propose blocks the others must refuse (a
//! wrong parent state root, a proposer that is not the view's leader, more transactions than a
//! block holds) or valid blocks carrying transactions the ledger must reject (bad signatures,
//! replayed or future nonces), and check that the honest validators' verification stops them.
//!
//! Registrations live in a thread-local table rather than in [`crate::Config`]: the
//! deterministic runtime polls every task of a simulation on the thread that started it, so a
//! registration reaches exactly the validators of that simulation, and tests running in
//! parallel on other threads never see it. Under a multi-threaded runtime nothing is registered
//! and proposals pass through unchanged.

use crate::{application::Ctx, block::Block};
use commonware_consensus::Viewable as _;
use commonware_cryptography::ed25519;
use std::cell::RefCell;

/// Rewrites a block the validator built for `view` before it is proposed.
type Tamper = Box<dyn FnMut(u64, Block) -> Block>;

thread_local! {
    static TAMPERS: RefCell<Vec<(ed25519::PublicKey, Tamper)>> = const { RefCell::new(Vec::new()) };
}

/// Makes the validator whose consensus key is `key` propose `tamper(view, block)` instead of
/// each block it builds, on this thread, until the returned guard drops. A later registration
/// for the same key replaces an earlier one.
#[must_use = "the registration ends when the guard drops"]
pub fn tamper_proposals(
    key: ed25519::PublicKey,
    tamper: impl FnMut(u64, Block) -> Block + 'static,
) -> Registration {
    TAMPERS.with_borrow_mut(|tampers| {
        tampers.retain(|(k, _)| *k != key);
        tampers.push((key.clone(), Box::new(tamper)));
    });
    Registration { key }
}

/// Ends a [`tamper_proposals`] registration when dropped.
#[derive(Debug)]
pub struct Registration {
    key: ed25519::PublicKey,
}

impl Drop for Registration {
    fn drop(&mut self) {
        // `try_with`: a guard dropped while the thread's locals are torn down has nothing to do.
        let _ = TAMPERS.try_with(|t| t.borrow_mut().retain(|(k, _)| *k != self.key));
    }
}

/// The block the leader of `ctx` proposes in place of `block`.
pub(crate) fn tampered(ctx: &Ctx, block: Block) -> Block {
    TAMPERS.with_borrow_mut(
        |tampers| match tampers.iter_mut().find(|(k, _)| *k == ctx.leader) {
            Some((_, tamper)) => tamper(ctx.view().get(), block),
            None => block,
        },
    )
}

/// The namespace this chain's consensus signs under, so a test can sign votes as a validator
/// would (Commonware's Byzantine voters need it).
pub fn consensus_namespace(cfg: &crate::Config) -> Vec<u8> {
    cfg.namespace()
}
