//! Data sets and how they are split among clients.
//!
//! A [`Dataset`] is `n` samples of `sample_len` `f32` features each (pixels scaled to `[0, 1]`,
//! or character ids for text) and a label in `0..classes`. Loaders check shapes, value ranges and
//! label ranges, and fail with [`crate::LearnError`] naming the file and the problem.

pub mod digits;
pub mod fashion;
pub mod partition;
pub mod shakespeare;

use crate::error::{LearnError, Result};

/// Samples with labels, stored densely.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// `n * sample_len` feature values, sample after sample.
    pub features: Vec<f32>,
    /// `n` labels, each `< classes`.
    pub labels: Vec<u32>,
    /// Features per sample.
    pub sample_len: usize,
    /// Number of classes.
    pub classes: usize,
}

impl Dataset {
    /// Builds a data set, checking that the shapes agree and every label is in range.
    pub fn new(
        name: &str,
        features: Vec<f32>,
        labels: Vec<u32>,
        sample_len: usize,
        classes: usize,
    ) -> Result<Self> {
        if sample_len == 0 || features.len() != labels.len() * sample_len {
            return Err(LearnError::data(
                name,
                format!(
                    "{} feature values for {} samples of {sample_len}",
                    features.len(),
                    labels.len()
                ),
            ));
        }
        if let Some(bad) = labels.iter().find(|&&l| l as usize >= classes) {
            return Err(LearnError::data(
                name,
                format!("label {bad} outside 0..{classes}"),
            ));
        }
        Ok(Self {
            features,
            labels,
            sample_len,
            classes,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The features of sample `i`.
    pub fn sample(&self, i: usize) -> &[f32] {
        &self.features[i * self.sample_len..(i + 1) * self.sample_len]
    }

    /// A new data set holding the samples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Self {
        let mut features = Vec::with_capacity(indices.len() * self.sample_len);
        for &i in indices {
            features.extend_from_slice(self.sample(i));
        }
        let labels = indices.iter().map(|&i| self.labels[i]).collect();
        Self {
            features,
            labels,
            sample_len: self.sample_len,
            classes: self.classes,
        }
    }

    /// The first `n` samples (or all when there are fewer).
    pub fn head(&self, n: usize) -> Self {
        let idx: Vec<usize> = (0..n.min(self.len())).collect();
        self.subset(&idx)
    }
}

/// A train set split among clients, and a central test set.
#[derive(Debug, Clone)]
pub struct Federated {
    /// All training samples.
    pub train: Dataset,
    /// The held-out test set, evaluated centrally.
    pub test: Dataset,
    /// For each client id, the indices into `train` it holds, in its order.
    pub clients: Vec<Vec<usize>>,
}

impl Federated {
    /// Number of samples client `c` holds.
    pub fn client_len(&self, c: usize) -> usize {
        self.clients[c].len()
    }
}
