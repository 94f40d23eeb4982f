//! Post-training quantization: a float model of deai-learn → a [`QuantModel`] (feature
//! `quantize`).
//!
//! Floats are fine here: this is not the verified path; the blob it produces is. The result is a
//! pure function of (kind, parameters, calibration set, config): no threads, no randomness, and
//! the lookup tables come from `libm` (the same bits on every platform).
//!
//! - **Weights**: symmetric int8 per output row (channel): `s_w[r] = max|w[r]| / 127`, rounded
//!   with error feedback over the layer's calibration inputs ([`Rounding::Feedback`], GPTQ) so
//!   the rounding errors of a row cancel in its output instead of adding up.
//! - **Inputs**: an input byte `q` is `q / input_max`; `input_max` is the smallest `d ≤ 255`
//!   that puts every calibration feature on the grid `k / d` (16 for digits, 255 for
//!   Fashion-MNIST), so quantizing the input loses nothing.
//! - **Hidden activations**: unsigned 8-bit after ReLU, zero point 0, one scale per layer chosen
//!   on the calibration set ([`Clip`]).
//! - **Biases**: `i32` at `s_w[r] · s_in`; **multipliers**: `s_w[r] · s_in / s_out` as
//!   [`Requant`]. Logits share the scale `max_r s_w[r] · s_in`, so every logit multiplier is ≤ 1
//!   and logits compare across classes.
//! - **LSTM**: the embedding and input weights fold into a per-id Q8 table; the recurrent
//!   weights requantize to Q8 gate pre-activations; σ and tanh are Q15 tables over Q8.

use deai_learn::data::Dataset;
use deai_learn::model::ModelKind;

use crate::arch::{Arch, CnnGeometry, KERNEL};
use crate::fixed::Requant;
use crate::model::{ACT_MAX, HIDDEN_MAX};
use crate::model::{Dense, LUT_LEN, LUT_ZERO, Lstm, ModelError, Net, Q15_MAX, QuantModel};

/// How a hidden layer's activation range is chosen from the calibration activations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Clip {
    /// The largest activation seen.
    Max,
    /// The clip value (among 2 % steps of the maximum, from 30 % up) that minimises the mean
    /// squared error of clipping plus rounding over the calibration activations.
    Mse,
}

/// How weights are rounded to their int8 grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// Each weight to its nearest level.
    Nearest,
    /// One weight at a time, its error moved onto the weights not yet rounded so the row's
    /// output error over the calibration inputs is smallest (GPTQ/OPTQ).
    Feedback,
}

/// Quantizer settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantizeConfig {
    /// The input grid; `None` detects it from the calibration set.
    pub input_max: Option<u8>,
    /// Calibration samples used at most (evenly spaced over the set).
    pub calibration_samples: usize,
    /// Activation range rule.
    pub clip: Clip,
    /// Weight rounding rule.
    pub rounding: Rounding,
}

impl Default for QuantizeConfig {
    fn default() -> Self {
        Self {
            input_max: None,
            calibration_samples: 2000,
            clip: Clip::Mse,
            rounding: Rounding::Feedback,
        }
    }
}

/// Why a float model cannot be quantized.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuantizeError {
    /// The parameter vector does not fit the kind's layout.
    #[error("{len} parameters, the model has {expected}")]
    Params {
        /// Values given.
        len: usize,
        /// Values the layout holds.
        expected: usize,
    },
    /// A parameter is NaN or infinite.
    #[error("parameter {0} is not finite")]
    NonFinite(usize),
    /// The calibration set does not fit the model.
    #[error("calibration set: {0}")]
    Calibration(String),
    /// The quantized model breaks a bound (e.g. an architecture too large).
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// The engine architecture of a deai-learn model kind.
pub fn arch_of(kind: &ModelKind) -> Arch {
    match *kind {
        ModelKind::Logistic { inputs, classes } => Arch::Logistic { inputs, classes },
        ModelKind::Mlp {
            inputs,
            hidden,
            classes,
        } => Arch::Mlp {
            inputs,
            hidden,
            classes,
        },
        ModelKind::Cnn {
            side,
            c1,
            c2,
            classes,
        } => Arch::Cnn {
            side,
            c1,
            c2,
            classes,
        },
        ModelKind::CharLstm {
            seq,
            vocab,
            embed,
            hidden,
        } => Arch::CharLstm {
            seq,
            vocab,
            embed,
            hidden,
        },
    }
}

/// [`quantize_with`] the default config.
pub fn quantize(
    kind: &ModelKind,
    params: &[f32],
    calibration: &Dataset,
) -> Result<QuantModel, QuantizeError> {
    quantize_with(kind, params, calibration, &QuantizeConfig::default())
}

/// Quantizes `params` (in `kind.layout()` order), calibrating activation ranges on
/// `calibration` (the character model needs none, but its ids are still checked).
pub fn quantize_with(
    kind: &ModelKind,
    params: &[f32],
    calibration: &Dataset,
    cfg: &QuantizeConfig,
) -> Result<QuantModel, QuantizeError> {
    let arch = arch_of(kind);
    arch.validate().map_err(ModelError::from)?;
    let expected = kind.num_params();
    if params.len() != expected {
        return Err(QuantizeError::Params {
            len: params.len(),
            expected,
        });
    }
    if let Some(i) = params.iter().position(|v| !v.is_finite()) {
        return Err(QuantizeError::NonFinite(i));
    }
    kind.check_data(calibration)
        .map_err(|e| QuantizeError::Calibration(e.to_string()))?;
    let tensors = split(kind, params);
    let samples = pick(calibration, cfg.calibration_samples);
    if samples.is_empty() {
        return Err(QuantizeError::Calibration("no samples".into()));
    }
    if let Arch::CharLstm { vocab, hidden, .. } = arch {
        let net = lstm_net(&tensors, vocab, hidden);
        return Ok(QuantModel::new(arch, 0, net)?);
    }
    let input_max = match cfg.input_max {
        Some(d) if d > 0 => d,
        _ => input_grid(&samples)?,
    };
    let pixels = LayerInput::grid(input_max);
    let net = match arch {
        Arch::Logistic { inputs, classes } => Net::Logistic {
            fc: logit_layer(
                tensors[0],
                tensors[1],
                inputs,
                classes,
                &pixels.calibrated(cfg.rounding, inputs, samples.iter().copied()),
            ),
        },
        Arch::Mlp {
            inputs,
            hidden,
            classes,
        } => mlp_net(&tensors, &samples, inputs, hidden, classes, &pixels, cfg),
        Arch::Cnn { side, c1, c2, .. } => cnn_net(&tensors, &samples, side, c1, c2, &pixels, cfg),
        Arch::CharLstm { .. } => unreachable!("handled above"),
    };
    Ok(QuantModel::new(arch, input_max, net)?)
}

/// The parameter tensors in layout order.
fn split<'a>(kind: &ModelKind, params: &'a [f32]) -> Vec<&'a [f32]> {
    let mut out = Vec::new();
    let mut at = 0;
    for spec in kind.layout() {
        out.push(&params[at..at + spec.len()]);
        at += spec.len();
    }
    out
}

/// At most `n` samples, evenly spaced (so every part of an ordered set is represented).
fn pick(data: &Dataset, n: usize) -> Vec<&[f32]> {
    let len = data.len();
    let n = n.min(len);
    (0..n).map(|k| data.sample(k * len / n)).collect()
}

/// The smallest `d ≤ 255` with every feature on the grid `k / d`; 255 when none fits.
fn input_grid(samples: &[&[f32]]) -> Result<u8, QuantizeError> {
    for (i, &v) in samples.iter().flat_map(|s| s.iter()).enumerate() {
        if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
            return Err(QuantizeError::Calibration(format!(
                "feature value {v} (#{i}) outside [0, 1]"
            )));
        }
    }
    let fits = |d: u8| {
        let d = f64::from(d);
        samples
            .iter()
            .flat_map(|s| s.iter())
            .all(|&v| (f64::from(v) * d - (f64::from(v) * d).round()).abs() < 1e-3)
    };
    Ok((1..=255u8).find(|&d| fits(d)).unwrap_or(255))
}

/// `mult · 2^-shift ≈ m`, with `mult` as large as fits (up to `2^31 − 1`) for full precision.
pub(crate) fn requant(m: f64) -> Requant {
    if !(m.is_finite() && m > 0.0) {
        return Requant { mult: 0, shift: 0 };
    }
    let limit = f64::from(i32::MAX);
    let mut shift = crate::fixed::SHIFT_MAX;
    while shift > 0 && (m * 2f64.powi(i32::from(shift))).round() > limit {
        shift -= 1;
    }
    let mult = (m * 2f64.powi(i32::from(shift))).round().min(limit);
    Requant {
        mult: mult as i32,
        shift,
    }
}

/// Per-row weight quantization of a `[rows][cols]` float matrix, returning the int8 weights
/// and each row's scale. An all-zero row borrows the largest scale (its weights are 0 anyway;
/// a sane scale keeps its bias and multiplier in range). With a `feedback` factor the rows are
/// rounded by [`feedback::round_row`], else each weight to nearest.
fn rows_i8(
    w: &[f32],
    rows: usize,
    cols: usize,
    feedback: Option<&feedback::Feedback>,
) -> (Vec<i8>, Vec<f64>) {
    let mut scales: Vec<f64> = (0..rows)
        .map(|r| {
            let max = w[r * cols..(r + 1) * cols]
                .iter()
                .fold(0f64, |m, &v| m.max(f64::from(v).abs()));
            max / 127.0
        })
        .collect();
    let fallback = scales.iter().copied().fold(0.0, f64::max);
    let fallback = if fallback > 0.0 {
        fallback
    } else {
        1.0 / 127.0
    };
    for s in &mut scales {
        if *s == 0.0 {
            *s = fallback;
        }
    }
    let q = match feedback {
        Some(u) => w
            .chunks_exact(cols)
            .zip(&scales)
            .flat_map(|(row, &s)| feedback::round_row(row, s, u))
            .collect(),
        None => w
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                (f64::from(v) / scales[i / cols])
                    .round()
                    .clamp(-127.0, 127.0) as i8
            })
            .collect(),
    };
    (q, scales)
}

/// `[in][out]` (deai-learn's linear layout) → `[out][in]`.
fn transpose(w: &[f32], inputs: usize, outputs: usize) -> Vec<f32> {
    let mut t = vec![0f32; w.len()];
    for i in 0..inputs {
        for o in 0..outputs {
            t[o * inputs + i] = w[i * outputs + o];
        }
    }
    t
}

/// What a layer's inputs look like to the quantizer.
struct LayerInput {
    /// The value of one input step.
    scale: f64,
    /// The largest input level.
    max: f64,
    /// The error-feedback factor of the calibration inputs (`None`: round to nearest).
    feedback: Option<feedback::Feedback>,
}

impl LayerInput {
    /// Inputs on the grid `k / max`, `k ≤ max`, no calibration.
    fn grid(max: u8) -> Self {
        Self {
            scale: 1.0 / f64::from(max),
            max: f64::from(max),
            feedback: None,
        }
    }

    /// Inputs of `scale` up to level `max`, no calibration.
    fn scaled(scale: f64, max: f64) -> Self {
        Self {
            scale,
            max,
            feedback: None,
        }
    }

    /// The same inputs, with the feedback factor of the calibration inputs `xs` (each of
    /// length `cols`) when `rounding` asks for it.
    fn calibrated<'a>(
        &self,
        rounding: Rounding,
        cols: usize,
        xs: impl IntoIterator<Item = &'a [f32]>,
    ) -> Self {
        let feedback = match rounding {
            Rounding::Nearest => None,
            Rounding::Feedback => {
                let mut gram = feedback::Gram::new(cols);
                xs.into_iter().for_each(|x| gram.add(x));
                gram.factor()
            }
        };
        Self {
            scale: self.scale,
            max: self.max,
            feedback,
        }
    }
}

/// A layer over `[rows][cols]` weights fed `input`; `out_scale(row_scales)` gives each row's
/// output scale.
fn layer(
    w_rows: &[f32],
    b: &[f32],
    rows: usize,
    cols: usize,
    input: &LayerInput,
    out_scale: impl Fn(&[f64]) -> Vec<f64>,
) -> Dense {
    let (s_in, x_max) = (input.scale, input.max);
    let (weights, s_w) = rows_i8(w_rows, rows, cols, input.feedback.as_ref());
    let s_out = out_scale(&s_w);
    let bias = (0..rows)
        .map(|r| {
            let sum: f64 = weights[r * cols..(r + 1) * cols]
                .iter()
                .map(|&q| f64::from(q).abs())
                .sum();
            // Keep the accumulator bound: a bias past it would be a broken float model anyway.
            let room = (f64::from(i32::MAX) - sum * x_max).max(0.0);
            (f64::from(b[r]) / (s_w[r] * s_in))
                .round()
                .clamp(-room, room) as i32
        })
        .collect();
    let requant = (0..rows)
        .map(|r| requant(s_w[r] * s_in / s_out[r]))
        .collect();
    Dense::new(rows, cols, weights, bias, requant)
}

/// The logit layer from deai-learn's `[in][out]` weights: one common output scale.
fn logit_layer(w: &[f32], b: &[f32], inputs: usize, classes: usize, input: &LayerInput) -> Dense {
    let rows = transpose(w, inputs, classes);
    layer(&rows, b, classes, inputs, input, |s_w| {
        let common = s_w.iter().copied().fold(0.0, f64::max) * input.scale;
        vec![common; s_w.len()]
    })
}

/// A hidden layer with ReLU whose output scale is `s_out`.
fn relu_layer(
    w_rows: &[f32],
    b: &[f32],
    rows: usize,
    cols: usize,
    input: &LayerInput,
    s_out: f64,
) -> Dense {
    layer(w_rows, b, rows, cols, input, |s_w| vec![s_out; s_w.len()])
}

fn mlp_net(
    t: &[&[f32]],
    samples: &[&[f32]],
    inputs: usize,
    hidden: usize,
    classes: usize,
    pixels: &LayerInput,
    cfg: &QuantizeConfig,
) -> Net {
    let mut acts = Vec::with_capacity(samples.len() * hidden);
    let mut h = vec![0f32; hidden];
    for x in samples {
        float::linear(x, t[0], t[1], &mut h);
        acts.extend(h.iter().map(|v| v.max(0.0)));
    }
    // The second layer is calibrated on what the first will give it: clipped at its range.
    let s_h = act_scale(&mut acts.clone(), cfg.clip);
    let top = (s_h * f64::from(ACT_MAX)) as f32;
    acts.iter_mut().for_each(|v| *v = v.min(top));
    let fc1_rows = transpose(t[0], inputs, hidden);
    let fc1_in = pixels.calibrated(cfg.rounding, inputs, samples.iter().copied());
    let fc2_in = LayerInput::scaled(s_h, f64::from(ACT_MAX)).calibrated(
        cfg.rounding,
        hidden,
        acts.chunks_exact(hidden),
    );
    Net::Mlp {
        fc1: relu_layer(&fc1_rows, t[1], hidden, inputs, &fc1_in, s_h),
        fc2: logit_layer(t[2], t[3], hidden, classes, &fc2_in),
    }
}

/// Convolution layers are calibrated on the patches of this many samples at most (every
/// position of each): plenty for a 25- or 200-wide moment, and it bounds the quantizer's time.
const PATCH_SAMPLES: usize = 256;

fn cnn_net(
    t: &[&[f32]],
    samples: &[&[f32]],
    side: usize,
    c1: usize,
    c2: usize,
    pixels: &LayerInput,
    cfg: &QuantizeConfig,
) -> Net {
    let g = CnnGeometry::new(side);
    let (mut maps1, mut maps2) = (Vec::new(), Vec::new());
    for x in samples {
        let m1 = float::relu_pool(&float::conv(x, 1, side, t[0], t[1], c1), c1, g.conv1);
        let m2 = float::relu_pool(&float::conv(&m1, c1, g.pool1, t[2], t[3], c2), c2, g.conv2);
        maps1.extend_from_slice(&m1);
        maps2.extend_from_slice(&m2);
    }
    let s1 = act_scale(&mut maps1.clone(), cfg.clip);
    let s2 = act_scale(&mut maps2.clone(), cfg.clip);
    let (top1, top2) = (
        (s1 * f64::from(ACT_MAX)) as f32,
        (s2 * f64::from(ACT_MAX)) as f32,
    );
    maps1.iter_mut().for_each(|v| *v = v.min(top1));
    maps2.iter_mut().for_each(|v| *v = v.min(top2));
    let k2 = KERNEL * KERNEL;
    let fc_in = c2 * g.pool2 * g.pool2;
    let classes = t[5].len();
    let few = samples.len().min(PATCH_SAMPLES);
    let conv1_in = pixels.calibrated(
        cfg.rounding,
        k2,
        float::patches(samples[..few].iter().copied(), 1, side)
            .iter()
            .map(Vec::as_slice),
    );
    let m1_len = c1 * g.pool1 * g.pool1;
    let conv2_in = LayerInput::scaled(s1, f64::from(ACT_MAX)).calibrated(
        cfg.rounding,
        c1 * k2,
        float::patches(maps1.chunks_exact(m1_len).take(few), c1, g.pool1)
            .iter()
            .map(Vec::as_slice),
    );
    let fc_calib = LayerInput::scaled(s2, f64::from(ACT_MAX)).calibrated(
        cfg.rounding,
        fc_in,
        maps2.chunks_exact(fc_in),
    );
    Net::Cnn {
        conv1: relu_layer(t[0], t[1], c1, k2, &conv1_in, s1),
        conv2: relu_layer(t[2], t[3], c2, c1 * k2, &conv2_in, s2),
        fc: logit_layer(t[4], t[5], fc_in, classes, &fc_calib),
    }
}

/// The scale of a post-ReLU `u8` activation: `clip / 255` (sorts `acts`).
fn act_scale(acts: &mut [f32], clip: Clip) -> f64 {
    acts.sort_by(f32::total_cmp);
    let max = acts.last().map_or(0.0, |&v| f64::from(v));
    if max <= 0.0 {
        // A dead layer: any scale represents its zeros.
        return 1.0 / f64::from(ACT_MAX);
    }
    let best = match clip {
        Clip::Max => max,
        Clip::Mse => mse_clip(acts, max),
    };
    best / f64::from(ACT_MAX)
}

/// The clip value minimising clipping error plus uniform rounding noise over sorted `acts`.
fn mse_clip(acts: &[f32], max: f64) -> f64 {
    let positive = &acts[acts.partition_point(|&v| v <= 0.0)..];
    // Suffix sums of v and v² so each candidate costs a binary search.
    let mut s1 = vec![0f64; positive.len() + 1];
    let mut s2 = vec![0f64; positive.len() + 1];
    for (i, &v) in positive.iter().enumerate().rev() {
        let v = f64::from(v);
        s1[i] = s1[i + 1] + v;
        s2[i] = s2[i + 1] + v * v;
    }
    let error = |c: f64| {
        let k = positive.partition_point(|&v| f64::from(v) <= c);
        let tail = (positive.len() - k) as f64;
        let clipped = s2[k] - 2.0 * c * s1[k] + tail * c * c;
        let step = c / f64::from(ACT_MAX);
        clipped + k as f64 * step * step / 12.0
    };
    (15..=50)
        .map(|k| max * f64::from(k) / 50.0)
        .fold((max, error(max)), |(bc, be), c| {
            let e = error(c);
            if e < be { (c, e) } else { (bc, be) }
        })
        .0
}

/// The character LSTM: folded input projection, recurrent layer, tables, logits.
fn lstm_net(t: &[&[f32]], vocab: usize, hidden: usize) -> Net {
    let (embed_w, w_ih, w_hh, bias) = (t[0], t[1], t[2], t[3]);
    let gates = 4 * hidden;
    let embed = embed_w.len() / vocab;
    let q8 = f64::from(1u32 << 8);
    let bound = f64::from(1u32 << 30);
    let mut input_proj = Vec::with_capacity(vocab * gates);
    for id in 0..vocab {
        let e = &embed_w[id * embed..(id + 1) * embed];
        for r in 0..gates {
            let z: f64 = f64::from(bias[r])
                + (0..embed)
                    .map(|k| f64::from(e[k]) * f64::from(w_ih[k * gates + r]))
                    .sum::<f64>();
            input_proj.push((z * q8).round().clamp(-bound, bound) as i32);
        }
    }
    // Recurrent rows: h in units of 1/128 → gate pre-activation in Q8.
    let rows = transpose(w_hh, hidden, gates);
    let s_h = 1.0 / 128.0;
    let h_in = LayerInput::scaled(s_h, f64::from(HIDDEN_MAX));
    let recurrent = layer(&rows, &vec![0.0; gates], gates, hidden, &h_in, |s_w| {
        vec![1.0 / q8; s_w.len()]
    });
    let table = |f: fn(f64) -> f64, min: f64| -> Vec<i16> {
        (0..LUT_LEN)
            .map(|i| {
                let z = (i as f64 - LUT_ZERO as f64) / q8;
                (f(z) * 32768.0).round().clamp(min, f64::from(Q15_MAX)) as i16
            })
            .collect()
    };
    let lstm = Lstm {
        input_proj,
        recurrent,
        sigmoid: table(|z| 1.0 / (1.0 + libm::exp(-z)), 0.0),
        tanh: table(libm::tanh, -f64::from(Q15_MAX)),
    };
    Net::CharLstm {
        lstm,
        fc: logit_layer(t[4], t[5], hidden, vocab, &h_in),
    }
}

/// The float reference forward pieces calibration needs (same semantics as deai-learn's burn
/// code: valid 5×5 cross-correlation with `[out][in][ky][kx]` weights, floor 2×2 pooling).
pub(crate) mod float {
    #[cfg(any(test, feature = "bench"))]
    use deai_learn::model::ModelKind;

    use crate::arch::KERNEL;

    /// `out = x · w + b` with deai-learn's `[in][out]` weights.
    pub(crate) fn linear(x: &[f32], w: &[f32], b: &[f32], out: &mut [f32]) {
        out.copy_from_slice(b);
        let n = out.len();
        for (i, &xi) in x.iter().enumerate() {
            if xi != 0.0 {
                for (o, &wv) in out.iter_mut().zip(&w[i * n..(i + 1) * n]) {
                    *o += xi * wv;
                }
            }
        }
    }

    /// Valid 5×5 convolution of `[ch_in][side][side]` into `[ch_out][side−4][side−4]`.
    pub(crate) fn conv(
        x: &[f32],
        ch_in: usize,
        side: usize,
        w: &[f32],
        b: &[f32],
        ch_out: usize,
    ) -> Vec<f32> {
        let k = KERNEL;
        let n = side - (k - 1);
        let mut out = vec![0f32; ch_out * n * n];
        for o in 0..ch_out {
            let map = &mut out[o * n * n..(o + 1) * n * n];
            map.fill(b[o]);
            for c in 0..ch_in {
                let plane = &x[c * side * side..(c + 1) * side * side];
                for ky in 0..k {
                    for kx in 0..k {
                        let wv = w[((o * ch_in + c) * k + ky) * k + kx];
                        for y in 0..n {
                            let src = &plane[(y + ky) * side + kx..(y + ky) * side + kx + n];
                            for (d, &s) in map[y * n..(y + 1) * n].iter_mut().zip(src) {
                                *d += wv * s;
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// Float logits of one sample of an image model (`None` for the character model), for
    /// agreement checks against the integer engine.
    #[cfg(any(test, feature = "bench"))]
    pub(crate) fn logits(kind: &ModelKind, params: &[f32], x: &[f32]) -> Option<Vec<f32>> {
        let t = super::split(kind, params);
        let mut out = vec![0f32; kind.classes()];
        match *kind {
            ModelKind::Logistic { .. } => linear(x, t[0], t[1], &mut out),
            ModelKind::Mlp { hidden, .. } => {
                let mut h = vec![0f32; hidden];
                linear(x, t[0], t[1], &mut h);
                h.iter_mut().for_each(|v| *v = v.max(0.0));
                linear(&h, t[2], t[3], &mut out);
            }
            ModelKind::Cnn { side, c1, c2, .. } => {
                let g = crate::arch::CnnGeometry::new(side);
                let m1 = relu_pool(&conv(x, 1, side, t[0], t[1], c1), c1, g.conv1);
                let m2 = relu_pool(&conv(&m1, c1, g.pool1, t[2], t[3], c2), c2, g.conv2);
                linear(&m2, t[4], t[5], &mut out);
            }
            ModelKind::CharLstm { .. } => return None,
        }
        Some(out)
    }

    /// The 5×5 patches of every valid position of each `[ch][side][side]` map in `maps`, each
    /// laid out `[ch][ky][kx]` as a convolution row's weights are.
    pub(crate) fn patches<'a>(
        maps: impl Iterator<Item = &'a [f32]>,
        ch: usize,
        side: usize,
    ) -> Vec<Vec<f32>> {
        let k = KERNEL;
        let n = side - (k - 1);
        let mut out = Vec::new();
        for m in maps {
            for y in 0..n {
                for x in 0..n {
                    let mut p = Vec::with_capacity(ch * k * k);
                    for c in 0..ch {
                        for ky in 0..k {
                            let at = (c * side + y + ky) * side + x;
                            p.extend_from_slice(&m[at..at + k]);
                        }
                    }
                    out.push(p);
                }
            }
        }
        out
    }

    /// ReLU then 2×2 max pooling (stride 2, floor) of `[ch][side][side]`.
    pub(crate) fn relu_pool(x: &[f32], ch: usize, side: usize) -> Vec<f32> {
        let p = side / 2;
        let mut out = vec![0f32; ch * p * p];
        for c in 0..ch {
            for y in 0..p {
                for xx in 0..p {
                    let at = |dy: usize, dx: usize| x[(c * side + 2 * y + dy) * side + 2 * xx + dx];
                    let m = at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1));
                    out[(c * p + y) * p + xx] = m.max(0.0);
                }
            }
        }
        out
    }
}

mod feedback;
#[cfg(test)]
mod tests;
