//! The bytes of a paid query, shared by the provider and its clients.
//!
//! ```text
//! POST /v1/infer/{offer}
//!   deai-voucher: hex(SignedVoucher)   the payer's cumulative voucher for the channel
//!   deai-sign: 1                       (optional) sign, with this answer, every receipt of the
//!                                      channel not signed yet
//!   body: n × input                    n ≥ 1 queries, each the model's input length; n = 0
//!                                      only with deai-sign (a request that collects a signature)
//! 200
//!   deai-channel-spent: decimal        what the channel's answered queries cost so far
//!   body: Answer
//! 402 (and 4xx)
//!   deai-channel-spent: decimal        (when the channel is known) so a client that lost count
//!                                      can send a voucher that covers it
//!   body: the API's error JSON with a code naming what was wrong with the payment
//!
//! Answer = first_sequence u64 BE ‖ n u32 BE ‖ n × (u32 BE length ‖ output)
//!        ‖ 0u8                                          no signature with this answer
//!        | 1u8 ‖ k u32 BE ‖ k × leaf[32] ‖ signature[64]  a signed batch of k receipts
//! ```
//!
//! The answer carries outputs, not receipts: the payer knows every other field of a receipt
//! (chain, offer, channel, the offer's model, the voucher it sent, the hash of its input, and the
//! sequence `first_sequence + i`), so it rebuilds each receipt and its leaf itself. The provider
//! signs the leaves of its pending receipts together ([`deai_ledger::SignedLeaves`]): when the
//! payer sends a new, higher voucher, when it asks (`deai-sign`), and at the latest every
//! `receipt_interval` queries of a channel. The payer checks the one signature over the root of
//! the leaves it was sent, after finding its own receipts' leaves among them, and derives a
//! receipt's inclusion proof only to dispute it. One signature and one check per interval, not
//! per request, is what keeps paid queries close to free ones (docs/inference.md).
//!
//! A provider serving without payment (the benchmark's baseline) answers the same form with
//! sequence 0 and no signature.

use deai_ledger::{Digest, SignedLeaves, payment::RECEIPT_BATCH_MAX};

/// Header carrying the voucher (hex of its canonical encoding).
pub const VOUCHER_HEADER: &str = "deai-voucher";
/// Header carrying what the channel's answered queries cost so far (decimal base units).
pub const SPENT_HEADER: &str = "deai-channel-spent";
/// Header asking the provider to sign every pending receipt of the channel with this answer.
pub const SIGN_HEADER: &str = "deai-sign";

/// Why an answer could not be read.
#[derive(Debug, thiserror::Error)]
#[error("malformed answer: {0}")]
pub struct WireError(String);

/// The body of a `200` to a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Sequence of the first output (output `i` has `first_sequence + i`).
    pub first_sequence: u64,
    /// `deai_infer::Output::to_bytes` of each query, in order.
    pub outputs: Vec<Vec<u8>>,
    /// The provider's signed batch, when this answer closes one.
    pub signed: Option<SignedLeaves>,
}

impl Answer {
    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let outputs: usize = self.outputs.iter().map(|o| 4 + o.len()).sum();
        let signed = self
            .signed
            .as_ref()
            .map_or(0, |s| 4 + 32 * s.leaves.len() + 64);
        let mut out = Vec::with_capacity(8 + 4 + outputs + 1 + signed);
        out.extend_from_slice(&self.first_sequence.to_be_bytes());
        out.extend_from_slice(&count(self.outputs.len()).to_be_bytes());
        for o in &self.outputs {
            out.extend_from_slice(&count(o.len()).to_be_bytes());
            out.extend_from_slice(o);
        }
        match &self.signed {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                out.extend_from_slice(&count(s.leaves.len()).to_be_bytes());
                for leaf in &s.leaves {
                    out.extend_from_slice(&leaf.0);
                }
                out.extend_from_slice(&s.signature);
            }
        }
        out
    }

    /// Reads an answer that should hold `expected` outputs of at most `output_max` bytes each;
    /// refuses anything else (other counts, a cut or oversized item, trailing bytes, a batch of
    /// no leaf or more than [`RECEIPT_BATCH_MAX`]) before allocating for it.
    pub fn decode(bytes: &[u8], expected: usize, output_max: usize) -> Result<Self, WireError> {
        let mut r = Reader(bytes);
        let first_sequence = u64::from_be_bytes(r.array("the first sequence")?);
        let n = r.u32("the output count")? as usize;
        if n != expected {
            return Err(WireError(format!("{n} outputs for {expected} queries")));
        }
        let mut outputs = Vec::with_capacity(n);
        for i in 0..n {
            let len = r.u32("an output length")? as usize;
            if len > output_max {
                return Err(WireError(format!(
                    "output {i} has {len} bytes, above the {output_max} a receipt may hold"
                )));
            }
            outputs.push(r.take(len, "an output")?.to_vec());
        }
        let signed = match r.array::<1>("the signature flag")? {
            [0] => None,
            [1] => {
                let k = r.u32("the leaf count")?;
                if k == 0 || k > RECEIPT_BATCH_MAX {
                    return Err(WireError(format!(
                        "a signed batch of {k} leaves (1 to {RECEIPT_BATCH_MAX})"
                    )));
                }
                let raw = r.take(32 * k as usize, "the leaves")?;
                let leaves = raw
                    .chunks_exact(32)
                    .map(|c| Digest(c.try_into().expect("chunks of 32")))
                    .collect();
                let signature = r.array("the signature")?;
                Some(SignedLeaves { leaves, signature })
            }
            [f] => return Err(WireError(format!("signature flag {f}"))),
        };
        if !r.0.is_empty() {
            return Err(WireError(format!("{} trailing bytes", r.0.len())));
        }
        Ok(Self {
            first_sequence,
            outputs,
            signed,
        })
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).expect("an answer is far below 4 GiB")
}

/// Reads the answer's fields in turn.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError(format!(
                "{what} needs {n} bytes, {} left",
                self.0.len()
            )));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], WireError> {
        Ok(self.take(N, what)?.try_into().expect("took N bytes"))
    }

    fn u32(&mut self, what: &str) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn answer(signed: bool) -> Answer {
        Answer {
            first_sequence: 41,
            outputs: vec![vec![1, 2, 3], vec![], vec![9; 300]],
            signed: signed.then(|| SignedLeaves {
                leaves: vec![Digest::hash(b"a"), Digest::hash(b"b")],
                signature: [7; 64],
            }),
        }
    }

    #[test]
    fn answers_round_trip_and_damage_is_refused() {
        for signed in [false, true] {
            let a = answer(signed);
            let bytes = a.encode();
            assert_eq!(Answer::decode(&bytes, 3, 300).expect("decodes"), a);
            assert!(Answer::decode(&bytes, 2, 300).is_err(), "another count");
            assert!(
                Answer::decode(&bytes, 3, 299).is_err(),
                "an output too long"
            );
            for cut in 0..bytes.len() {
                assert!(
                    Answer::decode(&bytes[..cut], 3, 300).is_err(),
                    "cut at {cut}"
                );
            }
            let trailing = [bytes.as_slice(), &[0]].concat();
            assert!(Answer::decode(&trailing, 3, 300).is_err(), "trailing");
        }
        // A batch of no leaf, or a flag other than 0 and 1, is refused.
        let mut bytes = answer(true).encode();
        let flag = bytes.len() - 64 - 2 * 32 - 4 - 1;
        bytes[flag + 1..flag + 5].copy_from_slice(&0u32.to_be_bytes());
        assert!(Answer::decode(&bytes, 3, 300).is_err());
        let mut bytes = answer(false).encode();
        *bytes.last_mut().expect("flag") = 2;
        assert!(Answer::decode(&bytes, 3, 300).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_accepted_ones_are_canonical(
            bytes in prop::collection::vec(any::<u8>(), 0..300),
            expected in 0usize..4,
        ) {
            if let Ok(a) = Answer::decode(&bytes, expected, 64) {
                prop_assert_eq!(a.encode(), bytes);
            }
        }

        /// Valid answers with bytes changed: never a panic, and what decodes is canonical.
        #[test]
        fn mutated_answers_never_panic(
            signed in any::<bool>(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            let mut bytes = answer(signed).encode();
            for (i, b) in &flips {
                let i = i.index(bytes.len());
                bytes[i] = *b;
            }
            if let Ok(a) = Answer::decode(&bytes, 3, 300) {
                prop_assert_eq!(a.encode(), bytes);
            }
        }
    }
}
