//! Query inputs: bytes checked against the model they are for.
//!
//! An [`Input`] exists only once [`decode_input`] has checked its length and every byte against
//! the model's [`InputShape`], so the engine never sees an out-of-range value (which could break
//! the accumulator bound or index past a table). No floating point here: this is on the verified
//! path (float features are converted in [`crate::features`]).

use crate::model::{InputShape, QuantModel};

/// A checked query input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Input {
    bytes: Vec<u8>,
    shape: InputShape,
}

/// Why bytes are not an input for a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    /// Wrong number of bytes.
    #[error("input has {len} bytes, the model takes {expected}")]
    Length {
        /// Bytes given.
        len: usize,
        /// Bytes the model takes.
        expected: usize,
    },
    /// A byte above the model's largest input value.
    #[error("input byte {index} is {value}, above the model's maximum {max}")]
    Value {
        /// Position.
        index: usize,
        /// Its value.
        value: u8,
        /// The largest value allowed.
        max: u8,
    },
}

/// Checks `bytes` against `model`'s input shape.
pub fn decode_input(model: &QuantModel, bytes: &[u8]) -> Result<Input, InputError> {
    let shape = model.input_shape();
    if bytes.len() != shape.len {
        return Err(InputError::Length {
            len: bytes.len(),
            expected: shape.len,
        });
    }
    if let Some((index, &value)) = bytes.iter().enumerate().find(|&(_, &b)| b > shape.max) {
        return Err(InputError::Value {
            index,
            value,
            max: shape.max,
        });
    }
    Ok(Input {
        bytes: bytes.to_vec(),
        shape,
    })
}

impl Input {
    /// The input bytes (what a receipt's input hash covers).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The shape it was checked against.
    pub fn shape(&self) -> InputShape {
        self.shape
    }

    /// BLAKE3 of the input bytes.
    pub fn hash(&self) -> [u8; 32] {
        *blake3::hash(&self.bytes).as_bytes()
    }

    /// A random valid input for `model` (feature `test-utils`).
    #[cfg(any(test, feature = "test-utils"))]
    pub fn seeded(model: &QuantModel, seed: u64) -> Self {
        let shape = model.input_shape();
        let mut s = crate::model::Stream::new("deai-infer/seeded-input", seed);
        let bytes: Vec<u8> = (0..shape.len)
            .map(|_| s.below(u32::from(shape.max) + 1) as u8)
            .collect();
        decode_input(model, &bytes).expect("drawn within the shape")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;

    #[test]
    fn length_and_range_are_checked() {
        let m = QuantModel::seeded(
            Arch::CharLstm {
                seq: 4,
                vocab: 10,
                embed: 2,
                hidden: 3,
            },
            0,
        );
        assert!(decode_input(&m, &[0, 9, 3, 1]).is_ok());
        assert_eq!(
            decode_input(&m, &[0, 10, 3, 1]),
            Err(InputError::Value {
                index: 1,
                value: 10,
                max: 9
            })
        );
        assert_eq!(
            decode_input(&m, &[0; 5]),
            Err(InputError::Length {
                len: 5,
                expected: 4
            })
        );
    }
}
