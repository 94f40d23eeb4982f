//! The round's public blobs besides the models: the unmasking record (what
//! `RoundResult.unmasking` hashes) and the aggregate (what `RoundResult.aggregate` hashes).
//!
//! Both are written with the one codec ([`deai_secagg::wire`]: big-endian fixed-width integers,
//! varint-counted lists, one byte per tag) and are canonical; decoding is bounded by
//! [`RecordLimits`], refuses trailing bytes, and its output re-encodes to the input. A
//! survivor's masked-update blob is its masked vector as big-endian `u32` words
//! ([`masked_blob`]), so the blob's BLAKE3 is exactly the hash
//! [`deai_secagg::hash_vector`] puts in the group's `UnmaskRecord::masked_hashes`: the record
//! lists each survivor's blob hash once, aligned with the group's survivors.

use bytes::BufMut as _;
use commonware_codec::{Buf, Copying, ReadExt as _, Write as _};
use deai_ledger::Digest;
use deai_secagg::msg::Advert;
use deai_secagg::quant::Quantizer;
use deai_secagg::server::UnmaskRecord;
use deai_secagg::wire::{
    DecodeError, put_words_be, read_count, read_items, read_words, write_count, write_words,
};
use thiserror::Error;

/// First bytes of an unmasking record blob.
pub const RECORD_MAGIC: &[u8; 8] = b"deai-ur3";
/// First bytes of an aggregate blob.
pub const AGGREGATE_MAGIC: &[u8; 8] = b"deai-ag2";
/// Longest abort reason kept in a record.
pub const REASON_BYTES_MAX: usize = 256;

const ADVERT_BYTES: usize = <Advert as commonware_codec::FixedSize>::SIZE;

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
    /// (The codec's error, as text, so the error stays comparable.)
    #[error("malformed blob: {0}")]
    Decode(String),
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

impl From<DecodeError> for RecordError {
    fn from(e: DecodeError) -> Self {
        Self::Decode(e.to_string())
    }
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

fn write_unmask(r: &UnmaskRecord, buf: &mut Vec<u8>) {
    buf.put_u64(r.round);
    write_count(r.adverts.len(), buf);
    r.adverts.iter().for_each(|a| a.write(buf));
    write_words(&r.survivors, buf);
    // masked_hashes, masked_signatures and self_seeds are aligned with survivors: no count of
    // their own.
    r.masked_hashes.iter().for_each(|h| buf.put_slice(h));
    r.masked_signatures
        .iter()
        .for_each(|sig| buf.put_slice(sig));
    r.self_seeds.iter().for_each(|s| buf.put_slice(s));
    write_count(r.consistency.len(), buf);
    for (c, sig) in &r.consistency {
        buf.put_u32(*c);
        buf.put_slice(sig);
    }
    write_count(r.dropped_keys.len(), buf);
    for (c, k) in &r.dropped_keys {
        buf.put_u32(*c);
        buf.put_slice(k);
    }
}

fn read_unmask(buf: &mut impl Buf, max: usize) -> Result<UnmaskRecord, DecodeError> {
    let round = u64::read(buf)?;
    let n = read_count(buf, max, ADVERT_BYTES)?;
    let adverts = read_items(buf, n, |b| Advert::read(b))?;
    let n = read_count(buf, max, 4 + 32 + 64 + 32)?;
    let survivors = read_items(buf, n, |b| u32::read(b))?;
    let masked_hashes = read_items(buf, n, |b| <[u8; 32]>::read(b))?;
    let masked_signatures = read_items(buf, n, |b| <[u8; 64]>::read(b))?;
    let self_seeds = read_items(buf, n, |b| <[u8; 32]>::read(b))?;
    let n = read_count(buf, max, 4 + 64)?;
    let consistency = read_items(buf, n, |b| Ok((u32::read(b)?, <[u8; 64]>::read(b)?)))?;
    let n = read_count(buf, max, 4 + 32)?;
    let dropped_keys = read_items(buf, n, |b| Ok((u32::read(b)?, <[u8; 32]>::read(b)?)))?;
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

/// Checks the magic and decodes the rest with `read`, refusing trailing bytes.
fn decode_blob<T>(
    bytes: &[u8],
    magic: &[u8; 8],
    what: &'static str,
    read: impl FnOnce(&mut Copying<'_>) -> Result<T, RecordError>,
) -> Result<T, RecordError> {
    let body = bytes.strip_prefix(magic).ok_or(RecordError::Magic(what))?;
    let mut buf = Copying(body);
    let value = read(&mut buf)?;
    match bytes::Buf::remaining(&buf) {
        0 => Ok(value),
        n => Err(DecodeError::ExtraData(n).into()),
    }
}

impl RoundRecord {
    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.put_slice(RECORD_MAGIC);
        out.put_u64(self.task);
        out.put_u32(self.round);
        out.put_slice(&self.spec_hash.0);
        out.put_slice(&self.global_model.0);
        out.put_u32(self.quantizer.clip.to_bits());
        out.put_u32(self.quantizer.level_bits);
        write_count(self.groups.len(), &mut out);
        for g in &self.groups {
            write_count(g.members.len(), &mut out);
            g.members.iter().for_each(|m| out.put_u64(*m));
            out.put_u64(g.secagg_round);
            out.put_u32(g.degree);
            out.put_u32(g.threshold);
            out.put_u32(g.modulus_bits);
            match &g.result {
                GroupResult::Aborted { reason } => {
                    out.put_u8(0);
                    let reason = truncate(reason);
                    write_count(reason.len(), &mut out);
                    out.put_slice(reason.as_bytes());
                }
                GroupResult::Done(u) => {
                    out.put_u8(1);
                    write_unmask(u, &mut out);
                }
            }
        }
        out
    }

    /// Decodes a record blob within `limits`.
    pub fn decode(bytes: &[u8], limits: &RecordLimits) -> Result<Self, RecordError> {
        decode_blob(bytes, RECORD_MAGIC, "unmasking record", |buf| {
            let task = u64::read(buf)?;
            let round = u32::read(buf)?;
            let spec_hash = Digest(<[u8; 32]>::read(buf)?);
            let global_model = Digest(<[u8; 32]>::read(buf)?);
            let quantizer = Quantizer {
                clip: f32::from_bits(u32::read(buf)?),
                level_bits: u32::read(buf)?,
            };
            let max = limits.datasets_max as usize;
            let n = read_count(buf, max, 1 + 8 + 12 + 1)?;
            let mut groups = Vec::with_capacity(n);
            for _ in 0..n {
                let m = read_count(buf, max, 8)?;
                let members = read_items(buf, m, u64::read)?;
                let secagg_round = u64::read(buf)?;
                let (degree, threshold, modulus_bits) =
                    (u32::read(buf)?, u32::read(buf)?, u32::read(buf)?);
                let result = match u8::read(buf)? {
                    0 => {
                        let len = read_count(buf, REASON_BYTES_MAX, 1)?;
                        let text = read_items(buf, len, u8::read)?;
                        GroupResult::Aborted {
                            reason: String::from_utf8(text).map_err(|_| RecordError::Reason)?,
                        }
                    }
                    1 => GroupResult::Done(read_unmask(buf, max)?),
                    tag => return Err(DecodeError::InvalidEnum(tag).into()),
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
            Ok(Self {
                task,
                round,
                spec_hash,
                global_model,
                quantizer,
                groups,
            })
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
        out.put_slice(AGGREGATE_MAGIC);
        write_count(self.groups.len(), &mut out);
        for g in &self.groups {
            match g {
                None => out.put_u8(0),
                Some(sum) => {
                    out.put_u8(1);
                    write_words(sum, &mut out);
                }
            }
        }
        out
    }

    /// Decodes an aggregate blob within `limits`.
    pub fn decode(bytes: &[u8], limits: &RecordLimits) -> Result<Self, RecordError> {
        decode_blob(bytes, AGGREGATE_MAGIC, "aggregate", |buf| {
            let n = read_count(buf, limits.datasets_max as usize, 1)?;
            let groups = read_items(buf, n, |b| match u8::read(b)? {
                0 => Ok(None),
                1 => read_words(b, limits.vector_len_max as usize).map(Some),
                tag => Err(DecodeError::InvalidEnum(tag)),
            })?;
            Ok(Self { groups })
        })
    }
}

/// A masked vector as a blob: its words, big-endian, uncounted (so its BLAKE3 is
/// [`deai_secagg::hash_vector`] of the words).
pub fn masked_blob(words: &[u32]) -> Vec<u8> {
    let mut out = vec![0; 4 * words.len()];
    put_words_be(&mut out, words);
    out
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
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
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
            Err(RecordError::Decode(DecodeError::ExtraData(1).to_string()))
        );
        let tight = RecordLimits {
            datasets_max: 2,
            ..LIMITS
        };
        assert!(matches!(
            RoundRecord::decode(&bytes, &tight),
            Err(RecordError::Decode(m)) if m == DecodeError::InvalidLength(3).to_string()
        ));
        let agg = AggregateBlob {
            groups: vec![Some(vec![0; 17])],
        };
        assert!(AggregateBlob::decode(&agg.encode(), &LIMITS).is_err());
        assert_eq!(
            AggregateBlob::decode(RECORD_MAGIC, &LIMITS),
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
