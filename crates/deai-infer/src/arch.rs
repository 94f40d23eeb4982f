//! The architectures the engine runs, their dimensions and the bounds a blob must respect.
//!
//! These mirror deai-learn's `ModelKind` one for one (same names, same dimensions), without
//! depending on it: the ledger re-executes disputed queries, so this crate stays free of burn.

/// Largest value any single dimension may take.
pub const DIM_MAX: usize = 1 << 16;
/// Largest number of weights (and table entries) a model may hold in all.
pub const PARAMS_MAX: usize = 1 << 24;
/// Longest character context of the LSTM.
pub const SEQ_MAX: usize = 4096;
/// Largest LSTM vocabulary: a character id is one byte.
pub const VOCAB_MAX: usize = 256;
/// Convolution kernel side (both convolutions, valid padding, stride 1).
pub const KERNEL: usize = 5;
/// Smallest CNN image side that leaves at least one pixel after the second pooling.
pub const CNN_SIDE_MIN: usize = 16;
/// Largest CNN image side.
pub const CNN_SIDE_MAX: usize = 1024;

/// A model architecture and its dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// `Linear(inputs, classes)`.
    Logistic {
        /// Input features.
        inputs: usize,
        /// Output classes.
        classes: usize,
    },
    /// `Linear(inputs, hidden) → ReLU → Linear(hidden, classes)`.
    Mlp {
        /// Input features.
        inputs: usize,
        /// Hidden units.
        hidden: usize,
        /// Output classes.
        classes: usize,
    },
    /// conv5(1→c1) → ReLU → maxpool2 → conv5(c1→c2) → ReLU → maxpool2 → Linear(c2·s·s, classes).
    Cnn {
        /// Image side in pixels.
        side: usize,
        /// First convolution's channels.
        c1: usize,
        /// Second convolution's channels.
        c2: usize,
        /// Output classes.
        classes: usize,
    },
    /// Character ids → embedding → LSTM (gates i, f, g, o) over `seq` steps → Linear(hidden, vocab).
    CharLstm {
        /// Characters of context.
        seq: usize,
        /// Vocabulary size (input ids and output classes).
        vocab: usize,
        /// Embedding width of the float model (folded into the input projection here).
        embed: usize,
        /// LSTM hidden units.
        hidden: usize,
    },
}

/// How reports name an architecture, e.g. `mlp 64-128-10` or `cnn 28x28 8-16-10`.
impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Self::Logistic { inputs, classes } => write!(f, "logistic {inputs}-{classes}"),
            Self::Mlp {
                inputs,
                hidden,
                classes,
            } => write!(f, "mlp {inputs}-{hidden}-{classes}"),
            Self::Cnn {
                side,
                c1,
                c2,
                classes,
            } => write!(f, "cnn {side}x{side} {c1}-{c2}-{classes}"),
            Self::CharLstm {
                seq,
                vocab,
                embed,
                hidden,
            } => write!(
                f,
                "lstm seq {seq} vocab {vocab} embed {embed} hidden {hidden}"
            ),
        }
    }
}

/// Why a set of dimensions is not a model this engine runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchError {
    /// A dimension is zero or above its bound.
    #[error("{name} = {value} outside 1..={max}")]
    Dim {
        /// Which dimension.
        name: &'static str,
        /// Its value.
        value: usize,
        /// Its bound.
        max: usize,
    },
    /// The CNN image is too small for two convolutions and poolings, or too large.
    #[error("cnn side {0} outside {CNN_SIDE_MIN}..={CNN_SIDE_MAX}")]
    CnnSide(usize),
    /// The model would hold more than [`PARAMS_MAX`] values.
    #[error("model holds more than {PARAMS_MAX} values")]
    TooLarge,
}

/// Sides of the CNN's feature maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CnnGeometry {
    /// Input side.
    pub(crate) side: usize,
    /// First convolution's output side (`side − 4`).
    pub(crate) conv1: usize,
    /// After the first pooling (`conv1 / 2`, floor).
    pub(crate) pool1: usize,
    /// Second convolution's output side (`pool1 − 4`).
    pub(crate) conv2: usize,
    /// After the second pooling (`conv2 / 2`, floor).
    pub(crate) pool2: usize,
}

impl CnnGeometry {
    /// The sides for a `side × side` input (which [`Arch::validate`] has bounded).
    pub(crate) fn new(side: usize) -> Self {
        let conv1 = side - (KERNEL - 1);
        let pool1 = conv1 / 2;
        let conv2 = pool1 - (KERNEL - 1);
        Self {
            side,
            conv1,
            pool1,
            conv2,
            pool2: conv2 / 2,
        }
    }
}

impl Arch {
    /// The name deai-learn's `ModelKind::name` gives this architecture.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Logistic { .. } => "logistic",
            Self::Mlp { .. } => "mlp",
            Self::Cnn { .. } => "cnn",
            Self::CharLstm { .. } => "lstm",
        }
    }

    /// Checks every dimension against its bound and the total size against [`PARAMS_MAX`].
    pub fn validate(&self) -> Result<(), ArchError> {
        let dim = |name: &'static str, value: usize, max: usize| {
            if (1..=max).contains(&value) {
                Ok(())
            } else {
                Err(ArchError::Dim { name, value, max })
            }
        };
        match *self {
            Self::Logistic { inputs, classes } => {
                dim("inputs", inputs, DIM_MAX)?;
                dim("classes", classes, DIM_MAX)?;
            }
            Self::Mlp {
                inputs,
                hidden,
                classes,
            } => {
                dim("inputs", inputs, DIM_MAX)?;
                dim("hidden", hidden, DIM_MAX)?;
                dim("classes", classes, DIM_MAX)?;
            }
            Self::Cnn {
                side,
                c1,
                c2,
                classes,
            } => {
                if !(CNN_SIDE_MIN..=CNN_SIDE_MAX).contains(&side) {
                    return Err(ArchError::CnnSide(side));
                }
                dim("c1", c1, DIM_MAX)?;
                dim("c2", c2, DIM_MAX)?;
                dim("classes", classes, DIM_MAX)?;
            }
            Self::CharLstm {
                seq,
                vocab,
                embed,
                hidden,
            } => {
                dim("seq", seq, SEQ_MAX)?;
                dim("vocab", vocab, VOCAB_MAX)?;
                dim("embed", embed, DIM_MAX)?;
                dim("hidden", hidden, DIM_MAX)?;
            }
        }
        match self.values() {
            Some(n) if n <= PARAMS_MAX as u64 => Ok(()),
            _ => Err(ArchError::TooLarge),
        }
    }

    /// Values the quantized model holds (weights, biases, multipliers, tables), `None` on
    /// overflow. Used only to bound sizes before anything is allocated.
    fn values(&self) -> Option<u64> {
        let dense = |rows: usize, cols: usize| -> Option<u64> {
            (rows as u64)
                .checked_mul(cols as u64)?
                .checked_add(3 * rows as u64)
        };
        match *self {
            Self::Logistic { inputs, classes } => dense(classes, inputs),
            Self::Mlp {
                inputs,
                hidden,
                classes,
            } => dense(hidden, inputs)?.checked_add(dense(classes, hidden)?),
            Self::Cnn {
                side,
                c1,
                c2,
                classes,
            } => {
                let g = CnnGeometry::new(side);
                let patch2 = (c1 as u64).checked_mul((KERNEL * KERNEL) as u64)?;
                let fc_in = (c2 as u64).checked_mul((g.pool2 * g.pool2) as u64)?;
                dense(c1, KERNEL * KERNEL)?
                    .checked_add(dense(c2, usize::try_from(patch2).ok()?)?)?
                    .checked_add(dense(classes, usize::try_from(fc_in).ok()?)?)
            }
            Self::CharLstm { vocab, hidden, .. } => {
                let gates = (hidden as u64).checked_mul(4)?;
                let proj = (vocab as u64).checked_mul(gates)?;
                proj.checked_add(dense(usize::try_from(gates).ok()?, hidden)?)?
                    .checked_add(dense(vocab, hidden)?)?
                    .checked_add(2 * crate::model::LUT_LEN as u64)
            }
        }
    }

    /// Bytes of one query's input.
    pub fn input_len(&self) -> usize {
        match *self {
            Self::Logistic { inputs, .. } | Self::Mlp { inputs, .. } => inputs,
            Self::Cnn { side, .. } => side * side,
            Self::CharLstm { seq, .. } => seq,
        }
    }

    /// Number of output logits.
    pub fn classes(&self) -> usize {
        match *self {
            Self::Logistic { classes, .. }
            | Self::Mlp { classes, .. }
            | Self::Cnn { classes, .. } => classes,
            Self::CharLstm { vocab, .. } => vocab,
        }
    }

    /// The CNN's feature-map sides (only meaningful for [`Arch::Cnn`]).
    pub(crate) fn cnn_geometry(&self) -> Option<CnnGeometry> {
        match *self {
            Self::Cnn { side, .. } => Some(CnnGeometry::new(side)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fashion_cnn_geometry_matches_deai_learn() {
        let g = CnnGeometry::new(28);
        assert_eq!((g.conv1, g.pool1, g.conv2, g.pool2), (24, 12, 8, 4));
        let odd = CnnGeometry::new(17);
        assert_eq!((odd.conv1, odd.pool1, odd.conv2, odd.pool2), (13, 6, 2, 1));
    }

    #[test]
    fn bounds_are_enforced() {
        assert!(
            Arch::Mlp {
                inputs: 64,
                hidden: 128,
                classes: 10
            }
            .validate()
            .is_ok()
        );
        assert!(matches!(
            Arch::Logistic {
                inputs: 0,
                classes: 10
            }
            .validate(),
            Err(ArchError::Dim { name: "inputs", .. })
        ));
        assert_eq!(
            Arch::Cnn {
                side: 15,
                c1: 8,
                c2: 16,
                classes: 10
            }
            .validate(),
            Err(ArchError::CnnSide(15))
        );
        assert_eq!(
            Arch::Mlp {
                inputs: DIM_MAX,
                hidden: DIM_MAX,
                classes: 1
            }
            .validate(),
            Err(ArchError::TooLarge)
        );
        assert!(
            Arch::CharLstm {
                seq: 80,
                vocab: 257,
                embed: 8,
                hidden: 64
            }
            .validate()
            .is_err()
        );
    }
}
