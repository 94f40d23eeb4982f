//! Float features → input bytes: the fixed scaling from deai-learn's data sets.
//!
//! Client-side convenience, not the verified path (it uses floats; the bytes it produces are
//! what gets hashed and re-executed). Image features in `[0, 1]` become `round(x · input_max)`
//! (half away from zero): digits' `v / 16` with `input_max = 16` and Fashion-MNIST's `p / 255`
//! with `input_max = 255` map back to their exact raw values. Character models take ids, which
//! must be whole numbers below the vocabulary size.

use crate::input::{Input, InputError, decode_input};
use crate::model::QuantModel;

/// Why float features cannot become an input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeatureError {
    /// A feature that is not finite, outside `[0, 1]`, or not a whole-number id.
    #[error("feature {index} is {value}, expected {expected}")]
    Value {
        /// Position.
        index: usize,
        /// Its value.
        value: f32,
        /// What was expected.
        expected: &'static str,
    },
    /// The converted bytes do not fit the model.
    #[error(transparent)]
    Input(#[from] InputError),
}

/// Converts one float sample (as deai-learn's data sets hold it) into `model`'s input.
pub fn input_from_features(model: &QuantModel, features: &[f32]) -> Result<Input, FeatureError> {
    let bytes = features_to_bytes(model, features)?;
    Ok(decode_input(model, &bytes)?)
}

/// The input bytes of one float sample, without checking its length.
pub fn features_to_bytes(model: &QuantModel, features: &[f32]) -> Result<Vec<u8>, FeatureError> {
    let ids = matches!(model.arch(), crate::Arch::CharLstm { .. });
    let scale = f32::from(model.input_max());
    features
        .iter()
        .enumerate()
        .map(|(index, &value)| {
            let bad = |expected| FeatureError::Value {
                index,
                value,
                expected,
            };
            if ids {
                let ok =
                    value.is_finite() && (0.0..=255.0).contains(&value) && value.fract() == 0.0;
                // A whole number in 0..=255, so the cast is exact.
                return if ok {
                    Ok(value as u8)
                } else {
                    Err(bad("a character id"))
                };
            }
            if !(value.is_finite() && (0.0..=1.0).contains(&value)) {
                return Err(bad("a value in [0, 1]"));
            }
            // In 0..=input_max after rounding, so the cast is exact.
            Ok((value * scale).round() as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Arch;

    #[test]
    fn digits_and_fashion_scalings_are_exact() {
        let mut m = QuantModel::seeded(
            Arch::Logistic {
                inputs: 3,
                classes: 2,
            },
            0,
        );
        for v in 0..=16u8 {
            m.input_max = 16;
            let x = f32::from(v) / 16.0;
            assert_eq!(features_to_bytes(&m, &[x]).expect("in range"), [v]);
        }
        m.input_max = 255;
        for p in 0..=255u8 {
            let x = f32::from(p) / 255.0;
            assert_eq!(features_to_bytes(&m, &[x]).expect("in range"), [p]);
        }
        assert!(features_to_bytes(&m, &[f32::NAN]).is_err());
        assert!(features_to_bytes(&m, &[1.01]).is_err());
        assert!(matches!(
            input_from_features(&m, &[0.5]),
            Err(FeatureError::Input(InputError::Length { .. }))
        ));
    }
}
