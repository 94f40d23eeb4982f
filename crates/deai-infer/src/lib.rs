//! Deterministic integer-only inference of the models deai trains: same bytes in, same bytes out on every machine.
//!
//! A provider serves a quantized model, a client checks a receipt, a validator re-executes a
//! disputed query: all three run [`infer`] on the same model blob and input bytes and must get
//! the same output bytes. So the engine uses integers only (int8 weights and activations, `i32`
//! accumulators, fixed-point requantization, lookup tables for σ and tanh), every rounding is
//! specified, and the decoders of outside bytes ([`QuantModel::decode`], [`decode_input`],
//! [`Output::from_bytes`]) never panic.
//!
//! Modules: [`arch`] (architectures and bounds), [`model`] (the checked integer model),
//! [`format`](mod@format) (the blob), [`input`] / [`output`] (query bytes), [`engine`] (execution),
//! [`fixed`] (fixed-point arithmetic), [`features`] (float samples → input bytes); with feature
//! `quantize`, `quantize` (float model → blob); with feature `bench`, `bench` (accuracy and
//! throughput against burn).
//!
//! ```
//! use deai_infer::{Arch, QuantModel, decode_input, infer};
//!
//! let model = QuantModel::seeded(Arch::Mlp { inputs: 64, hidden: 32, classes: 10 }, 1);
//! let blob = model.encode();
//! let model = QuantModel::decode(&blob)?; // outside bytes: checked, never panics
//! let input = decode_input(&model, &[7u8; 64])?;
//! let out = infer(&model, &input);
//! assert_eq!(out.logits.len(), 10);
//! assert_eq!(deai_infer::Output::from_bytes(&out.to_bytes())?, out);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Model blob (`deai-qm1`)
//!
//! All integers little-endian; no padding; nothing after the last field.
//!
//! | field | bytes |
//! |---|---|
//! | magic `deai-qm1` | 8 |
//! | kind: 1 logistic, 2 mlp, 3 cnn, 4 lstm | 1 |
//! | dims, `u32` each: logistic `inputs, classes`; mlp `inputs, hidden, classes`; cnn `side, c1, c2, classes`; lstm `seq, vocab, embed, hidden` | 4 per dim |
//! | image kinds: `input_max: u8` (≥ 1) | 1 |
//! | layers, in order: logistic `fc`; mlp `fc1, fc2`; cnn `conv1, conv2, fc`; lstm `input_proj, recurrent, sigmoid, tanh, fc` | … |
//!
//! A **dense layer** of `rows × cols` is `weights: rows·cols × i8` (row-major `[row][col]`),
//! `bias: rows × i32`, `mult: rows × i32`, `shift: rows × u8`. Shapes: logistic `fc`
//! classes × inputs; mlp `fc1` hidden × inputs, `fc2` classes × hidden; cnn `conv1` c1 × 25,
//! `conv2` c2 × (c1·25) with columns in `[in_channel][ky][kx]` order, `fc` classes × (c2·s·s)
//! with columns in `[channel][y][x]` order (`s` the side after the second pooling); lstm
//! `recurrent` 4·hidden × hidden (row blocks i, f, g, o), `fc` vocab × hidden. The lstm's
//! `input_proj` is vocab × 4·hidden `i32` (Q8), `sigmoid` and `tanh` are 4096 `i16` each (Q15).
//!
//! The decoder checks: magic, kind, every dimension in `1..=`[`arch::DIM_MAX`] (cnn side
//! 16..=1024, lstm `seq ≤ 4096`, `vocab ≤ 256`), total size ≤ [`arch::PARAMS_MAX`], exact
//! length, `0 ≤ mult`, `shift ≤ 62`, table ranges (σ in 0..=32767, tanh in ±32767), and the
//! **accumulator bound** `Σ|w|·x_max + |bias| ≤ i32::MAX` per row, with `x_max` = `input_max`
//! for a first layer, 255 after a ReLU, 127 for the lstm's hidden state. [`QuantModel::hash`]
//! is BLAKE3 of the blob; encoding is canonical.
//!
//! # Input bytes
//!
//! Image kinds (logistic, mlp, cnn): one byte per feature (pixels row-major), each
//! `q ≤ input_max`, standing for `q / input_max` (digits: the raw 0..=16 values with
//! `input_max` 16; Fashion-MNIST: raw 0..=255 pixels). Character model: `seq` ids, each
//! `< vocab`. [`features::input_from_features`] converts deai-learn samples.
//!
//! # Arithmetic
//!
//! Zero points are 0 everywhere (symmetric quantization): layer inputs are `u8` (image bytes,
//! post-ReLU activations) or `i8` (lstm hidden state), weights `i8`. A row's accumulator is
//! `bias + Σ w·x` in `i32`. Requantization is `round(acc · mult / 2^shift)` computed in `i64`,
//! rounding **half away from zero** ([`fixed::shift_round`]). Then:
//! - hidden layers: clamp to `0..=255` (ReLU and saturation in one);
//! - cnn: 5×5 valid convolution, stride 1 → requantize → clamp → 2×2 max pool, stride 2,
//!   floor (odd last rows and columns dropped);
//! - logits: clamp to `i32`; all classes share one scale, so the class is the first argmax;
//! - lstm, per step `t` with id `x_t` and gate row `r`: `z_r = input_proj[x_t][r] +
//!   requant(recurrent_r · h)` (Q8), `T(z) = table[clamp(z, −2048, 2047) + 2048]`;
//!   `i, f, o = σ(z)`, `g = tanh(z)` (Q15); `c ← clamp(rnd(f·c / 2^15) + rnd(i·g / 2^15), ±2^30)`
//!   (Q15); `h ← clamp(rnd(rnd(o · tanh(rnd(c / 2^7)) / 2^15) / 2^8), ±127)` (units of 1/128);
//!   `h` and `c` start at 0; the logits read the last `h`.
//!
//! # Output bytes
//!
//! `class: u32 | count: u32 | count × i32 logits` ([`Output::to_bytes`]).

pub mod arch;
pub mod engine;
pub mod features;
pub mod fixed;
pub mod format;
pub mod input;
mod kernel;
pub mod model;
pub mod output;
#[cfg(feature = "quantize")]
pub mod quantize;

#[cfg(feature = "bench")]
pub mod bench;

pub use arch::Arch;
pub use engine::{infer, infer_batch, infer_bytes};
pub use format::DecodeError;
pub use input::{Input, InputError, decode_input};
pub use model::{InputShape, ModelError, QuantModel};
pub use output::Output;
#[cfg(feature = "quantize")]
pub use quantize::{QuantizeConfig, QuantizeError, quantize, quantize_with};
