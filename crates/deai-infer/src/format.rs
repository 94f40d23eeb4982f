//! The model blob: [`QuantModel::encode`] and the strict [`QuantModel::decode`].
//!
//! The layout is specified in the crate docs. The decoder reads outside input (a blob fetched by
//! hash, a dispute's model): it never panics, checks every length before allocating (sizes are
//! bounded by [`crate::arch::PARAMS_MAX`] and by the bytes actually present), rejects unknown
//! kinds and trailing bytes, and builds through `QuantModel::new`, so a decoded model satisfies
//! the accumulator bound. Encoding is canonical: `encode(decode(b)) == b` for every accepted `b`.

use crate::arch::{Arch, ArchError, KERNEL};
use crate::fixed::Requant;
use crate::model::{Dense, LUT_LEN, Lstm, ModelError, Net, QuantModel};

/// The first eight bytes of every blob (version 1 of the format).
pub const MAGIC: &[u8; 8] = b"deai-qm1";

const KIND_LOGISTIC: u8 = 1;
const KIND_MLP: u8 = 2;
const KIND_CNN: u8 = 3;
const KIND_LSTM: u8 = 4;

/// Why a blob is not a model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The blob does not start with [`MAGIC`].
    #[error("not a deai-qm1 model blob")]
    Magic,
    /// The kind byte names no architecture.
    #[error("unknown model kind {0}")]
    Kind(u8),
    /// The blob ends before a field it needs.
    #[error("truncated at byte {offset}: {needed} more bytes needed")]
    Truncated {
        /// Where the missing field starts.
        offset: usize,
        /// Its size.
        needed: usize,
    },
    /// Bytes follow the last field.
    #[error("{0} trailing bytes after the model")]
    Trailing(usize),
    /// The dimensions are out of bounds.
    #[error(transparent)]
    Arch(#[from] ArchError),
    /// The tensors do not form a valid model.
    #[error(transparent)]
    Model(#[from] ModelError),
}

impl QuantModel {
    /// The canonical blob.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len_hint());
        out.extend_from_slice(MAGIC);
        let (kind, dims): (u8, Vec<usize>) = match self.arch {
            Arch::Logistic { inputs, classes } => (KIND_LOGISTIC, vec![inputs, classes]),
            Arch::Mlp {
                inputs,
                hidden,
                classes,
            } => (KIND_MLP, vec![inputs, hidden, classes]),
            Arch::Cnn {
                side,
                c1,
                c2,
                classes,
            } => (KIND_CNN, vec![side, c1, c2, classes]),
            Arch::CharLstm {
                seq,
                vocab,
                embed,
                hidden,
            } => (KIND_LSTM, vec![seq, vocab, embed, hidden]),
        };
        out.push(kind);
        for d in dims {
            // Dimensions are bounded by `DIM_MAX` (validated), so they fit a u32.
            out.extend_from_slice(&(d as u32).to_le_bytes());
        }
        match self.net() {
            Net::Logistic { fc } => {
                out.push(self.input_max);
                put_dense(&mut out, fc);
            }
            Net::Mlp { fc1, fc2 } => {
                out.push(self.input_max);
                put_dense(&mut out, fc1);
                put_dense(&mut out, fc2);
            }
            Net::Cnn { conv1, conv2, fc } => {
                out.push(self.input_max);
                put_dense(&mut out, conv1);
                put_dense(&mut out, conv2);
                put_dense(&mut out, fc);
            }
            Net::CharLstm { lstm, fc } => {
                for v in &lstm.input_proj {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                put_dense(&mut out, &lstm.recurrent);
                for v in lstm.sigmoid.iter().chain(&lstm.tanh) {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                put_dense(&mut out, fc);
            }
        }
        out
    }

    /// Parses and checks a blob. Never panics; see the module docs for what is checked.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(MAGIC.len())? != MAGIC {
            return Err(DecodeError::Magic);
        }
        let kind = r.u8()?;
        let arch = match kind {
            KIND_LOGISTIC => Arch::Logistic {
                inputs: r.dim()?,
                classes: r.dim()?,
            },
            KIND_MLP => Arch::Mlp {
                inputs: r.dim()?,
                hidden: r.dim()?,
                classes: r.dim()?,
            },
            KIND_CNN => Arch::Cnn {
                side: r.dim()?,
                c1: r.dim()?,
                c2: r.dim()?,
                classes: r.dim()?,
            },
            KIND_LSTM => Arch::CharLstm {
                seq: r.dim()?,
                vocab: r.dim()?,
                embed: r.dim()?,
                hidden: r.dim()?,
            },
            other => return Err(DecodeError::Kind(other)),
        };
        // Bounds first: every size read below is a product of checked dimensions.
        arch.validate()?;
        let (input_max, net) = read_net(&mut r, arch)?;
        if r.pos != bytes.len() {
            return Err(DecodeError::Trailing(bytes.len() - r.pos));
        }
        Ok(QuantModel::new(arch, input_max, net)?)
    }

    fn encoded_len_hint(&self) -> usize {
        let dense = |d: &Dense| d.weights.len() + 9 * d.rows;
        // magic, kind, dims (u32 each), then input_max for the image kinds.
        let header = MAGIC.len() + 1;
        header
            + match self.net() {
                Net::Logistic { fc } => 8 + 1 + dense(fc),
                Net::Mlp { fc1, fc2 } => 12 + 1 + dense(fc1) + dense(fc2),
                Net::Cnn { conv1, conv2, fc } => 16 + 1 + dense(conv1) + dense(conv2) + dense(fc),
                Net::CharLstm { lstm, fc } => {
                    16 + 4 * lstm.input_proj.len()
                        + dense(&lstm.recurrent)
                        + 4 * LUT_LEN
                        + dense(fc)
                }
            }
    }
}

/// The layers of `arch`, in blob order.
fn read_net(r: &mut Reader<'_>, arch: Arch) -> Result<(u8, Net), DecodeError> {
    let k2 = KERNEL * KERNEL;
    Ok(match arch {
        Arch::Logistic { inputs, classes } => {
            let input_max = r.u8()?;
            let fc = r.dense(classes, inputs)?;
            (input_max, Net::Logistic { fc })
        }
        Arch::Mlp {
            inputs,
            hidden,
            classes,
        } => {
            let input_max = r.u8()?;
            let fc1 = r.dense(hidden, inputs)?;
            let fc2 = r.dense(classes, hidden)?;
            (input_max, Net::Mlp { fc1, fc2 })
        }
        Arch::Cnn {
            side,
            c1,
            c2,
            classes,
        } => {
            let input_max = r.u8()?;
            let s = crate::arch::CnnGeometry::new(side).pool2;
            let conv1 = r.dense(c1, k2)?;
            let conv2 = r.dense(c2, c1 * k2)?;
            let fc = r.dense(classes, c2 * s * s)?;
            (input_max, Net::Cnn { conv1, conv2, fc })
        }
        Arch::CharLstm { vocab, hidden, .. } => {
            let input_proj = r.i32s(vocab * 4 * hidden)?;
            let recurrent = r.dense(4 * hidden, hidden)?;
            let sigmoid = r.i16s(LUT_LEN)?;
            let tanh = r.i16s(LUT_LEN)?;
            let fc = r.dense(vocab, hidden)?;
            let lstm = Lstm {
                input_proj,
                recurrent,
                sigmoid,
                tanh,
            };
            (0, Net::CharLstm { lstm, fc })
        }
    })
}

fn put_dense(out: &mut Vec<u8>, d: &Dense) {
    out.extend(d.weights.iter().map(|&w| w.to_le_bytes()[0]));
    for b in &d.bias {
        out.extend_from_slice(&b.to_le_bytes());
    }
    for q in &d.requant {
        out.extend_from_slice(&q.mult.to_le_bytes());
    }
    out.extend(d.requant.iter().map(|q| q.shift));
}

/// A cursor over the blob; every read checks the remaining length first.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let truncated = DecodeError::Truncated {
            offset: self.pos,
            needed: n,
        };
        let end = self.pos.checked_add(n).ok_or(truncated.clone())?;
        let slice = self.bytes.get(self.pos..end).ok_or(truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// A `u32` dimension; anything above `u32` range cannot pass `Arch::validate` anyway.
    fn dim(&mut self) -> Result<usize, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    /// `n` little-endian `i32`s; `n` is bounded by the validated architecture.
    fn i32s(&mut self, n: usize) -> Result<Vec<i32>, DecodeError> {
        let len = n
            .checked_mul(4)
            .ok_or(DecodeError::Arch(ArchError::TooLarge))?;
        let raw = self.take(len)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    fn i16s(&mut self, n: usize) -> Result<Vec<i16>, DecodeError> {
        let len = n
            .checked_mul(2)
            .ok_or(DecodeError::Arch(ArchError::TooLarge))?;
        let raw = self.take(len)?;
        Ok(raw
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect())
    }

    fn dense(&mut self, rows: usize, cols: usize) -> Result<Dense, DecodeError> {
        let n = rows
            .checked_mul(cols)
            .ok_or(DecodeError::Arch(ArchError::TooLarge))?;
        let weights = self
            .take(n)?
            .iter()
            .map(|&b| i8::from_le_bytes([b]))
            .collect();
        let bias = self.i32s(rows)?;
        let mults = self.i32s(rows)?;
        let shifts = self.take(rows)?;
        let requant = mults
            .iter()
            .zip(shifts)
            .map(|(&mult, &shift)| Requant { mult, shift })
            .collect();
        Ok(Dense::new(rows, cols, weights, bias, requant))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn archs() -> Vec<Arch> {
        vec![
            Arch::Logistic {
                inputs: 7,
                classes: 3,
            },
            Arch::Mlp {
                inputs: 9,
                hidden: 5,
                classes: 4,
            },
            Arch::Cnn {
                side: 16,
                c1: 2,
                c2: 3,
                classes: 4,
            },
            Arch::CharLstm {
                seq: 6,
                vocab: 11,
                embed: 3,
                hidden: 4,
            },
        ]
    }

    #[test]
    fn every_kind_round_trips() {
        for (i, arch) in archs().into_iter().enumerate() {
            let m = QuantModel::seeded(arch, i as u64);
            let blob = m.encode();
            assert_eq!(blob.len(), m.encoded_len_hint(), "{}", arch.name());
            assert_eq!(QuantModel::decode(&blob).as_ref(), Ok(&m));
            assert_eq!(m.hash(), *blake3::hash(&blob).as_bytes());
        }
    }

    #[test]
    fn every_truncation_and_any_trailing_byte_is_refused() {
        for arch in archs() {
            let blob = QuantModel::seeded(arch, 9).encode();
            for len in 0..blob.len() {
                assert!(QuantModel::decode(&blob[..len]).is_err(), "len {len}");
            }
            let mut long = blob.clone();
            long.push(0);
            assert_eq!(QuantModel::decode(&long), Err(DecodeError::Trailing(1)));
        }
    }

    #[test]
    fn named_errors() {
        let blob = QuantModel::seeded(archs()[1], 1).encode();
        let mut bad = blob.clone();
        bad[0] = b'x';
        assert_eq!(QuantModel::decode(&bad), Err(DecodeError::Magic));
        let mut bad = blob.clone();
        bad[8] = 9;
        assert_eq!(QuantModel::decode(&bad), Err(DecodeError::Kind(9)));
        let mut bad = blob.clone();
        bad[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            QuantModel::decode(&bad),
            Err(DecodeError::Arch(ArchError::Dim { name: "inputs", .. }))
        ));
        let mut bad = blob;
        bad[8 + 1 + 12] = 0; // input_max
        assert_eq!(
            QuantModel::decode(&bad),
            Err(DecodeError::Model(ModelError::InputMax))
        );
    }

    #[test]
    fn a_huge_claimed_size_fails_before_allocating() {
        let mut blob = MAGIC.to_vec();
        blob.push(KIND_MLP);
        for d in [65536u32, 255, 10] {
            blob.extend_from_slice(&d.to_le_bytes());
        }
        blob.push(16);
        assert!(matches!(
            QuantModel::decode(&blob),
            Err(DecodeError::Truncated { offset: 22, .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn round_trip(kind in 0usize..4, seed in any::<u64>()) {
            let m = QuantModel::seeded(archs()[kind], seed);
            let blob = m.encode();
            let back = QuantModel::decode(&blob).expect("own encoding decodes");
            prop_assert_eq!(back.encode(), blob);
            prop_assert_eq!(back, m);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = QuantModel::decode(&bytes);
            let mut prefixed = MAGIC.to_vec();
            prefixed.extend_from_slice(&bytes);
            if let Ok(m) = QuantModel::decode(&prefixed) {
                prop_assert_eq!(m.encode(), prefixed);
            }
        }

        /// Flipped bytes either fail to decode or give a model that is canonical and runs on any
        /// valid input without panicking (the accumulator bound holds).
        #[test]
        fn mutated_blobs_decode_or_fail_cleanly(
            kind in 0usize..4,
            seed in any::<u64>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            input_seed in any::<u64>(),
        ) {
            let mut blob = QuantModel::seeded(archs()[kind], seed).encode();
            for (at, value) in flips {
                let i = at.index(blob.len());
                blob[i] = value;
            }
            if let Ok(m) = QuantModel::decode(&blob) {
                prop_assert_eq!(m.encode(), blob);
                let input = crate::input::Input::seeded(&m, input_seed);
                let out = crate::engine::infer(&m, &input);
                prop_assert_eq!(out.logits.len(), m.arch().classes());
            }
        }
    }
}
