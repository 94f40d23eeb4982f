//! The HTTP transaction body (`POST /v1/txs`) never panics the decoder: any bytes are either a
//! transaction that re-encodes into an equal envelope, or an error with one of the stable codes.
#![no_main]

use deai_ledger::Params;
use deai_ledger::submission::{Submission, decode_submission};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let params = Params::default();
    match decode_submission(data, &params) {
        Ok(tx) => {
            let again = serde_json::to_vec(&Submission::of(&tx)).expect("serializes");
            assert_eq!(decode_submission(&again, &params), Ok(tx), "envelope round trip differs");
        }
        Err(e) => assert!(["bad_json", "bad_hex", "bad_tx_encoding"].contains(&e.code())),
    }
});
