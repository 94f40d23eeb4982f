//! The HTTP transaction bodies (`POST /v1/txs` and `POST /v1/txs/batch`) never panic the decoder:
//! any bytes are either transactions that re-encode into an equal envelope, or errors with one of
//! the stable codes.
#![no_main]

use deai_ledger::Params;
use deai_ledger::submission::{BatchSubmission, Submission, decode_batch, decode_submission};
use libfuzzer_sys::fuzz_target;

const CODES: [&str; 3] = ["bad_json", "bad_hex", "bad_tx_encoding"];

fuzz_target!(|data: &[u8]| {
    let params = Params::default();
    match decode_submission(data, &params) {
        Ok(tx) => {
            let again = serde_json::to_vec(&Submission::of(&tx)).expect("serializes");
            assert_eq!(decode_submission(&again, &params), Ok(tx), "envelope round trip differs");
        }
        Err(e) => assert!(CODES.contains(&e.code())),
    }
    match decode_batch(data, &params, 16) {
        Ok(items) => {
            let good: Vec<_> = items
                .into_iter()
                .filter_map(|item| match item {
                    Ok(tx) => Some(tx),
                    Err(e) => {
                        assert!(CODES[1..].contains(&e.code()));
                        None
                    }
                })
                .collect();
            let again = serde_json::to_vec(&BatchSubmission::of(&good)).expect("serializes");
            let back: Vec<_> = decode_batch(&again, &params, 16)
                .expect("a re-encoded batch decodes")
                .into_iter()
                .map(|item| item.expect("each re-encoded entry decodes"))
                .collect();
            assert_eq!(back, good, "batch round trip differs");
        }
        Err(e) => assert!(["bad_json", "batch_too_large"].contains(&e.code())),
    }
});
