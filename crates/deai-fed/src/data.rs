//! A compact, checked binary format for a dataset slice (an owner's local data, a task's
//! validation set), and the deterministic cut of the vendored digits set into owner slices.
//!
//! Format (the one codec, [`deai_secagg::wire`]: big-endian): magic `deai-ds2`, `sample_len: u32`,
//! `classes: u32`, `samples: u32`, then `samples · sample_len` `f32` features, then `samples`
//! `u32` labels.
//! Decoding refuses a size that disagrees with the header, values that are not finite, labels
//! out of range, and anything beyond [`DataLimits`]; its output re-encodes to the same bytes.

use bytes::BufMut as _;
use commonware_codec::{Copying, ReadExt as _, Write as _};
use deai_learn::data::{Dataset, digits};
use thiserror::Error;

/// First bytes of every dataset blob.
pub const MAGIC: &[u8; 8] = b"deai-ds2";

/// Bounds on what [`decode`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataLimits {
    /// Most samples.
    pub samples_max: u32,
    /// Most features per sample.
    pub sample_len_max: u32,
    /// Most classes.
    pub classes_max: u32,
}

impl Default for DataLimits {
    fn default() -> Self {
        Self {
            samples_max: 1 << 20,
            sample_len_max: 1 << 16,
            classes_max: 1 << 16,
        }
    }
}

/// Why a dataset blob was refused.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum DataError {
    /// The blob does not start with [`MAGIC`].
    #[error("not a dataset blob (bad magic)")]
    Magic,
    /// A header field is zero or above its limit.
    #[error("{field} = {value} out of 1..={max}")]
    Header {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u32,
        /// The limit.
        max: u32,
    },
    /// The blob's size disagrees with its header.
    #[error("blob of {got} bytes, header says {expected}")]
    Size {
        /// Bytes the header implies.
        expected: u64,
        /// Bytes received.
        got: usize,
    },
    /// A feature is NaN or infinite.
    #[error("feature {index} is not finite")]
    NonFinite {
        /// Index in the feature array.
        index: usize,
    },
    /// A label is not below the class count.
    #[error("label {label} of sample {sample} not below {classes} classes")]
    Label {
        /// The sample.
        sample: usize,
        /// Its label.
        label: u32,
        /// Classes.
        classes: u32,
    },
    /// The digits set could not be loaded or cut.
    #[error("digits: {0}")]
    Digits(String),
}

/// Bytes before the features: magic and three `u32` header fields.
const HEADER_BYTES: usize = MAGIC.len() + 3 * 4;

/// Encodes a dataset.
pub fn encode(data: &Dataset) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(HEADER_BYTES + data.features.len() * 4 + data.labels.len() * 4);
    out.put_slice(MAGIC);
    out.put_u32(u32::try_from(data.sample_len).expect("datasets are far below 2^32 features"));
    out.put_u32(u32::try_from(data.classes).expect("classes fit u32"));
    out.put_u32(u32::try_from(data.labels.len()).expect("samples are bounded by DataLimits"));
    data.features.iter().for_each(|f| f.write(&mut out));
    data.labels.iter().for_each(|l| l.write(&mut out));
    out
}

fn header(field: &'static str, value: u32, max: u32) -> Result<u32, DataError> {
    if value == 0 || value > max {
        return Err(DataError::Header { field, value, max });
    }
    Ok(value)
}

/// Decodes and checks a dataset blob.
pub fn decode(bytes: &[u8], limits: &DataLimits) -> Result<Dataset, DataError> {
    if bytes.len() < HEADER_BYTES || !bytes.starts_with(MAGIC) {
        return Err(DataError::Magic);
    }
    let mut buf = Copying(&bytes[MAGIC.len()..]);
    let mut field = || u32::read(&mut buf).map_err(|_| DataError::Magic);
    let (sample_len, classes, samples) = (field()?, field()?, field()?);
    let sample_len = header("sample_len", sample_len, limits.sample_len_max)?;
    let classes = header("classes", classes, limits.classes_max)?;
    let samples = header("samples", samples, limits.samples_max)?;
    let values = u64::from(samples) * u64::from(sample_len);
    let expected = HEADER_BYTES as u64 + 4 * values + 4 * u64::from(samples);
    if bytes.len() as u64 != expected {
        return Err(DataError::Size {
            expected,
            got: bytes.len(),
        });
    }
    // The size check above makes every read below succeed.
    let mut read = |n: u64| -> Vec<u32> {
        (0..n)
            .map(|_| u32::read(&mut buf).expect("size checked"))
            .collect()
    };
    let features: Vec<f32> = read(values).into_iter().map(f32::from_bits).collect();
    if let Some(index) = features.iter().position(|v| !v.is_finite()) {
        return Err(DataError::NonFinite { index });
    }
    let labels = read(u64::from(samples));
    if let Some((sample, &label)) = labels.iter().enumerate().find(|(_, l)| **l >= classes) {
        return Err(DataError::Label {
            sample,
            label,
            classes,
        });
    }
    Dataset::new(
        "dataset blob",
        features,
        labels,
        sample_len as usize,
        classes as usize,
    )
    .map_err(|e| DataError::Digits(e.to_string()))
}

/// The digits set cut for a federation of `owners`: the training part of the digits-100 split
/// dealt round-robin (sample `j` to owner `j % owners`, file order), and its held-out part as
/// the task's validation set.
#[derive(Debug, Clone)]
pub struct DigitsSplit {
    /// One slice per owner.
    pub owners: Vec<Dataset>,
    /// The held-out validation set.
    pub validation: Dataset,
}

/// `train` dealt round-robin to `owners` (sample `j` to owner `j % owners`, in file order).
fn deal(train: &Dataset, owners: usize) -> Vec<Dataset> {
    (0..owners)
        .map(|o| {
            let idx: Vec<usize> = (o..train.len()).step_by(owners).collect();
            train.subset(&idx)
        })
        .collect()
}

/// Cuts the vendored digits set into `owners` slices and a validation slice.
pub fn digits_split(owners: usize) -> Result<DigitsSplit, DataError> {
    let all = digits::load().map_err(|e| DataError::Digits(e.to_string()))?;
    let (train, validation) = digits::split(&all);
    if owners == 0 || owners > train.len() {
        return Err(DataError::Digits(format!(
            "{owners} owners for {} training samples",
            train.len()
        )));
    }
    Ok(DigitsSplit {
        owners: deal(&train, owners),
        validation,
    })
}

/// Fashion-MNIST cut for a federation of `owners`: its 60,000 training images dealt
/// round-robin (image `j` to owner `j % owners`), and the first `validation` test images as the
/// task's validation set. The files come from Debian's `dataset-fashion-mnist`
/// (`scripts/install-deps.sh`).
pub fn fashion_split(owners: usize, validation: usize) -> Result<DigitsSplit, DataError> {
    let (train, test) =
        deai_learn::data::fashion::load(None).map_err(|e| DataError::Digits(e.to_string()))?;
    if owners == 0 || owners > train.len() || validation == 0 || validation > test.len() {
        return Err(DataError::Digits(format!(
            "{owners} owners for {} training images, {validation} of {} test images to validate on",
            train.len(),
            test.len()
        )));
    }
    let idx: Vec<usize> = (0..validation).collect();
    Ok(DigitsSplit {
        owners: deal(&train, owners),
        validation: test.subset(&idx),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fashion_mnist_splits_and_fits_its_schema() {
        let split = fashion_split(7, 100).expect("scripts/install-deps.sh installs Fashion-MNIST");
        let sizes: Vec<usize> = split.owners.iter().map(Dataset::len).collect();
        assert_eq!(sizes, [8572, 8572, 8572, 8571, 8571, 8571, 8571]);
        assert_eq!(split.validation.len(), 100);
        let schema = crate::schema::find("fashion-mnist-28x28").expect("known");
        schema.check(&split.owners[6]).expect("training slices fit");
        schema.check(&split.validation).expect("validation fits");
        assert!(fashion_split(0, 100).is_err() && fashion_split(7, 10_001).is_err());
    }

    #[test]
    fn round_trips_and_splits_deterministically() {
        let split = digits_split(10).expect("vendored");
        assert_eq!(split.owners.len(), 10);
        let total: usize = split.owners.iter().map(Dataset::len).sum();
        assert_eq!(total + split.validation.len(), digits::SAMPLES);
        assert_eq!(split.validation.len(), 359);
        let bytes = encode(&split.owners[3]);
        let back = decode(&bytes, &DataLimits::default()).expect("decodes");
        assert_eq!(back, split.owners[3]);
        assert_eq!(encode(&back), bytes);
        assert_eq!(encode(&digits_split(10).expect("again").owners[3]), bytes);
    }

    #[test]
    fn refuses_bad_blobs() {
        let d = Dataset::new("t", vec![0.5, 1.0, 0.0, 0.25], vec![1, 0], 2, 3).expect("valid");
        let good = encode(&d);
        let limits = DataLimits::default();
        assert_eq!(decode(b"nope", &limits), Err(DataError::Magic));
        assert!(matches!(
            decode(&good[..good.len() - 1], &limits),
            Err(DataError::Size { .. })
        ));
        let mut nan = good.clone();
        nan[20..24].copy_from_slice(&f32::NAN.to_be_bytes());
        assert_eq!(
            decode(&nan, &limits),
            Err(DataError::NonFinite { index: 0 })
        );
        let mut label = good.clone();
        let at = good.len() - 4;
        label[at..].copy_from_slice(&3u32.to_be_bytes());
        assert!(matches!(
            decode(&label, &limits),
            Err(DataError::Label {
                sample: 1,
                label: 3,
                ..
            })
        ));
        let tight = DataLimits {
            samples_max: 1,
            ..limits
        };
        assert!(matches!(
            decode(&good, &tight),
            Err(DataError::Header {
                field: "samples",
                ..
            })
        ));
        let mut zero = good.clone();
        zero[8..12].copy_from_slice(&0u32.to_be_bytes());
        assert!(matches!(
            decode(&zero, &limits),
            Err(DataError::Header {
                field: "sample_len",
                ..
            })
        ));
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            at in 0usize..10_000,
            x in 1u8..=255,
        ) {
            let limits = DataLimits::default();
            let _ = decode(&bytes, &limits);
            let d = Dataset::new("t", vec![0.5, 1.0, 0.0, 0.25], vec![1, 0], 2, 3).expect("valid");
            let mut good = encode(&d);
            let at = at % good.len();
            good[at] ^= x;
            if let Ok(back) = decode(&good, &limits) {
                proptest::prop_assert_eq!(encode(&back), good, "canonical");
            }
        }
    }
}
