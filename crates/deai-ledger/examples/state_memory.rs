//! What the ledger state costs in memory per account, per dataset and per task: heap bytes live
//! after building it, counted by a wrapping global allocator (so allocator overhead and
//! fragmentation, which RSS would add, are not in it).
//!
//! Run: `cargo run --release -p deai-ledger --example state_memory -- 100000 10000 1000`
//! (accounts, datasets, tasks; each task names 10 datasets). Prints one JSON object.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used)] // the shared test helpers it borrows unwrap

#[path = "../tests/it/common/mod.rs"]
#[allow(dead_code)] // the example uses a few of the test helpers
mod common;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicIsize, Ordering},
};

use common::*;
use deai_ledger::*;

/// The system allocator, keeping a count of live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a side note.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's layout contract is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as for `dealloc` and `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Applies `txs` in blocks of 1,000 (signatures taken as checked: this measures state, not
/// verification) and asserts every one applied.
fn apply(state: &mut State, txs: Vec<SignedTx>) {
    let mut txs = txs.into_iter().peekable();
    while txs.peek().is_some() {
        let chunk: Vec<SignedTx> = txs.by_ref().take(1_000).collect();
        let block = next_block(state, Address([0xEE; 32]), chunk);
        let out = state.apply_block_verified(&block, &vec![true; block.txs.len()]);
        if let Some(bad) = out.receipts.iter().find(|r| !r.is_ok()) {
            panic!("a transaction failed: {:?}", bad.result);
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut arg = |default: usize| args.next().and_then(|a| a.parse().ok()).unwrap_or(default);
    let (accounts, datasets, tasks) = (arg(100_000), arg(10_000), arg(1_000));
    assert!(tasks * 10 <= datasets && datasets + tasks <= accounts);
    let keys = keys(accounts);
    let genesis = genesis(&keys, test_params());

    let before = live();
    let mut state = State::from_genesis(&genesis).expect("genesis");
    drop(genesis);
    let _ = state.root();
    let per_account = (live() - before) / accounts as isize;

    let policy = policy(&["research"], u64::MAX);
    let registers: Vec<SignedTx> = (0..datasets)
        .map(|i| {
            let body = TxBody::DatasetRegister(DatasetRegister {
                commitment: Digest::hash(&(i as u64).to_be_bytes()),
                samples: 1_000,
                schema: "digits-8x8".to_string(),
                policy: policy.clone(),
            });
            sign(&keys[i], 0, 1, body)
        })
        .collect();
    let before = live();
    apply(&mut state, registers);
    let _ = state.root();
    let per_dataset = (live() - before) / datasets as isize;

    let ids: Vec<u64> = state.datasets().map(|d| d.id).collect();
    let creates: Vec<SignedTx> = (0..tasks)
        .map(|t| {
            let mine = ids[t * 10..t * 10 + 10].to_vec();
            let body = task_create(mine, "research", 1_000, 4 * EPSILON_SCALE);
            // Task creators are accounts that registered nothing, so every nonce is 0.
            sign(&keys[accounts - 1 - t], 0, 1, body)
        })
        .collect();
    let before = live();
    apply(&mut state, creates);
    let _ = state.root();
    let per_task = (live() - before) / tasks as isize;

    println!(
        "{{\"accounts\": {accounts}, \"datasets\": {datasets}, \"tasks\": {tasks}, \
         \"datasets_per_task\": 10, \"bytes_per_account\": {per_account}, \
         \"bytes_per_dataset\": {per_dataset}, \"bytes_per_task\": {per_task}}}"
    );
}
