//! The round's public blobs besides the models: the unmasking record (what
//! `RoundResult.unmasking` hashes) and the aggregate (what `RoundResult.aggregate` hashes).
//!
//! Both encodings are canonical: little-endian fixed-width integers, `u32`-counted lists, one
//! byte per tag; decoding is bounded by [`RecordLimits`], refuses trailing bytes, and its output
//! re-encodes to the input. A survivor's masked-update blob is its masked vector as
//! little-endian `u32` words ([`masked_blob`]), so the blob's BLAKE3 is exactly the hash
//! [`deai_secagg::hash_vector`] puts in the group's `UnmaskRecord::masked_hashes`: the record
//! lists each survivor's blob hash once, aligned with the group's survivors.

use deai_ledger::Digest;
use deai_secagg::msg::Advert;
use deai_secagg::quant::Quantizer;
use deai_secagg::server::UnmaskRecord;
use deai_secagg::wire::{DecodeError, Reader, Writer};
use thiserror::Error;

/// First bytes of an unmasking record blob.
pub const RECORD_MAGIC: &[u8; 8] = b"deai-ur2";
/// First bytes of an aggregate blob.
pub const AGGREGATE_MAGIC: &[u8; 8] = b"deai-ag1";
/// Longest abort reason kept in a record.
pub const REASON_BYTES_MAX: usize = 256;

const ADVERT_BYTES: usize = 4 + 32 + 32 + 32 + 64;

/// Bounds on decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLimits {
    /// Most datasets in a round (and members in a group).
    pub datasets_max: u32,
    /// Most words in a group sum or masked vector (the model's parameters + 1).
    pub vector_len_max: u32,
}

/// Why a record or aggregate blob was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// Wrong magic.
    #[error("not a {0} blob (bad magic)")]
    Magic(&'static str),
    /// The bytes do not follow the format.
    #[error("malformed blob: {0}")]
    Decode(#[from] DecodeError),
    /// An abort reason is not UTF-8.
    #[error("abort reason is not UTF-8")]
    Reason,
    /// A masked blob's size is not a whole number of words of the expected length.
    #[error("masked blob of {got} bytes, expected {expected}")]
    MaskedSize {
        /// Bytes expected.
        expected: usize,
        /// Bytes received.
        got: usize,
    },
}

/// How one group's secure aggregation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupResult {
    /// Too few members answered at some step; nothing was revealed.
    Aborted {
        /// The server's error, as text (at most [`REASON_BYTES_MAX`] bytes).
        reason: String,
    },
    /// The group sum was unmasked; the record lets anyone redo it.
    Done(UnmaskRecord),
}

/// One group in the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    /// Dataset ids, ascending (SecAgg client `i` is `members[i]`).
    pub members: Vec<u64>,
    /// The SecAgg round id bound into the group's signatures.
    pub secagg_round: u64,
    /// Graph degree.
    pub degree: u32,
    /// Shamir threshold.
    pub threshold: u32,
    /// Arithmetic modulus bits.
    pub modulus_bits: u32,
    /// How it ended.
    pub result: GroupResult,
}

/// The unmasking record of a round.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundRecord {
    /// The task.
    pub task: u64,
    /// The round.
    pub round: u32,
    /// BLAKE3 of the task spec.
    pub spec_hash: Digest,
    /// BLAKE3 of the global model the round trained from.
    pub global_model: Digest,
    /// The quantizer every owner used.
    pub quantizer: Quantizer,
    /// The groups in plan order.
    pub groups: Vec<GroupRecord>,
}

fn put_u32_list(out: &mut Vec<u8>, list: &[u32]) {
    out.put_count(list.len());
    list.iter().for_each(|v| out.put_u32(*v));
}

fn put_unmask(out: &mut Vec<u8>, r: &UnmaskRecord) {
    out.put_u64(r.round);
    out.put_count(r.adverts.len());
    for a in &r.adverts {
        out.put_u32(a.from);
        out.extend_from_slice(&a.cipher_pk);
        out.extend_from_slice(&a.mask_pk);
        out.extend_from_slice(&a.seed_commitment);
        out.extend_from_slice(&a.signature);
    }
    put_u32_list(out, &r.survivors);
    // masked_hashes, masked_signatures and self_seeds are aligned with survivors: no count of
    // their own.
    r.masked_hashes
        .iter()
        .for_each(|h| out.extend_from_slice(h));
    r.masked_signatures
        .iter()
        .for_each(|sig| out.extend_from_slice(sig));
    r.self_seeds.iter().for_each(|s| out.extend_from_slice(s));
    out.put_count(r.consistency.len());
    for (c, sig) in &r.consistency {
        out.put_u32(*c);
        out.extend_from_slice(sig);
    }
    out.put_count(r.dropped_keys.len());
    for (c, k) in &r.dropped_keys {
        out.put_u32(*c);
        out.extend_from_slice(k);
    }
}

fn read_unmask(r: &mut Reader<'_>, max: u32) -> Result<UnmaskRecord, DecodeError> {
    let round = r.u64()?;
    let n = r.count("adverts", max, ADVERT_BYTES)?;
    let adverts = (0..n)
        .map(|_| {
            Ok(Advert {
                from: r.u32()?,
                cipher_pk: r.array()?,
                mask_pk: r.array()?,
                seed_commitment: r.array()?,
                signature: r.array()?,
            })
        })
        .collect::<Result<Vec<_>, DecodeError>>()?;
    let n = r.count("survivors", max, 4 + 32 + 64 + 32)?;
    let survivors = (0..n).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
    let masked_hashes = (0..n).map(|_| r.array()).collect::<Result<Vec<_>, _>>()?;
    let masked_signatures = (0..n).map(|_| r.array()).collect::<Result<Vec<_>, _>>()?;
    let self_seeds = (0..n).map(|_| r.array()).collect::<Result<Vec<_>, _>>()?;
    let n = r.count("consistency signatures", max, 4 + 64)?;
    let consistency = (0..n)
        .map(|_| Ok((r.u32()?, r.array()?)))
        .collect::<Result<Vec<_>, DecodeError>>()?;
    let n = r.count("dropped keys", max, 36)?;
    let dropped_keys = (0..n)
        .map(|_| Ok((r.u32()?, r.array()?)))
        .collect::<Result<Vec<_>, DecodeError>>()?;
    Ok(UnmaskRecord {
        round,
        adverts,
        survivors,
        masked_hashes,
        masked_signatures,
        consistency,
        self_seeds,
        dropped_keys,
    })
}

impl RoundRecord {
    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(RECORD_MAGIC);
        out.put_u64(self.task);
        out.put_u32(self.round);
        out.extend_from_slice(&self.spec_hash.0);
        out.extend_from_slice(&self.global_model.0);
        out.put_u32(self.quantizer.clip.to_bits());
        out.put_u32(self.quantizer.level_bits);
        out.put_count(self.groups.len());
        for g in &self.groups {
            out.put_count(g.members.len());
            g.members.iter().for_each(|m| out.put_u64(*m));
            out.put_u64(g.secagg_round);
            out.put_u32(g.degree);
            out.put_u32(g.threshold);
            out.put_u32(g.modulus_bits);
            match &g.result {
                GroupResult::Aborted { reason } => {
                    out.push(0);
                    let reason = truncate(reason);
                    out.put_count(reason.len());
                    out.extend_from_slice(reason.as_bytes());
                }
                GroupResult::Done(u) => {
                    out.push(1);
                    put_unmask(&mut out, u);
                }
            }
        }
        out
    }

    /// Decodes a record blob within `limits`.
    pub fn decode(bytes: &[u8], limits: &RecordLimits) -> Result<Self, RecordError> {
        let mut r = Reader::new(bytes);
        if r.take(8).ok() != Some(RECORD_MAGIC.as_slice()) {
            return Err(RecordError::Magic("unmasking record"));
        }
        let task = r.u64()?;
        let round = r.u32()?;
        let spec_hash = Digest(r.array()?);
        let global_model = Digest(r.array()?);
        let quantizer = Quantizer {
            clip: f32::from_bits(r.u32()?),
            level_bits: r.u32()?,
        };
        let max = limits.datasets_max;
        let n = r.count("groups", max, 4 + 8 + 12 + 1)?;
        let mut groups = Vec::with_capacity(n);
        for _ in 0..n {
            let m = r.count("members", max, 8)?;
            let members = (0..m).map(|_| r.u64()).collect::<Result<Vec<_>, _>>()?;
            let secagg_round = r.u64()?;
            let (degree, threshold, modulus_bits) = (r.u32()?, r.u32()?, r.u32()?);
            let result = match r.u8()? {
                0 => {
                    let len = r.count("reason", REASON_BYTES_MAX as u32, 1)?;
                    let text = r.take(len)?.to_vec();
                    GroupResult::Aborted {
                        reason: String::from_utf8(text).map_err(|_| RecordError::Reason)?,
                    }
                }
                1 => GroupResult::Done(read_unmask(&mut r, max)?),
                tag => {
                    return Err(DecodeError::Tag {
                        what: "group result",
                        tag,
                    }
                    .into());
                }
            };
            groups.push(GroupRecord {
                members,
                secagg_round,
                degree,
                threshold,
                modulus_bits,
                result,
            });
        }
        r.finish()?;
        Ok(Self {
            task,
            round,
            spec_hash,
            global_model,
            quantizer,
            groups,
        })
    }
}

fn truncate(reason: &str) -> &str {
    let mut end = reason.len().min(REASON_BYTES_MAX);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// The round's aggregate: each group's unmasked sum (`None` for an aborted group), in plan
/// order. Words are quantized values mod 2^b, the last one the group's total weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateBlob {
    /// Per-group sums.
    pub groups: Vec<Option<Vec<u32>>>,
}

impl AggregateBlob {
    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(AGGREGATE_MAGIC);
        out.put_count(self.groups.len());
        for g in &self.groups {
            match g {
                None => out.push(0),
                Some(sum) => {
                    out.push(1);
                    put_u32_list(&mut out, sum);
                }
            }
        }
        out
    }

    /// Decodes an aggregate blob within `limits`.
    pub fn decode(bytes: &[u8], limits: &RecordLimits) -> Result<Self, RecordError> {
        let mut r = Reader::new(bytes);
        if r.take(8).ok() != Some(AGGREGATE_MAGIC.as_slice()) {
            return Err(RecordError::Magic("aggregate"));
        }
        let n = r.count("groups", limits.datasets_max, 1)?;
        let mut groups = Vec::with_capacity(n);
        for _ in 0..n {
            groups.push(match r.u8()? {
                0 => None,
                1 => {
                    let len = r.count("sum", limits.vector_len_max, 4)?;
                    Some((0..len).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?)
                }
                tag => {
                    return Err(DecodeError::Tag {
                        what: "group sum",
                        tag,
                    }
                    .into());
                }
            });
        }
        r.finish()?;
        Ok(Self { groups })
    }
}

/// A masked vector as a blob: its words, little-endian.
pub fn masked_blob(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// The words of a masked blob, which must hold exactly `vector_len` of them.
pub fn masked_words(bytes: &[u8], vector_len: usize) -> Result<Vec<u32>, RecordError> {
    if bytes.len() != vector_len * 4 {
        return Err(RecordError::MaskedSize {
            expected: vector_len * 4,
            got: bytes.len(),
        });
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RoundRecord {
        RoundRecord {
            task: 3,
            round: 2,
            spec_hash: Digest([1; 32]),
            global_model: Digest([2; 32]),
            quantizer: Quantizer {
                clip: 2.5,
                level_bits: 16,
            },
            groups: vec![
                GroupRecord {
                    members: vec![4, 9, 12],
                    secagg_round: 77,
                    degree: 2,
                    threshold: 2,
                    modulus_bits: 18,
                    result: GroupResult::Aborted {
                        reason: "only 1 client".into(),
                    },
                },
                GroupRecord {
                    members: vec![1, 2, 5],
                    secagg_round: 78,
                    degree: 2,
                    threshold: 2,
                    modulus_bits: 18,
                    result: GroupResult::Done(UnmaskRecord {
                        round: 78,
                        adverts: vec![Advert {
                            from: 0,
                            cipher_pk: [5; 32],
                            mask_pk: [6; 32],
                            seed_commitment: [13; 32],
                            signature: [7; 64],
                        }],
                        survivors: vec![0, 2],
                        masked_hashes: vec![[8; 32], [9; 32]],
                        masked_signatures: vec![[14; 64], [15; 64]],
                        consistency: vec![(0, [16; 64]), (2, [17; 64])],
                        self_seeds: vec![[10; 32], [11; 32]],
                        dropped_keys: vec![(1, [12; 32])],
                    }),
                },
            ],
        }
    }

    const LIMITS: RecordLimits = RecordLimits {
        datasets_max: 64,
        vector_len_max: 16,
    };

    #[test]
    fn record_and_aggregate_round_trip_canonically() {
        let rec = sample();
        let bytes = rec.encode();
        assert_eq!(RoundRecord::decode(&bytes, &LIMITS).expect("decodes"), rec);
        let agg = AggregateBlob {
            groups: vec![None, Some(vec![1, 2, 3])],
        };
        let a = agg.encode();
        assert_eq!(AggregateBlob::decode(&a, &LIMITS).expect("decodes"), agg);
        assert_eq!(
            masked_words(&masked_blob(&[1, 2]), 2).expect("2 words"),
            [1, 2]
        );
        assert_eq!(
            Digest::hash(&masked_blob(&[1, 2, 3])).0,
            deai_secagg::hash_vector(&[1, 2, 3])
        );
    }

    #[test]
    fn decoding_is_bounded_and_strict() {
        let bytes = sample().encode();
        for cut in [0, 7, 30, bytes.len() - 1] {
            assert!(
                RoundRecord::decode(&bytes[..cut], &LIMITS).is_err(),
                "cut {cut}"
            );
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            RoundRecord::decode(&trailing, &LIMITS),
            Err(RecordError::Decode(DecodeError::Trailing(1)))
        );
        let tight = RecordLimits {
            datasets_max: 2,
            ..LIMITS
        };
        assert!(matches!(
            RoundRecord::decode(&bytes, &tight),
            Err(RecordError::Decode(DecodeError::TooLong {
                what: "members",
                ..
            }))
        ));
        let agg = AggregateBlob {
            groups: vec![Some(vec![0; 17])],
        };
        assert!(AggregateBlob::decode(&agg.encode(), &LIMITS).is_err());
        assert_eq!(
            AggregateBlob::decode(b"deai-ur1", &LIMITS),
            Err(RecordError::Magic("aggregate"))
        );
        assert!(matches!(
            masked_words(&[0; 5], 1),
            Err(RecordError::MaskedSize { .. })
        ));
    }

    proptest::proptest! {
        /// Any bytes, and any one-byte change of a valid record, decode or fail by name.
        #[test]
        fn decoders_never_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            at in 0usize..10_000,
            x in 1u8..=255,
        ) {
            let _ = RoundRecord::decode(&bytes, &LIMITS);
            let _ = AggregateBlob::decode(&bytes, &LIMITS);
            let mut good = sample().encode();
            let at = at % good.len();
            good[at] ^= x;
            if let Ok(r) = RoundRecord::decode(&good, &LIMITS) {
                proptest::prop_assert_eq!(r.encode(), good, "canonical");
            }
        }
    }
}
