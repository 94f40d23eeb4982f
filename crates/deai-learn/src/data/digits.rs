//! scikit-learn's copy of the UCI optical-recognition-of-handwritten-digits set, vendored.
//!
//! 1797 samples of 8×8 integer pixels in `0..=16` plus a label `0..=9`, one CSV row each
//! (`data/digits.csv.gz`, CC BY 4.0, see `data/DIGITS-LICENSE.md`). Features are divided by 16.
//! The split of the digits-100 task: sample `i` is a test sample iff `i % 5 == 4`.

use std::io::Read;

use super::Dataset;
use crate::error::{LearnError, Result};

/// The vendored gzip-compressed CSV.
const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../data/digits.csv.gz");
/// Number of rows the file must have.
pub const SAMPLES: usize = 1797;
/// Pixels per sample.
pub const FEATURES: usize = 64;
/// Digit classes.
pub const CLASSES: usize = 10;
const NAME: &str = "digits.csv.gz";

/// All 1797 samples in the file's order.
pub fn load() -> Result<Dataset> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_string(&mut text)
        .map_err(|e| LearnError::data(NAME, format!("gunzip: {e}")))?;
    parse(&text)
}

/// Parses the CSV text: 65 integers per row, pixels in `0..=16`, label last.
pub fn parse(text: &str) -> Result<Dataset> {
    let mut features = Vec::with_capacity(SAMPLES * FEATURES);
    let mut labels = Vec::with_capacity(SAMPLES);
    for (line_no, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let values: Vec<&str> = line.split(',').collect();
        if values.len() != FEATURES + 1 {
            let reason = format!("line {}: {} fields, expected 65", line_no + 1, values.len());
            return Err(LearnError::data(NAME, reason));
        }
        for (col, field) in values.iter().enumerate() {
            let v: u32 = field.trim().parse().map_err(|_| {
                LearnError::data(
                    NAME,
                    format!("line {}: {field:?} is not an integer", line_no + 1),
                )
            })?;
            let max = if col == FEATURES {
                CLASSES as u32 - 1
            } else {
                16
            };
            if v > max {
                let reason = format!("line {}, column {col}: {v} > {max}", line_no + 1);
                return Err(LearnError::data(NAME, reason));
            }
            if col == FEATURES {
                labels.push(v);
            } else {
                features.push(v as f32 / 16.0);
            }
        }
    }
    if labels.len() != SAMPLES {
        return Err(LearnError::data(
            NAME,
            format!("{} rows, expected {SAMPLES}", labels.len()),
        ));
    }
    Dataset::new(NAME, features, labels, FEATURES, CLASSES)
}

/// The digits-100 split: `(train, test)`, test = samples with `i % 5 == 4`, both in file order.
pub fn split(all: &Dataset) -> (Dataset, Dataset) {
    let (test, train): (Vec<usize>, Vec<usize>) = (0..all.len()).partition(|i| i % 5 == 4);
    (all.subset(&train), all.subset(&test))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_and_splits_as_the_task_says() {
        let all = load().expect("vendored file parses");
        assert_eq!(all.len(), 1797);
        assert_eq!(all.labels[..5], [0, 1, 2, 3, 4]);
        assert_eq!(all.sample(0)[2], 5.0 / 16.0);
        let (train, test) = split(&all);
        assert_eq!((train.len(), test.len()), (1438, 359));
        assert_eq!(test.labels[0], all.labels[4]);
        assert_eq!(train.labels[4], all.labels[5]);
    }

    #[test]
    fn rejects_bad_rows() {
        assert!(parse("1,2,3").is_err());
        let mut row = vec!["0"; 64];
        row.push("10");
        assert!(parse(&row.join(",")).is_err(), "label 10 out of range");
        row[64] = "3";
        row[0] = "17";
        assert!(parse(&row.join(",")).is_err(), "pixel 17 out of range");
    }
}
