//! Dataset schemas: what a dataset registered under a schema tag holds (features per sample, the
//! range of each value, the label set), so a file is checked against its tag before anyone commits
//! to it, and a task knows which datasets its model can read.
//!
//! A schema describes values twice: as people write them (`raw_min..=raw_max`, e.g. pixel
//! intensities 0 to 16 in a CSV) and as the dataset format stores them (`raw · scale`, what the
//! model reads).

use deai_learn::data::Dataset;
use thiserror::Error;

/// One schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schema {
    /// The tag datasets are registered under (`DatasetRegister.schema`).
    pub name: &'static str,
    /// The data family a task spec names (`TaskSpec.dataset`) whose models read this schema.
    pub family: &'static str,
    /// Features per sample.
    pub features: usize,
    /// Labels are `0..classes`.
    pub classes: usize,
    /// Smallest value as written in a CSV.
    pub raw_min: f32,
    /// Largest value as written in a CSV.
    pub raw_max: f32,
    /// Whether written values must be whole numbers.
    pub integer: bool,
    /// Stored value = written value · `scale`.
    pub scale: f32,
    /// One line for `deai schema list`.
    pub description: &'static str,
}

/// Every schema this build knows, by tag.
pub const SCHEMAS: &[Schema] = &[
    Schema {
        name: "digits-8x8",
        family: "digits",
        features: 64,
        classes: 10,
        raw_min: 0.0,
        raw_max: 16.0,
        integer: true,
        scale: 1.0 / 16.0,
        description: "handwritten digits, 8x8 pixels of intensity 0-16 row by row, label 0-9 (the UCI optical digits set)",
    },
    Schema {
        name: "fashion-mnist-28x28",
        family: "fashion-mnist",
        features: 784,
        classes: 10,
        raw_min: 0.0,
        raw_max: 255.0,
        integer: true,
        scale: 1.0 / 255.0,
        description: "clothing images, 28x28 grey pixels 0-255 row by row, label 0-9 (Fashion-MNIST)",
    },
];

/// Why data does not fit a schema.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SchemaError {
    /// No schema has this tag.
    #[error("unknown schema {name:?}; known: {known} (see `deai schema list`)")]
    Unknown {
        /// The tag given.
        name: String,
        /// The known tags, comma-separated.
        known: String,
    },
    /// Samples have another number of features.
    #[error("{got} features per sample; schema {schema} has {expected}")]
    Features {
        /// The schema.
        schema: &'static str,
        /// Its feature count.
        expected: usize,
        /// The data's.
        got: usize,
    },
    /// The data declares another number of classes.
    #[error("{got} classes; schema {schema} has {expected}")]
    Classes {
        /// The schema.
        schema: &'static str,
        /// Its class count.
        expected: usize,
        /// The data's.
        got: usize,
    },
    /// A value is outside the schema's range (given as written, `raw`).
    #[error(
        "sample {sample}, feature {feature}: {raw} is outside {min}..={max} of schema {schema}"
    )]
    Range {
        /// The schema.
        schema: &'static str,
        /// 0-based sample.
        sample: usize,
        /// 0-based feature.
        feature: usize,
        /// The value in written units.
        raw: f32,
        /// Smallest allowed.
        min: f32,
        /// Largest allowed.
        max: f32,
    },
}

/// The schema tagged `name`.
pub fn find(name: &str) -> Result<&'static Schema, SchemaError> {
    SCHEMAS
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| SchemaError::Unknown {
            name: name.to_string(),
            known: SCHEMAS
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The schema whose models a task of data family `family` trains (`TaskSpec.dataset`).
pub fn for_family(family: &str) -> Option<&'static Schema> {
    SCHEMAS.iter().find(|s| s.family == family)
}

impl Schema {
    /// Whether a written value is allowed.
    pub fn allows_raw(&self, raw: f32) -> bool {
        raw.is_finite()
            && (self.raw_min..=self.raw_max).contains(&raw)
            && (!self.integer || raw.fract() == 0.0)
    }

    /// Checks stored data against the schema: shape, class count, and every value inside the
    /// range (labels are already below the class count in any decoded [`Dataset`]).
    pub fn check(&self, data: &Dataset) -> Result<(), SchemaError> {
        if data.sample_len != self.features {
            return Err(SchemaError::Features {
                schema: self.name,
                expected: self.features,
                got: data.sample_len,
            });
        }
        if data.classes != self.classes {
            return Err(SchemaError::Classes {
                schema: self.name,
                expected: self.classes,
                got: data.classes,
            });
        }
        let (lo, hi) = (self.raw_min * self.scale, self.raw_max * self.scale);
        match data.features.iter().position(|v| !(lo..=hi).contains(v)) {
            None => Ok(()),
            Some(i) => Err(SchemaError::Range {
                schema: self.name,
                sample: i / self.features,
                feature: i % self.features,
                raw: data.features[i] / self.scale,
                min: self.raw_min,
                max: self.raw_max,
            }),
        }
    }

    /// Samples per label, `classes` entries.
    pub fn label_counts(&self, data: &Dataset) -> Vec<u64> {
        let mut counts = vec![0u64; self.classes];
        for &l in &data.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_digits_fit_their_schema_and_other_shapes_do_not() {
        let schema = find("digits-8x8").expect("known");
        let digits = deai_learn::data::digits::load().expect("vendored");
        schema.check(&digits).expect("the digits set is digits-8x8");
        assert_eq!(
            schema.label_counts(&digits).iter().sum::<u64>(),
            digits.len() as u64
        );
        assert_eq!(for_family("digits"), Some(schema));

        let mut wide = digits.clone();
        wide.features.truncate(63 * 2);
        wide.labels.truncate(2);
        wide.sample_len = 63;
        assert!(matches!(
            schema.check(&wide),
            Err(SchemaError::Features { got: 63, .. })
        ));
        let mut bright = digits.clone();
        bright.features[64 + 5] = 2.0;
        assert_eq!(
            schema.check(&bright),
            Err(SchemaError::Range {
                schema: "digits-8x8",
                sample: 1,
                feature: 5,
                raw: 32.0,
                min: 0.0,
                max: 16.0
            })
        );
        let mut fewer = digits;
        fewer.classes = 2;
        assert!(matches!(
            schema.check(&fewer),
            Err(SchemaError::Classes { got: 2, .. })
        ));
    }

    #[test]
    fn an_unknown_tag_names_the_known_ones() {
        let err = find("anything").expect_err("unknown");
        assert!(err.to_string().contains("digits-8x8"), "{err}");
        let s = find("digits-8x8").expect("known");
        assert!(s.allows_raw(16.0) && s.allows_raw(0.0));
        assert!(!s.allows_raw(16.5) && !s.allows_raw(-1.0) && !s.allows_raw(f32::NAN));
        assert!(!s.allows_raw(3.5), "digits pixels are whole numbers");
    }
}
