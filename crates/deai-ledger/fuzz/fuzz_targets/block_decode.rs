//! Block decoding never panics; a decoded block re-encodes to the same bytes; applying it
//! (signatures assumed valid, to reach every execution path) never panics, conserves supply, and
//! gives the same outcome on a replica (rounds draw from the block's beacon).
#![no_main]

use deai_ledger::{Address, Block, Genesis, Params, State};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn genesis_state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(|| {
        let mut g = Genesis::dev(Address([0; 32]), vec![Address([1; 32])]);
        g.chain_id = "fuzz".into();
        g.balances.push((Address([2; 32]), 1_000_000));
        g.params.unbonding_delay_blocks = 1;
        State::from_genesis(&g).expect("valid genesis")
    })
}

fuzz_target!(|data: &[u8]| {
    let params = Params::default();
    if let Ok(block) = Block::decode(data, &params) {
        assert_eq!(block.encode(), data, "re-encoding differs");
        if block.height == 0 {
            return;
        }
        let mut state = genesis_state().clone();
        let sig_ok = vec![true; block.txs.len()];
        let out = state.apply_block_verified(&block, &sig_ok);
        assert_eq!(out.receipts.len(), block.txs.len());
        // A replica applying the same block (same beacon, so the same draws) agrees.
        let mut replica = genesis_state().clone();
        assert_eq!(
            replica.apply_block_verified(&block, &sig_ok),
            out,
            "replicas disagree"
        );
        let supply = state.supply();
        assert_eq!(supply.total, supply.genesis, "supply not conserved");
    }
});
