//! The bytes of a paid query, shared by the provider and its clients.
//!
//! ```text
//! POST /v1/infer/{offer}
//!   deai-voucher: hex(SignedVoucher)        the payer's cumulative voucher for the channel
//!   body: n × input                         n ≥ 1 queries, each the model's input length
//! 200
//!   deai-channel-spent: decimal             what the channel's answered queries cost so far
//!   body: n × (u32 BE length ‖ SignedQueryReceipt)   one receipt per query, in order,
//!                                                  signed together (one Merkle root)
//! 402 (and 4xx)
//!   deai-channel-spent: decimal             (when the channel is known) so a client that lost
//!                                           count can send a voucher that covers it
//!   body: the API's error JSON with a code naming what was wrong with the payment
//! ```
//!
//! A receipt carries the answer (`deai_infer::Output` bytes), so the paid body is the receipts.
//! A provider serving without payment (the benchmark's baseline) frames the output bytes alone.

use deai_ledger::{Limits, SignedQueryReceipt};

/// Header carrying the voucher (hex of its canonical encoding).
pub const VOUCHER_HEADER: &str = "deai-voucher";
/// Header carrying what the channel's answered queries cost so far (decimal base units).
pub const SPENT_HEADER: &str = "deai-channel-spent";

/// Why an answer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The framing is broken (a length past the end, trailing bytes, too many items).
    #[error("malformed answer: {0}")]
    Framing(String),
    /// A receipt did not decode.
    #[error("receipt {index}: {source}")]
    Receipt {
        /// Its position in the answer.
        index: usize,
        /// Why.
        source: deai_ledger::DecodeError,
    },
}

/// `items`, each as `u32 BE length ‖ bytes`.
pub fn encode_frames<I: AsRef<[u8]>>(items: &[I]) -> Vec<u8> {
    let size = items.iter().map(|i| 4 + i.as_ref().len()).sum();
    let mut out = Vec::with_capacity(size);
    for item in items {
        let item = item.as_ref();
        let len = u32::try_from(item.len()).expect("an answer is far below 4 GiB");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(item);
    }
    out
}

/// Splits frames, refusing more than `max_items`, a length past the end or trailing bytes.
pub fn decode_frames(bytes: &[u8], max_items: usize) -> Result<Vec<&[u8]>, WireError> {
    let mut items = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        if items.len() == max_items {
            return Err(WireError::Framing(format!("more than {max_items} items")));
        }
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(WireError::Framing("a cut length".into()));
        };
        let len = u32::from_be_bytes(*len) as usize;
        if tail.len() < len {
            return Err(WireError::Framing(format!(
                "an item of {len} bytes with {} left",
                tail.len()
            )));
        }
        let (item, tail) = tail.split_at(len);
        items.push(item);
        rest = tail;
    }
    Ok(items)
}

/// The receipts of a paid answer that should hold `expected` of them.
pub fn decode_receipts(
    bytes: &[u8],
    expected: usize,
    limits: &Limits,
) -> Result<Vec<SignedQueryReceipt>, WireError> {
    let frames = decode_frames(bytes, expected)?;
    if frames.len() != expected {
        return Err(WireError::Framing(format!(
            "{} receipts for {expected} queries",
            frames.len()
        )));
    }
    frames
        .into_iter()
        .enumerate()
        .map(|(index, f)| {
            SignedQueryReceipt::decode_limits(f, limits)
                .map_err(|source| WireError::Receipt { index, source })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_round_trip_and_damage_is_refused() {
        let items: Vec<Vec<u8>> = vec![vec![1, 2, 3], vec![], vec![9; 300]];
        let bytes = encode_frames(&items);
        let back = decode_frames(&bytes, 3).expect("decodes");
        assert_eq!(back, items.iter().map(Vec::as_slice).collect::<Vec<_>>());
        assert!(decode_frames(&bytes, 2).is_err(), "too many");
        assert!(decode_frames(&bytes[..bytes.len() - 1], 3).is_err(), "cut");
        assert!(
            decode_frames(&[bytes.as_slice(), &[0]].concat(), 4).is_err(),
            "trailing"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(items) = decode_frames(&bytes, 16) {
                prop_assert_eq!(encode_frames(&items), bytes);
            }
        }
    }
}
