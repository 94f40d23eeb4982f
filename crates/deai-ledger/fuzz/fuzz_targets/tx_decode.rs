//! Transaction decoding never panics; a decoded transaction re-encodes to the same bytes, and
//! the ledger's checks on it never panic.
#![no_main]

use deai_ledger::{Address, Genesis, Params, SignedTx, State};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(|| {
        let mut g = Genesis::dev(Address([0; 32]), vec![Address([1; 32])]);
        g.chain_id = "fuzz".into();
        State::from_genesis(&g).expect("valid genesis")
    })
}

fuzz_target!(|data: &[u8]| {
    let params = Params::default();
    if let Ok(tx) = SignedTx::decode(data, &params) {
        assert_eq!(tx.encode(), data, "re-encoding differs");
        let _ = tx.id();
        let _ = state().check_tx(&tx);
    }
});
