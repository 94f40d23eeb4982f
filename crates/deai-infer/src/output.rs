//! Query outputs and their canonical bytes (what a receipt carries and a dispute compares).
//!
//! Layout, little-endian: `class: u32 | count: u32 | count × logit: i32`. `class` is the index
//! of the first largest logit. [`Output::from_bytes`] is strict: exact length, `1 ≤ count ≤
//! DIM_MAX`, and `class` must be the argmax, so two encodings of one output cannot differ.

use crate::arch::DIM_MAX;

/// The result of one query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Output {
    /// Integer logits at the model's common output scale (comparable across classes).
    pub logits: Vec<i32>,
    /// Index of the first largest logit.
    pub class: u32,
}

/// Why bytes are not an output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    /// Shorter or longer than its header says.
    #[error("output has {len} bytes, expected {expected}")]
    Length {
        /// Bytes given.
        len: usize,
        /// Bytes the header implies.
        expected: usize,
    },
    /// No logits, or more than any model has.
    #[error("{0} logits outside 1..={DIM_MAX}")]
    Count(usize),
    /// The class is not the argmax of the logits.
    #[error("class {class} is not the argmax {argmax}")]
    Class {
        /// Class given.
        class: u32,
        /// The logits' argmax.
        argmax: u32,
    },
}

impl Output {
    /// Builds the output of `logits` (non-empty): the class is their first argmax.
    pub fn from_logits(logits: Vec<i32>) -> Self {
        let class = argmax(&logits);
        Self { logits, class }
    }

    /// The canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 4 * self.logits.len());
        out.extend_from_slice(&self.class.to_le_bytes());
        out.extend_from_slice(&(self.logits.len() as u32).to_le_bytes());
        for l in &self.logits {
            out.extend_from_slice(&l.to_le_bytes());
        }
        out
    }

    /// Parses canonical bytes; never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OutputError> {
        let word = |i: usize| {
            bytes
                .get(4 * i..4 * i + 4)
                .map(|b| [b[0], b[1], b[2], b[3]])
        };
        let (Some(class), Some(count)) = (word(0), word(1)) else {
            return Err(OutputError::Length {
                len: bytes.len(),
                expected: 8,
            });
        };
        let (class, count) = (
            u32::from_le_bytes(class),
            u32::from_le_bytes(count) as usize,
        );
        if !(1..=DIM_MAX).contains(&count) {
            return Err(OutputError::Count(count));
        }
        let expected = 8 + 4 * count;
        if bytes.len() != expected {
            return Err(OutputError::Length {
                len: bytes.len(),
                expected,
            });
        }
        let logits: Vec<i32> = bytes[8..]
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let out = Self::from_logits(logits);
        if out.class != class {
            return Err(OutputError::Class {
                class,
                argmax: out.class,
            });
        }
        Ok(out)
    }

    /// BLAKE3 of [`Output::to_bytes`].
    pub fn hash(&self) -> [u8; 32] {
        *blake3::hash(&self.to_bytes()).as_bytes()
    }
}

/// Index of the first largest value (0 for an empty slice).
fn argmax(values: &[i32]) -> u32 {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn first_maximum_wins() {
        let o = Output::from_logits(vec![3, 7, 7, -1]);
        assert_eq!(o.class, 1);
        let bytes = o.to_bytes();
        assert_eq!(bytes.len(), 8 + 16);
        assert_eq!(Output::from_bytes(&bytes), Ok(o));
    }

    #[test]
    fn non_canonical_bytes_are_refused() {
        let mut bytes = Output::from_logits(vec![1, 5]).to_bytes();
        bytes[0] = 0;
        assert_eq!(
            Output::from_bytes(&bytes),
            Err(OutputError::Class {
                class: 0,
                argmax: 1
            })
        );
        assert!(Output::from_bytes(&bytes[..11]).is_err());
        assert_eq!(
            Output::from_bytes(&[0, 0, 0, 0, 0, 0, 0, 0]),
            Err(OutputError::Count(0))
        );
    }

    proptest! {
        #[test]
        fn bytes_round_trip_or_fail(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(o) = Output::from_bytes(&bytes) {
                prop_assert_eq!(o.to_bytes(), bytes);
            }
        }

        #[test]
        fn logits_round_trip(logits in proptest::collection::vec(any::<i32>(), 1..40)) {
            let o = Output::from_logits(logits);
            prop_assert_eq!(Output::from_bytes(&o.to_bytes()), Ok(o));
        }
    }
}
