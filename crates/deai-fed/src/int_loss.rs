//! The validation loss that scores are computed from, in integers only.
//!
//! A score can decide a slash (a `score` challenge), so every honest validator must compute it
//! bit for bit alike. A float evaluation does not promise that: the matrix products of the
//! training backend sum in an order chosen by the CPU features it finds at run time, and `exp`
//! and `ln` come from the platform's maths library. This module computes the same quantity, the
//! mean cross-entropy of the model on the validation set, in fixed point:
//!
//! - every weight and feature is rounded to Q16 (`round(v · 2¹⁶)`, an exact operation on the
//!   `f32` value) and clamped to ±[`VALUE_MAX`];
//! - each layer is `Σ x·w` in `i64` (exact: the bounds below keep every partial sum under 2⁶³),
//!   shifted back to Q16 with rounding half up, plus the bias; ReLU is `max(0, ·)`;
//! - the loss of a sample, in bits, is `log₂ Σⱼ 2^((zⱼ − m)·log₂e) + (m − z_y)·log₂e` with `m` the
//!   largest logit: the natural cross-entropy divided by ln 2. `2^(−a)` multiplies together the
//!   constants `2^(−2^(b−16))` of `a`'s fraction bits (computed at compile time by integer
//!   square roots) and shifts by its integer part; `log₂` takes the integer part from the
//!   leading bit and 16 fraction bits by repeated squaring. Both are pure integer arithmetic.
//!
//! The loss is returned as the sum over samples (Q16 bits), which is what a relative
//! improvement needs: the unit and the sample count cancel. It tracks the float cross-entropy to
//! within 10⁻⁴ relative (tested; 3·10⁻⁶ to 2·10⁻⁵ measured on digits), far below what separates
//! a useful group from a useless one, and it is the same integer on every machine.
//!
//! Model kinds: logistic regression and the MLP (the kinds a networked task trains,
//! [`crate::TaskSpec::model_kind`]); others are refused.

use deai_learn::data::Dataset;
use deai_learn::model::ModelKind;

/// Fraction bits of every fixed-point value.
pub const FRAC_BITS: u32 = 16;
/// Largest magnitude of a weight, feature or activation, in Q16 (64.0): clamped beyond.
pub const VALUE_MAX: i64 = 1 << 22;
/// Most inputs of one layer: with [`VALUE_MAX`] it keeps `Σ x·w` below 2⁶².
pub const FAN_IN_MAX: usize = 1 << 18;
/// Largest magnitude of a logit, in Q16: clamped beyond.
const LOGIT_MAX: i64 = 1 << 40;
/// `log₂ e` in Q16.
const LOG2_E: i64 = 94_548;
/// Fraction bits of the powers of two summed in a sample's loss.
const EXP_BITS: u32 = 30;
/// Fraction bits of the constants in [`EXP2_NEG`].
const TABLE_BITS: u32 = 62;

/// Why a model cannot be evaluated in integers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntLossError {
    /// Only logistic regression and the MLP are evaluated.
    #[error("integer scoring covers logistic regression and the MLP, not {0}")]
    Kind(&'static str),
    /// The parameters or the data do not fit the model.
    #[error("{0}")]
    Shape(String),
}

/// The validation set, converted to Q16 once and scored against many models.
#[derive(Debug, Clone)]
pub struct FixedData {
    features: Vec<i64>,
    labels: Vec<usize>,
    sample_len: usize,
    classes: usize,
}

impl FixedData {
    /// Converts `data`; a non-finite feature counts as 0.
    pub fn new(data: &Dataset) -> Self {
        Self {
            features: data.features.iter().map(|&v| to_fixed(v)).collect(),
            labels: data.labels.iter().map(|&l| l as usize).collect(),
            sample_len: data.sample_len,
            classes: data.classes,
        }
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether no sample is held.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// `v` in Q16, rounded half away from zero, clamped to ±[`VALUE_MAX`]; non-finite → 0. Every
/// step is exact on the `f32` value, so the result is the same on every machine.
pub fn to_fixed(v: f32) -> i64 {
    if !v.is_finite() {
        return 0;
    }
    let scaled = (f64::from(v) * f64::from(1u32 << FRAC_BITS)).round();
    (scaled.clamp(-(VALUE_MAX as f64), VALUE_MAX as f64)) as i64
}

/// One dense layer in Q16: weights `[inputs, outputs]` row-major, then a bias per output.
struct Dense {
    inputs: usize,
    outputs: usize,
    weights: Vec<i64>,
    bias: Vec<i64>,
}

impl Dense {
    fn take(params: &mut &[f32], inputs: usize, outputs: usize) -> Result<Self, IntLossError> {
        if inputs > FAN_IN_MAX {
            return Err(IntLossError::Shape(format!(
                "a layer with {inputs} inputs exceeds the integer evaluation's {FAN_IN_MAX}"
            )));
        }
        let need = inputs * outputs + outputs;
        if params.len() < need {
            return Err(IntLossError::Shape(format!(
                "parameters end before a layer of {inputs}×{outputs}"
            )));
        }
        let (layer, rest) = params.split_at(need);
        *params = rest;
        let (w, b) = layer.split_at(inputs * outputs);
        Ok(Self {
            inputs,
            outputs,
            weights: w.iter().map(|&v| to_fixed(v)).collect(),
            bias: b.iter().map(|&v| to_fixed(v)).collect(),
        })
    }

    /// `out = x · W + b` in Q16; `x` holds `inputs` values bounded by [`VALUE_MAX`].
    fn forward(&self, x: &[i64], out: &mut Vec<i64>) {
        let mut acc = vec![0i64; self.outputs];
        for (&xi, row) in x.iter().zip(self.weights.chunks_exact(self.outputs)) {
            if xi == 0 {
                continue;
            }
            for (a, &w) in acc.iter_mut().zip(row) {
                *a += xi * w;
            }
        }
        out.clear();
        out.extend(
            acc.iter()
                .zip(&self.bias)
                .map(|(&a, &b)| shift_round(a, FRAC_BITS) + b),
        );
    }
}

/// A model in Q16.
struct Net {
    layers: Vec<Dense>,
    classes: usize,
}

impl Net {
    fn new(kind: &ModelKind, params: &[f32]) -> Result<Self, IntLossError> {
        if params.len() != kind.num_params() {
            return Err(IntLossError::Shape(format!(
                "{} parameters for a model of {}",
                params.len(),
                kind.num_params()
            )));
        }
        let mut rest = params;
        let layers = match *kind {
            ModelKind::Logistic { inputs, classes } => {
                vec![Dense::take(&mut rest, inputs, classes)?]
            }
            ModelKind::Mlp {
                inputs,
                hidden,
                classes,
            } => vec![
                Dense::take(&mut rest, inputs, hidden)?,
                Dense::take(&mut rest, hidden, classes)?,
            ],
            _ => return Err(IntLossError::Kind(kind.name())),
        };
        Ok(Self {
            layers,
            classes: kind.classes(),
        })
    }

    /// The sample's logits (Q16) into `out`; hidden layers pass through ReLU.
    fn logits(&self, x: &[i64], out: &mut Vec<i64>, scratch: &mut Vec<i64>) {
        scratch.clear();
        scratch.extend_from_slice(x);
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            layer.forward(scratch, out);
            if i < last {
                for v in out.iter_mut() {
                    *v = (*v).clamp(0, VALUE_MAX);
                }
                std::mem::swap(scratch, out);
            }
        }
        for v in out.iter_mut() {
            *v = (*v).clamp(-LOGIT_MAX, LOGIT_MAX);
        }
    }
}

/// The summed cross-entropy (in bits, Q16) of the model `kind`/`params` over `data`.
pub fn loss_sum(kind: &ModelKind, params: &[f32], data: &FixedData) -> Result<u128, IntLossError> {
    let net = Net::new(kind, params)?;
    let inputs = net.layers[0].inputs;
    if data.sample_len != inputs || data.classes != net.classes {
        return Err(IntLossError::Shape(format!(
            "validation samples of {} features in {} classes for a model of {inputs} inputs and {} classes",
            data.sample_len, data.classes, net.classes
        )));
    }
    let (mut logits, mut scratch) = (Vec::new(), Vec::new());
    let mut total = 0u128;
    for (x, &label) in data.features.chunks_exact(inputs).zip(&data.labels) {
        net.logits(x, &mut logits, &mut scratch);
        total += u128::from(sample_loss(&logits, label));
    }
    Ok(total)
}

/// One sample's cross-entropy in bits (Q16): `log₂ Σⱼ 2^((zⱼ−m)·log₂e) + (m − z_y)·log₂e`.
fn sample_loss(logits: &[i64], label: usize) -> u64 {
    let m = logits.iter().copied().max().unwrap_or(0);
    // Each term is in (0, 1] in Q30 and the largest is exactly 1, so the sum is ≥ 2³⁰.
    let sum: u64 = logits
        .iter()
        .map(|&z| exp2_neg(to_bits(m - z)))
        .sum::<u64>()
        .max(1);
    let lse = log2(sum).saturating_sub(u64::from(EXP_BITS) << FRAC_BITS);
    let margin = logits.get(label).map_or(0, |&z| to_bits(m - z));
    lse + margin
}

/// A non-negative logit difference (Q16 nats) in Q16 bits.
fn to_bits(diff: i64) -> u64 {
    shift_round(diff.max(0) * LOG2_E, FRAC_BITS).unsigned_abs()
}

/// `v / 2^bits`, rounded half up (`>>` on `i64` is arithmetic, so this holds for negatives).
fn shift_round(v: i64, bits: u32) -> i64 {
    (v + (1 << (bits - 1))) >> bits
}

/// `2^(−a/2¹⁶)` in Q30, for `a ≥ 0` in Q16.
fn exp2_neg(a: u64) -> u64 {
    let whole = a >> FRAC_BITS;
    if whole > u64::from(EXP_BITS) {
        return 0;
    }
    let mut r: u128 = 1 << TABLE_BITS;
    for (bit, &c) in EXP2_NEG.iter().enumerate() {
        if a & (1 << bit) != 0 {
            r = (r * u128::from(c)) >> TABLE_BITS;
        }
    }
    let shift = TABLE_BITS - EXP_BITS + whole as u32;
    ((r + (1 << (shift - 1))) >> shift) as u64
}

/// `log₂ s` in Q16 (floor of the fraction), for `s ≥ 1`.
fn log2(s: u64) -> u64 {
    let whole = u64::from(s.ilog2());
    // `s / 2^whole` in [1, 2), Q62.
    let mut y: u128 = if whole <= u64::from(TABLE_BITS) {
        u128::from(s) << (u64::from(TABLE_BITS) - whole)
    } else {
        u128::from(s) >> (whole - u64::from(TABLE_BITS))
    };
    let mut frac = 0u64;
    for bit in (0..FRAC_BITS).rev() {
        y = (y * y) >> TABLE_BITS;
        if y >= 2 << TABLE_BITS {
            y >>= 1;
            frac |= 1 << bit;
        }
    }
    (whole << FRAC_BITS) | frac
}

/// `EXP2_NEG[b] = 2^(−2^(b−16))` in Q62: the factor of fraction bit `b` of an exponent in Q16.
/// Built by integer square roots from `2^(−1/2)`, so it is the same everywhere.
const EXP2_NEG: [u64; FRAC_BITS as usize] = {
    let mut table = [0u64; FRAC_BITS as usize];
    // 2^(−1/2) in Q62 = √(2⁻¹ · 2¹²⁴).
    let mut v: u128 = (1u128 << (2 * TABLE_BITS - 1)).isqrt();
    let mut b = FRAC_BITS as usize;
    while b > 0 {
        b -= 1;
        table[b] = v as u64;
        v = (v << TABLE_BITS).isqrt();
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powers_of_two_match_the_float_ones() {
        for a in (0..(31u64 << FRAC_BITS)).step_by(9_973) {
            let want = (-(a as f64) / 65_536.0).exp2() * f64::from(1u32 << EXP_BITS);
            let got = exp2_neg(a) as f64;
            assert!((got - want).abs() <= 2.0, "2^-{a}: {got} vs {want}");
        }
        assert_eq!(exp2_neg(0), 1 << EXP_BITS);
        assert_eq!(exp2_neg(1 << FRAC_BITS), 1 << (EXP_BITS - 1));
        assert_eq!(exp2_neg(40 << FRAC_BITS), 0);
    }

    #[test]
    fn logarithms_match_the_float_ones() {
        for s in [
            1u64,
            2,
            3,
            10,
            1 << 30,
            (1 << 30) + 12_345,
            10 << 30,
            u64::MAX,
        ] {
            let want = (s as f64).log2() * 65_536.0;
            let got = log2(s) as f64;
            assert!(
                (0.0..=2.0).contains(&(want - got)),
                "log2 {s}: {got} vs {want}"
            );
        }
        assert_eq!(log2(1 << 30), 30 << FRAC_BITS);
    }

    #[test]
    fn fixed_point_conversion_rounds_and_clamps() {
        assert_eq!(to_fixed(1.0), 65_536);
        assert_eq!(to_fixed(-0.5), -32_768);
        assert_eq!(to_fixed(1e9), VALUE_MAX);
        assert_eq!(to_fixed(f32::NAN), 0);
        assert_eq!(
            to_fixed(1.0 / 131_072.0),
            1,
            "half a unit rounds away from zero"
        );
    }

    #[test]
    fn a_sample_loss_is_cross_entropy_in_bits() {
        // Logits 0, ln 3 (in nats): p(1) = 3/4, so −log₂ p(0) = 2, −log₂ p(1) = log₂(4/3).
        let z = [0, to_fixed(3f32.ln())];
        let l0 = sample_loss(&z, 0) as f64 / 65_536.0;
        let l1 = sample_loss(&z, 1) as f64 / 65_536.0;
        assert!((l0 - 2.0).abs() < 1e-4, "{l0}");
        assert!((l1 - (4.0f64 / 3.0).log2()).abs() < 1e-4, "{l1}");
    }

    /// Mean loss in nats from the integer sum, beside the float evaluation's.
    fn both_losses(kind: &ModelKind, params: &[f32], data: &Dataset) -> (f64, f64) {
        let sum = loss_sum(kind, params, &FixedData::new(data)).expect("integer loss");
        let nats = sum as f64 / 65_536.0 / data.len() as f64 * std::f64::consts::LN_2;
        (nats, deai_learn::model::evaluate(kind, params, data).loss)
    }

    #[test]
    fn the_integer_loss_tracks_the_float_cross_entropy_before_and_after_training() {
        use deai_learn::model::optim::{LocalTrain, Optimizer, train};
        let (train_set, validation) = deai_learn::data::digits::split(
            &deai_learn::data::digits::load().expect("digits ship with the project"),
        );
        for kind in [
            ModelKind::from_name("logreg", 64, 10).expect("kind"),
            ModelKind::from_name("mlp", 64, 10).expect("kind"),
        ] {
            let mut rng = deai_learn::rng::stream("int-loss-test", &[1]);
            let init = kind.init(&mut rng);
            let cfg = LocalTrain {
                lr: 0.05,
                epochs: 2,
                batch: 32,
                optimizer: Optimizer::Sgd {
                    momentum: 0.9,
                    weight_decay: 0.0,
                },
                prox_mu: 0.0,
            };
            let trained = train(&kind, &init, &train_set, &cfg, &mut rng).expect("training");
            let (int_before, float_before) = both_losses(&kind, &init, &validation);
            let (int_after, float_after) = both_losses(&kind, &trained.params, &validation);
            for (i, f) in [(int_before, float_before), (int_after, float_after)] {
                assert!(
                    (i - f).abs() <= 1e-4 * f,
                    "{}: integer {i} vs float {f}",
                    kind.name()
                );
            }
            assert!(float_after < 0.7 * float_before, "training helped");
        }
    }

    /// Pinned: a change of the arithmetic (or a machine that computes it differently) changes
    /// recorded scores, which validators must agree on.
    #[test]
    fn the_integer_loss_of_a_fixed_model_is_pinned() {
        let (_, validation) = deai_learn::data::digits::split(
            &deai_learn::data::digits::load().expect("digits ship with the project"),
        );
        let kind = ModelKind::from_name("mlp", 64, 10).expect("kind");
        // Weights from integers alone (an initialiser draws through `ln` and `cos`).
        let params: Vec<f32> = (0..kind.num_params())
            .map(|i| ((i * 7_919) % 2_001) as f32 / 8_000.0 - 0.125)
            .collect();
        let sum = loss_sum(&kind, &params, &FixedData::new(&validation)).expect("loss");
        assert_eq!(sum, 77_989_319);
    }

    #[test]
    fn other_model_kinds_are_refused() {
        let kind = ModelKind::Cnn {
            side: 28,
            c1: 2,
            c2: 2,
            classes: 10,
        };
        let data =
            FixedData::new(&Dataset::new("x", vec![0.0; 784], vec![0], 784, 10).expect("dataset"));
        let params = vec![0.0; kind.num_params()];
        assert_eq!(
            loss_sum(&kind, &params, &data).map(|_| ()),
            Err(IntLossError::Kind("cnn"))
        );
    }
}
