//! Decoding arbitrary bytes as client or server messages never panics, never allocates beyond
//! the input's size, and anything that decodes re-encodes to the same bytes (canonical form).
//! Covers every message kind: adverts with their seed commitment, shares, signed masked inputs,
//! consistency signatures and revealed shares (client); neighbour adverts, shares, the survivor
//! list and the unmasking request with its signature list (server).
#![no_main]

use deai_secagg::msg::{ClientMsg, Limits, ServerMsg};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits { clients: 1000, vector_len: 1 << 16 };

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = ClientMsg::decode(data, &LIMITS) {
        assert_eq!(msg.encode(), data, "client message encoding is not canonical");
    }
    if let Ok(msg) = ServerMsg::decode(data, &LIMITS) {
        assert_eq!(msg.encode(), data, "server message encoding is not canonical");
    }
});
