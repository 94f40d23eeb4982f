//! The quantized model: integer tensors per layer, checked so that no input can overflow them.
//!
//! `QuantModel::new` is the one gate every model passes (the decoder and the quantizer both
//! build through it). Besides shapes it checks the **accumulator bound**: for every output row,
//! `Σ|w| · x_max + |bias| ≤ i32::MAX`, where `x_max` is the largest input value the layer can
//! see. So an `i32` accumulator never overflows, whatever the query, and the engine's wrapping
//! adds are exact. No floating point here: this is on the verified path.

use crate::arch::{Arch, ArchError, KERNEL};
use crate::fixed::{Relu, Requant};
use crate::kernel::{Packed, pair_of};

/// Entries of each LSTM lookup table: gate pre-activations in Q8 (`z = q / 256`) over
/// `[−8, 8)`, index `q + 2048` after clamping `q` into `−2048..=2047`.
pub const LUT_LEN: usize = 4096;
/// Offset of `z = 0` in a lookup table.
pub(crate) const LUT_ZERO: i64 = (LUT_LEN / 2) as i64;
/// Q15 one: table values are `round(f(z) · 32768)`, saturated to `±32767`.
pub const Q15_MAX: i16 = i16::MAX;
/// Largest magnitude of an LSTM hidden value (`h` is `i8` in units of 1/128, saturated).
pub(crate) const HIDDEN_MAX: i32 = 127;
/// Largest post-ReLU activation (`u8`).
pub(crate) const ACT_MAX: i32 = 255;

/// A fully connected (or im2col'd convolution) layer: `rows` outputs over `cols` inputs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dense {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    /// `[rows][cols]`, row-major, so each output's dot product reads contiguous memory.
    pub(crate) weights: Vec<i8>,
    /// One per row, at the scale `weight_scale[row] · input_scale`.
    pub(crate) bias: Vec<i32>,
    /// One per row: accumulator → output scale.
    pub(crate) requant: Vec<Requant>,
    /// The weights in the kernel's layout; derived, filled by `QuantModel::new`, not part of
    /// the blob.
    pub(crate) packed: Packed,
    /// `requant` laid out for the ReLU layers' vectorised requantization; derived like `packed`.
    pub(crate) relu: Relu,
}

/// Column pairs per kernel row of a convolution: `(kx 0, 1)`, `(2, 3)`, `(4, pad)`. Pairs stay
/// within a kernel row so that a patch's pair is two neighbouring pixels (see the engine).
pub(crate) const KERNEL_ROW_PAIRS: usize = KERNEL.div_ceil(2);

impl Dense {
    /// A layer from its tensors (checked later, by `QuantModel::new`).
    pub(crate) fn new(
        rows: usize,
        cols: usize,
        weights: Vec<i8>,
        bias: Vec<i32>,
        requant: Vec<Requant>,
    ) -> Self {
        Self {
            rows,
            cols,
            weights,
            bias,
            requant,
            packed: Packed::default(),
            relu: Relu::default(),
        }
    }

    /// Row `r`'s weights.
    pub(crate) fn row(&self, r: usize) -> &[i8] {
        &self.weights[r * self.cols..(r + 1) * self.cols]
    }

    /// Fills the engine layout of a fully connected layer (after [`Dense::check`]): pairs of
    /// consecutive columns, and quads of them too when its inputs are bytes (`u8_inputs`).
    fn prepare(&mut self, u8_inputs: bool) {
        let mut packed = Packed::new(self.cols.div_ceil(2), &self.bias, |r, p| {
            pair_of(self.row(r), p)
        });
        if u8_inputs {
            packed = packed.with_quads(self.cols, |r, c| self.row(r)[c]);
        }
        self.packed = packed;
        self.relu = Relu::new(&self.requant);
    }

    /// Fills the engine layout of a 5×5 convolution (after [`Dense::check`]): columns
    /// `[in_channel][ky][kx]` in pairs `[in_channel][ky][KERNEL_ROW_PAIRS]`, the last pair of
    /// each kernel row padded with a zero weight.
    fn prepare_conv(&mut self) {
        let per_row = KERNEL_ROW_PAIRS;
        let pairs = self.cols / KERNEL * per_row;
        self.packed = Packed::new(pairs, &self.bias, |r, p| {
            let kernel_row = &self.row(r)[p / per_row * KERNEL..][..KERNEL];
            pair_of(kernel_row, p % per_row)
        });
        self.relu = Relu::new(&self.requant);
    }

    /// Output rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Inputs per row.
    pub fn cols(&self) -> usize {
        self.cols
    }

    fn check(
        &self,
        layer: &'static str,
        rows: usize,
        cols: usize,
        x_max: i32,
    ) -> Result<(), ModelError> {
        let shape = |what: &'static str, len: usize, expected: usize| {
            if len == expected {
                Ok(())
            } else {
                Err(ModelError::Shape {
                    layer,
                    what,
                    len,
                    expected,
                })
            }
        };
        shape("rows", self.rows, rows)?;
        shape("cols", self.cols, cols)?;
        shape("weights", self.weights.len(), rows * cols)?;
        shape("bias", self.bias.len(), rows)?;
        shape("requant", self.requant.len(), rows)?;
        for r in 0..rows {
            if !self.requant[r].is_valid() {
                return Err(ModelError::Requant { layer, row: r });
            }
            let weight_sum: i64 = self
                .row(r)
                .iter()
                .map(|w| i64::from(w.unsigned_abs()))
                .sum();
            let bound = weight_sum * i64::from(x_max) + i64::from(self.bias[r]).abs();
            if bound > i64::from(i32::MAX) {
                return Err(ModelError::Accumulator { layer, row: r });
            }
        }
        Ok(())
    }
}

/// The LSTM cell with its input side folded in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lstm {
    /// `[vocab][4·hidden]`: `W_ih · embed[id] + bias` in Q8, one row per character id (the
    /// embedding of a one-hot id is a row lookup, so its projection is too).
    pub(crate) input_proj: Vec<i32>,
    /// `4·hidden × hidden` recurrent weights (gate blocks i, f, g, o), requantized to Q8.
    pub(crate) recurrent: Dense,
    /// `σ` in Q15 over the Q8 domain, values in `0..=32767`.
    pub(crate) sigmoid: Vec<i16>,
    /// `tanh` in Q15 over the Q8 domain, values in `−32767..=32767`.
    pub(crate) tanh: Vec<i16>,
}

/// The layers of each architecture.
// One per model, built once and passed by reference: boxing the larger variants would only add
// an indirection on every query.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Net {
    Logistic {
        fc: Dense,
    },
    Mlp {
        fc1: Dense,
        fc2: Dense,
    },
    Cnn {
        conv1: Dense,
        conv2: Dense,
        fc: Dense,
    },
    CharLstm {
        lstm: Lstm,
        fc: Dense,
    },
}

/// Why a set of tensors is not a valid model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The dimensions are out of bounds.
    #[error(transparent)]
    Arch(#[from] ArchError),
    /// The layers do not match the architecture.
    #[error("layers do not match a {0} architecture")]
    Layers(&'static str),
    /// A tensor has the wrong size.
    #[error("{layer}.{what}: {len}, expected {expected}")]
    Shape {
        /// Layer name.
        layer: &'static str,
        /// Which tensor or dimension.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The size the architecture needs.
        expected: usize,
    },
    /// A multiplier is negative or shifts too far.
    #[error("{layer} row {row}: multiplier out of range")]
    Requant {
        /// Layer name.
        layer: &'static str,
        /// Output row.
        row: usize,
    },
    /// Some input could overflow an `i32` accumulator of this row.
    #[error("{layer} row {row}: Σ|w|·x_max + |bias| exceeds i32")]
    Accumulator {
        /// Layer name.
        layer: &'static str,
        /// Output row.
        row: usize,
    },
    /// The input scale is zero.
    #[error("input_max must be at least 1")]
    InputMax,
    /// A lookup table value is out of its function's range.
    #[error("{table}[{index}] = {value} out of range")]
    Lut {
        /// `sigmoid` or `tanh`.
        table: &'static str,
        /// Entry.
        index: usize,
        /// Its value.
        value: i16,
    },
}

/// A quantized model: architecture, input scale and integer layers.
///
/// Built only through `QuantModel::new` or [`QuantModel::decode`], so every instance satisfies
/// the accumulator bound (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuantModel {
    pub(crate) arch: Arch,
    /// Image kinds: an input byte `q ≤ input_max` stands for the feature `q / input_max`.
    /// Unused (0) for the character model, whose bytes are ids.
    pub(crate) input_max: u8,
    pub(crate) net: Net,
}

/// What one query's input must look like: `len` bytes, each at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InputShape {
    /// Bytes per query.
    pub len: usize,
    /// Largest byte value (`input_max`, or `vocab − 1` for character ids).
    pub max: u8,
}

impl QuantModel {
    /// Checks the layers against `arch` and the accumulator bound, and builds the model.
    pub(crate) fn new(arch: Arch, input_max: u8, mut net: Net) -> Result<Self, ModelError> {
        arch.validate()?;
        let x0 = i32::from(input_max);
        match (&arch, &net) {
            (&Arch::Logistic { inputs, classes }, Net::Logistic { fc }) => {
                nonzero(input_max)?;
                fc.check("fc", classes, inputs, x0)?;
            }
            (
                &Arch::Mlp {
                    inputs,
                    hidden,
                    classes,
                },
                Net::Mlp { fc1, fc2 },
            ) => {
                nonzero(input_max)?;
                fc1.check("fc1", hidden, inputs, x0)?;
                fc2.check("fc2", classes, hidden, ACT_MAX)?;
            }
            (
                &Arch::Cnn {
                    side,
                    c1,
                    c2,
                    classes,
                },
                Net::Cnn { conv1, conv2, fc },
            ) => {
                nonzero(input_max)?;
                let g = crate::arch::CnnGeometry::new(side);
                let k2 = KERNEL * KERNEL;
                conv1.check("conv1", c1, k2, x0)?;
                conv2.check("conv2", c2, c1 * k2, ACT_MAX)?;
                fc.check("fc", classes, c2 * g.pool2 * g.pool2, ACT_MAX)?;
            }
            (&Arch::CharLstm { vocab, hidden, .. }, Net::CharLstm { lstm, fc }) => {
                if input_max != 0 {
                    return Err(ModelError::Layers("lstm (input_max must be 0)"));
                }
                lstm.check(vocab, hidden)?;
                fc.check("fc", vocab, hidden, HIDDEN_MAX)?;
            }
            _ => return Err(ModelError::Layers(arch.name())),
        }
        match &mut net {
            Net::Logistic { fc } => fc.prepare(true),
            Net::Mlp { fc1, fc2 } => [fc1, fc2].into_iter().for_each(|d| d.prepare(true)),
            Net::Cnn { conv1, conv2, fc } => {
                [conv1, conv2].into_iter().for_each(Dense::prepare_conv);
                fc.prepare(true);
            }
            // The hidden state is signed: pairs only.
            Net::CharLstm { lstm, fc } => [&mut lstm.recurrent, fc]
                .into_iter()
                .for_each(|d| d.prepare(false)),
        }
        Ok(Self {
            arch,
            input_max,
            net,
        })
    }

    /// The architecture.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// The input scale of the image kinds (`q / input_max`); 0 for the character model.
    pub fn input_max(&self) -> u8 {
        self.input_max
    }

    /// What a query's input bytes must look like.
    pub fn input_shape(&self) -> InputShape {
        let max = match self.arch {
            // `vocab ≤ 256` is checked, so `vocab − 1` fits a byte.
            Arch::CharLstm { vocab, .. } => u8::try_from(vocab - 1).unwrap_or(u8::MAX),
            _ => self.input_max,
        };
        InputShape {
            len: self.arch.input_len(),
            max,
        }
    }

    /// Work one query costs: multiply-accumulates plus table lookups. Dispute re-execution is
    /// bounded by this count (a genesis limit), so it must grow with every loop the engine runs.
    pub fn ops(&self) -> u64 {
        let dense = |d: &Dense| (d.rows * d.cols) as u64;
        match (&self.arch, &self.net) {
            (_, Net::Logistic { fc }) => dense(fc),
            (_, Net::Mlp { fc1, fc2 }) => dense(fc1) + dense(fc2),
            (&Arch::Cnn { side, .. }, Net::Cnn { conv1, conv2, fc }) => {
                let g = crate::arch::CnnGeometry::new(side);
                dense(conv1) * (g.conv1 * g.conv1) as u64
                    + dense(conv2) * (g.conv2 * g.conv2) as u64
                    + dense(fc)
            }
            (&Arch::CharLstm { seq, hidden, .. }, Net::CharLstm { lstm, fc }) => {
                // Per step: the recurrent MACs, one projection read and one table lookup per
                // gate row, and tanh of the cell state per unit.
                let step = dense(&lstm.recurrent) + 4 * hidden as u64 * 2 + hidden as u64;
                seq as u64 * step + dense(fc)
            }
            // `new` admits only matching pairs.
            _ => 0,
        }
    }

    /// BLAKE3 of [`QuantModel::encode`]: the id offers and receipts name.
    pub fn hash(&self) -> [u8; 32] {
        *blake3::hash(&self.encode()).as_bytes()
    }

    /// The model's layers (the format module walks them in blob order).
    pub(crate) fn net(&self) -> &Net {
        &self.net
    }
}

impl Lstm {
    fn check(&self, vocab: usize, hidden: usize) -> Result<(), ModelError> {
        let gates = 4 * hidden;
        if self.input_proj.len() != vocab * gates {
            return Err(ModelError::Shape {
                layer: "lstm",
                what: "input_proj",
                len: self.input_proj.len(),
                expected: vocab * gates,
            });
        }
        self.recurrent
            .check("lstm.recurrent", gates, hidden, HIDDEN_MAX)?;
        check_lut("sigmoid", &self.sigmoid, 0)?;
        check_lut("tanh", &self.tanh, -Q15_MAX)
    }
}

fn check_lut(table: &'static str, values: &[i16], min: i16) -> Result<(), ModelError> {
    if values.len() != LUT_LEN {
        return Err(ModelError::Shape {
            layer: table,
            what: "entries",
            len: values.len(),
            expected: LUT_LEN,
        });
    }
    match values
        .iter()
        .enumerate()
        .find(|&(_, &v)| !(min..=Q15_MAX).contains(&v))
    {
        Some((index, &value)) => Err(ModelError::Lut {
            table,
            index,
            value,
        }),
        None => Ok(()),
    }
}

fn nonzero(input_max: u8) -> Result<(), ModelError> {
    if input_max == 0 {
        Err(ModelError::InputMax)
    } else {
        Ok(())
    }
}

#[cfg(any(test, feature = "test-utils"))]
mod seeded;
#[cfg(any(test, feature = "test-utils"))]
pub(crate) use seeded::Stream;

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dense {
        Dense::new(
            2,
            3,
            vec![1, -2, 3, 127, 127, 127],
            vec![5, -5],
            vec![Requant::ONE; 2],
        )
    }

    #[test]
    fn accumulator_bound_is_checked() {
        let d = tiny();
        assert!(d.check("t", 2, 3, 255).is_ok());
        let mut big = d.clone();
        big.bias[1] = i32::MAX - 127 * 3 * 255 + 1;
        assert_eq!(
            big.check("t", 2, 3, 255),
            Err(ModelError::Accumulator { layer: "t", row: 1 })
        );
        big.bias[1] -= 1;
        assert!(big.check("t", 2, 3, 255).is_ok(), "exactly at the bound");
    }

    #[test]
    fn shapes_and_multipliers_are_checked() {
        let mut d = tiny();
        assert!(matches!(
            d.check("t", 3, 3, 1),
            Err(ModelError::Shape { what: "rows", .. })
        ));
        d.requant[0].shift = 63;
        assert_eq!(
            d.check("t", 2, 3, 1),
            Err(ModelError::Requant { layer: "t", row: 0 })
        );
        d.requant[0] = Requant { mult: -1, shift: 3 };
        assert!(d.check("t", 2, 3, 1).is_err());
    }

    #[test]
    fn mismatched_layers_are_refused() {
        let arch = Arch::Mlp {
            inputs: 3,
            hidden: 2,
            classes: 2,
        };
        let net = Net::Logistic { fc: tiny() };
        assert_eq!(
            QuantModel::new(arch, 16, net),
            Err(ModelError::Layers("mlp"))
        );
    }
}
