//! Model blob decoding never panics; an accepted blob re-encodes to the same bytes, and running
//! the model on an all-zero input (in range for every kind) never panics.
//!
//! The input is tried as it is and after the magic, so that mutations reach the dimensions and
//! tensors without first rediscovering the eight magic bytes. An LSTM blob holds two 4096-entry
//! tables: reaching one takes `-max_len=20000` (libFuzzer's default is 4096).
#![no_main]

use deai_infer::format::MAGIC;
use deai_infer::{Output, QuantModel, decode_input, infer};
use libfuzzer_sys::fuzz_target;

fn check(blob: &[u8]) {
    let Ok(model) = QuantModel::decode(blob) else {
        return;
    };
    assert_eq!(model.encode(), blob, "re-encoding differs");
    let zeros = vec![0u8; model.input_shape().len];
    let input = decode_input(&model, &zeros).expect("zero bytes are in range for every model");
    let out = infer(&model, &input);
    assert_eq!(out.logits.len(), model.arch().classes());
    assert_eq!(
        Output::from_bytes(&out.to_bytes()),
        Ok(out),
        "output bytes round trip"
    );
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut prefixed = MAGIC.to_vec();
    prefixed.extend_from_slice(data);
    check(&prefixed);
});
