//! Model weights as safetensors bytes: one `F32` tensor per parameter of the model's layout,
//! named as in [`deai_learn::model::ParamSpec`], no metadata.
//!
//! Encoding is deterministic (the safetensors writer orders tensors by name and the header has
//! no map with unspecified order), so equal weights give equal bytes and equal
//! [`model_hash`]es. Decoding accepts exactly the tensors of the expected layout: no missing
//! or extra name, the right shape and dtype, finite values.

use std::borrow::Cow;

use deai_learn::model::ModelKind;
use deai_ledger::Digest;
use safetensors::tensor::{Dtype, SafeTensors, View};
use thiserror::Error;

/// Header bytes a weights blob may carry beyond its tensor data (names, shapes, offsets).
const HEADER_BYTES_MAX: usize = 64 * 1024;

/// Why weights did not encode or decode.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum WeightsError {
    /// The flat vector does not have the model's number of parameters.
    #[error("{got} values for a model of {expected} parameters")]
    WrongLength {
        /// Parameters of the model.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// A value is NaN or infinite.
    #[error("tensor {tensor}: non-finite value {value} at index {index}")]
    NonFinite {
        /// Tensor holding it.
        tensor: String,
        /// Index inside the tensor.
        index: usize,
        /// The value.
        value: f32,
    },
    /// The blob is larger than the model's tensors and a header can be.
    #[error("weights blob of {got} bytes exceeds {max} for this model")]
    TooLarge {
        /// Size received.
        got: usize,
        /// Largest accepted.
        max: usize,
    },
    /// The bytes are not safetensors.
    #[error("not a safetensors blob: {0}")]
    Format(String),
    /// A tensor of the layout is absent.
    #[error("tensor {0} is missing")]
    Missing(String),
    /// A tensor not in the layout is present.
    #[error("unexpected tensor {0}")]
    Unexpected(String),
    /// A tensor has the wrong shape.
    #[error("tensor {name} has shape {got:?}, expected {expected:?}")]
    Shape {
        /// Tensor name.
        name: String,
        /// Shape the layout says.
        expected: Vec<usize>,
        /// Shape found.
        got: Vec<usize>,
    },
    /// A tensor is not `F32`.
    #[error("tensor {name} has dtype {dtype}, expected F32")]
    Dtype {
        /// Tensor name.
        name: String,
        /// Dtype found.
        dtype: String,
    },
}

/// BLAKE3 of a weights blob: the hash the ledger records for a model.
pub fn model_hash(bytes: &[u8]) -> Digest {
    Digest::hash(bytes)
}

struct F32Tensor<'a> {
    shape: Vec<usize>,
    values: &'a [f32],
}

impl View for F32Tensor<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.values.iter().flat_map(|v| v.to_le_bytes()).collect())
    }
    fn data_len(&self) -> usize {
        self.values.len() * 4
    }
}

fn check_finite(name: &str, values: &[f32]) -> Result<(), WeightsError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(WeightsError::NonFinite {
            tensor: name.to_string(),
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Encodes `weights` (flat, in `kind`'s layout order) as safetensors.
pub fn encode(kind: &ModelKind, weights: &[f32]) -> Result<Vec<u8>, WeightsError> {
    let expected = kind.num_params();
    if weights.len() != expected {
        return Err(WeightsError::WrongLength {
            expected,
            got: weights.len(),
        });
    }
    let mut tensors = Vec::new();
    let mut at = 0;
    for spec in kind.layout() {
        let values = &weights[at..at + spec.len()];
        check_finite(spec.name, values)?;
        at += spec.len();
        tensors.push((
            spec.name,
            F32Tensor {
                shape: spec.shape.clone(),
                values,
            },
        ));
    }
    safetensors::serialize(tensors, None).map_err(|e| WeightsError::Format(e.to_string()))
}

/// Decodes a safetensors blob into flat weights in `kind`'s layout order, checking every
/// tensor against the layout.
pub fn decode(kind: &ModelKind, bytes: &[u8]) -> Result<Vec<f32>, WeightsError> {
    let layout = kind.layout();
    let max = kind.num_params() * 4 + HEADER_BYTES_MAX;
    if bytes.len() > max {
        return Err(WeightsError::TooLarge {
            got: bytes.len(),
            max,
        });
    }
    let st = SafeTensors::deserialize(bytes).map_err(|e| WeightsError::Format(e.to_string()))?;
    if let Some(extra) = st
        .names()
        .into_iter()
        .find(|n| !layout.iter().any(|s| s.name == *n))
    {
        return Err(WeightsError::Unexpected(extra.to_string()));
    }
    let mut out = Vec::with_capacity(kind.num_params());
    for spec in &layout {
        let view = st
            .tensor(spec.name)
            .map_err(|_| WeightsError::Missing(spec.name.to_string()))?;
        if view.dtype() != Dtype::F32 {
            return Err(WeightsError::Dtype {
                name: spec.name.to_string(),
                dtype: format!("{:?}", view.dtype()),
            });
        }
        if view.shape() != spec.shape.as_slice() {
            return Err(WeightsError::Shape {
                name: spec.name.to_string(),
                expected: spec.shape.clone(),
                got: view.shape().to_vec(),
            });
        }
        let start = out.len();
        out.extend(
            view.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
        check_finite(spec.name, &out[start..])?;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::disallowed_types)] // safetensors' metadata argument is a HashMap (here None)
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn kind() -> ModelKind {
        ModelKind::Mlp {
            inputs: 4,
            hidden: 3,
            classes: 2,
        }
    }

    fn weights() -> Vec<f32> {
        (0..kind().num_params())
            .map(|i| i as f32 * 0.5 - 3.0)
            .collect()
    }

    #[test]
    fn round_trips_deterministically() {
        let w = weights();
        let a = encode(&kind(), &w).expect("encodes");
        let b = encode(&kind(), &w).expect("encodes");
        assert_eq!(a, b);
        assert_eq!(model_hash(&a), model_hash(&b));
        assert_eq!(decode(&kind(), &a).expect("decodes"), w);
        let mut w2 = w.clone();
        w2[3] += 1.0;
        assert_ne!(
            model_hash(&encode(&kind(), &w2).expect("encodes")),
            model_hash(&a)
        );
        // Standard safetensors: the reader sees the named, shaped tensors.
        let st = SafeTensors::deserialize(&a).expect("standard");
        assert_eq!(st.tensor("fc1.weight").expect("present").shape(), [4, 3]);
    }

    #[test]
    fn refuses_bad_values_and_layouts() {
        let mut w = weights();
        assert_eq!(
            encode(&kind(), &w[1..]),
            Err(WeightsError::WrongLength {
                expected: w.len(),
                got: w.len() - 1
            })
        );
        w[13] = f32::NAN;
        assert!(matches!(
            encode(&kind(), &w),
            Err(WeightsError::NonFinite { .. })
        ));

        // A blob carrying NaN, written by someone else's encoder.
        let nan = [f32::INFINITY; 12];
        let t = |shape: Vec<usize>, values: &'static [f32]| F32Tensor { shape, values };
        let leak: &'static [f32] = Box::leak(Box::new(nan));
        let ok: &'static [f32] = Box::leak(vec![0.0f32; 12].into_boxed_slice());
        let blob = |tensors: Vec<(&str, F32Tensor<'static>)>| {
            safetensors::serialize(tensors, None::<HashMap<String, String>>).expect("serializes")
        };
        let full = |fc1: &'static [f32]| {
            vec![
                ("fc1.weight", t(vec![4, 3], fc1)),
                ("fc1.bias", t(vec![3], &ok[..3])),
                ("fc2.weight", t(vec![3, 2], &ok[..6])),
                ("fc2.bias", t(vec![2], &ok[..2])),
            ]
        };
        assert!(decode(&kind(), &blob(full(ok))).is_ok());
        assert!(matches!(
            decode(&kind(), &blob(full(leak))),
            Err(WeightsError::NonFinite { ref tensor, index: 0, .. }) if tensor == "fc1.weight"
        ));
        let mut shaped = full(ok);
        shaped[0].1.shape = vec![3, 4];
        assert!(matches!(
            decode(&kind(), &blob(shaped)),
            Err(WeightsError::Shape { .. })
        ));
        let mut missing = full(ok);
        missing.pop();
        assert_eq!(
            decode(&kind(), &blob(missing)),
            Err(WeightsError::Missing("fc2.bias".into()))
        );
        let mut extra = full(ok);
        extra.push(("fc3.bias", t(vec![1], &ok[..1])));
        assert_eq!(
            decode(&kind(), &blob(extra)),
            Err(WeightsError::Unexpected("fc3.bias".into()))
        );
        assert!(matches!(
            decode(&kind(), b"garbage"),
            Err(WeightsError::Format(_))
        ));
        let huge = vec![0u8; kind().num_params() * 4 + HEADER_BYTES_MAX + 1];
        assert!(matches!(
            decode(&kind(), &huge),
            Err(WeightsError::TooLarge { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            at in 0usize..10_000,
            x in 1u8..=255,
        ) {
            let _ = decode(&kind(), &bytes);
            let mut good = encode(&kind(), &weights()).expect("encodes");
            let at = at % good.len();
            good[at] ^= x;
            if let Ok(w) = decode(&kind(), &good) {
                proptest::prop_assert!(w.iter().all(|v| v.is_finite()));
                proptest::prop_assert_eq!(w.len(), kind().num_params());
            }
        }
    }
}
