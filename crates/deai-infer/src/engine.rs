//! The integer engine: one query's input bytes → output logits, bit-exact everywhere.
//!
//! **No floating point in this module** (a test greps it): only `i8`/`u8` values, `i32`
//! accumulators, `i64` requantization products and table lookups. Accumulation uses wrapping
//! adds so the optimiser can vectorise the inner loops (release builds keep overflow checks on);
//! `QuantModel::new`'s accumulator bound guarantees they never actually wrap, so the result is
//! the exact integer sum. Nothing depends on thread count, SIMD width or summation order.
//!
//! The layer semantics are specified in the crate docs; the helpers below follow them.

use rayon::prelude::*;

use crate::arch::KERNEL;
use crate::fixed::{Requant, clamp_i32, shift_round};
use crate::input::{Input, InputError, decode_input};
use crate::kernel::gemv;
use crate::model::{ACT_MAX, Dense, HIDDEN_MAX, LUT_LEN, LUT_ZERO, Lstm, Net, QuantModel};
use crate::output::Output;

/// Runs one query.
///
/// Panics if `input` was decoded for a model with another input shape: that is a caller bug,
/// not bad outside input (use [`infer_bytes`] for unchecked bytes).
pub fn infer(model: &QuantModel, input: &Input) -> Output {
    assert_eq!(
        input.shape(),
        model.input_shape(),
        "input was decoded for a model of another input shape"
    );
    let x = input.as_bytes();
    let logits = match model.net() {
        Net::Logistic { fc } => logits(fc, x),
        Net::Mlp { fc1, fc2 } => {
            let mut hidden = vec![0u8; fc1.rows];
            relu(fc1, x, &mut hidden);
            logits(fc2, &hidden)
        }
        Net::Cnn { conv1, conv2, fc } => cnn(model, conv1, conv2, fc, x),
        Net::CharLstm { lstm: cell, fc } => logits(fc, &lstm(cell, x)),
    };
    Output::from_logits(logits)
}

/// Checks `bytes` against the model and runs the query.
pub fn infer_bytes(model: &QuantModel, bytes: &[u8]) -> Result<Output, InputError> {
    Ok(infer(model, &decode_input(model, bytes)?))
}

/// Runs many queries on the rayon pool; the outputs are in input order and identical to
/// calling [`infer`] on each (queries share nothing).
pub fn infer_batch(model: &QuantModel, inputs: &[Input]) -> Vec<Output> {
    // Small models answer in microseconds: hand threads runs of queries, not single ones.
    let min_len = (BATCH_OPS / model.ops().max(1)).max(1) as usize;
    inputs
        .par_iter()
        .with_min_len(min_len)
        .map(|x| infer(model, x))
        .collect()
}

/// Work (in [`QuantModel::ops`]) worth one rayon task.
const BATCH_OPS: u64 = 1 << 20;

/// Every row's accumulator, `bias + Σ w·x`, into `acc`.
#[inline]
fn accumulate<X: Copy + Into<i32>>(d: &Dense, x: &[X], acc: &mut [i32]) {
    acc.copy_from_slice(&d.bias);
    gemv(&d.pairs, x, acc);
}

/// Requantize and ReLU into `u8`: `clamp(round(acc · M), 0, 255)`.
#[inline]
fn relu_u8(acc: i32, q: Requant) -> u8 {
    // Clamped into 0..=255 first, so the narrowing is exact.
    clamp_i32(q.apply(acc), 0, ACT_MAX) as u8
}

/// A hidden fully connected layer with ReLU.
fn relu<X: Copy + Into<i32>>(d: &Dense, x: &[X], out: &mut [u8]) {
    let mut acc = vec![0i32; d.rows];
    accumulate(d, x, &mut acc);
    for ((o, &a), &q) in out.iter_mut().zip(&acc).zip(&d.requant) {
        *o = relu_u8(a, q);
    }
}

/// The last layer: requantized to the common logit scale, saturated to `i32`.
fn logits<X: Copy + Into<i32>>(d: &Dense, x: &[X]) -> Vec<i32> {
    let mut acc = vec![0i32; d.rows];
    accumulate(d, x, &mut acc);
    acc.iter()
        .zip(&d.requant)
        .map(|(&a, q)| clamp_i32(q.apply(a), i32::MIN, i32::MAX))
        .collect()
}

fn cnn(model: &QuantModel, conv1: &Dense, conv2: &Dense, fc: &Dense, x: &[u8]) -> Vec<i32> {
    let Some(g) = model.arch().cnn_geometry() else {
        unreachable!("a Net::Cnn model has a Cnn architecture");
    };
    let mut patches = Vec::new();
    let mut acc = Vec::new();
    let mut map1 = vec![0u8; conv1.rows * g.pool1 * g.pool1];
    conv_relu_pool(conv1, x, g.side, g.pool1, &mut patches, &mut acc, &mut map1);
    let mut map2 = vec![0u8; conv2.rows * g.pool2 * g.pool2];
    conv_relu_pool(
        conv2,
        &map1,
        g.pool1,
        g.pool2,
        &mut patches,
        &mut acc,
        &mut map2,
    );
    logits(fc, &map2)
}

/// A 5×5 valid convolution (stride 1) → requantize → ReLU → 2×2 max pool (stride 2, floor).
///
/// `input` is `[channel][y][x]` with sides `side`; `out` is `[channel][y][x]` with sides
/// `pooled`. Only the convolution outputs a pooling window covers are computed. Pooling runs on
/// the accumulators before requantizing: requantize-and-clamp is monotone (multipliers are
/// non-negative), so `max(q(a), q(b)) = q(max(a, b))` and the result is the specified one.
fn conv_relu_pool(
    layer: &Dense,
    input: &[u8],
    side: usize,
    pooled: usize,
    patches: &mut Vec<u8>,
    acc: &mut Vec<i32>,
    out: &mut [u8],
) {
    let k = KERNEL;
    let channels = layer.cols / (k * k);
    let used = 2 * pooled;
    // im2col: one contiguous patch per output position, in the weights' [c][ky][kx] order.
    patches.clear();
    patches.reserve(used * used * layer.cols);
    for y in 0..used {
        for x in 0..used {
            for c in 0..channels {
                let plane = &input[c * side * side..(c + 1) * side * side];
                for ky in 0..k {
                    let row = (y + ky) * side + x;
                    patches.extend_from_slice(&plane[row..row + k]);
                }
            }
        }
    }
    acc.clear();
    acc.resize(layer.rows * used * used, 0);
    let mut column = vec![0i32; layer.rows];
    for (p, patch) in patches.chunks_exact(layer.cols).enumerate() {
        accumulate(layer, patch, &mut column);
        for (o, &a) in column.iter().enumerate() {
            acc[o * used * used + p] = a;
        }
    }
    for o in 0..layer.rows {
        let map = &acc[o * used * used..(o + 1) * used * used];
        for py in 0..pooled {
            for px in 0..pooled {
                let at = |dy: usize, dx: usize| map[(2 * py + dy) * used + 2 * px + dx];
                let best = at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1));
                out[(o * pooled + py) * pooled + px] = relu_u8(best, layer.requant[o]);
            }
        }
    }
}

/// Table index of a Q8 value, saturating at the table's ends.
#[inline]
fn lut_index(q8: i64) -> usize {
    // Clamped into 0..LUT_LEN, so the conversion is exact.
    (q8 + LUT_ZERO).clamp(0, LUT_LEN as i64 - 1) as usize
}

/// Largest magnitude of the Q15 cell state; keeps every product below in `i64` range whatever
/// the sequence length.
const CELL_MAX: i64 = 1 << 30;

/// The LSTM over the input ids; returns the last hidden state (`i8`, units of 1/128).
fn lstm(cell: &Lstm, ids: &[u8]) -> Vec<i8> {
    let hidden = cell.recurrent.cols;
    let gates = cell.recurrent.rows;
    let mut h = vec![0i8; hidden];
    let mut c = vec![0i64; hidden];
    let mut z = vec![0usize; gates];
    let mut acc = vec![0i32; gates];
    for &id in ids {
        // Ids are checked against the vocabulary by `decode_input`.
        let proj = &cell.input_proj[usize::from(id) * gates..(usize::from(id) + 1) * gates];
        accumulate(&cell.recurrent, &h, &mut acc);
        for (r, zr) in z.iter_mut().enumerate() {
            let recurrent = cell.recurrent.requant[r].apply(acc[r]);
            *zr = lut_index(i64::from(proj[r]) + recurrent);
        }
        for j in 0..hidden {
            let sig = |k: usize| i64::from(cell.sigmoid[z[k * hidden + j]]);
            let (i, f, o) = (sig(0), sig(1), sig(3));
            let g = i64::from(cell.tanh[z[2 * hidden + j]]);
            c[j] = (shift_round(f * c[j], 15) + shift_round(i * g, 15)).clamp(-CELL_MAX, CELL_MAX);
            let tc = i64::from(cell.tanh[lut_index(shift_round(c[j], 7))]);
            let h15 = shift_round(o * tc, 15);
            let hq = shift_round(h15, 8).clamp(-i64::from(HIDDEN_MAX), i64::from(HIDDEN_MAX));
            // Clamped into ±127 above.
            h[j] = hq as i8;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;

    fn archs() -> [Arch; 4] {
        [
            Arch::Logistic {
                inputs: 64,
                classes: 10,
            },
            Arch::Mlp {
                inputs: 64,
                hidden: 32,
                classes: 10,
            },
            Arch::Cnn {
                side: 20,
                c1: 4,
                c2: 6,
                classes: 10,
            },
            Arch::CharLstm {
                seq: 12,
                vocab: 30,
                embed: 5,
                hidden: 16,
            },
        ]
    }

    /// Any change to the arithmetic (rounding, order of requantization, table indexing, the
    /// kernel) changes these hashes: they caught an odd-column bug in the pair kernel. An
    /// intended change is a new format version.
    #[test]
    fn golden_outputs() {
        let golden = [
            "e12559e8f38bea1a79e91441d51a36bae06b56318dee5283e8fcad4c9cd3a3a6",
            "69189550a77a212345c46b7702e4e15bbbfff11afc724feadfc82a63d824a5a0",
            "c7eb435c80f609b1412eeee97eb48f3e1ba8feaf5e3d806d9ae6a8568e3a82c4",
            "f1a7784070e6faadaf97b7fd2ed8db66a237211abb15c6b821a841822fa8df63",
        ];
        let mut classes = std::collections::BTreeSet::new();
        for (i, arch) in archs().into_iter().enumerate() {
            let m = QuantModel::seeded(arch, 42 + i as u64);
            let mut h = blake3::Hasher::new();
            for s in 0..8 {
                let out = infer(&m, &Input::seeded(&m, s));
                h.update(&out.to_bytes());
                classes.insert(out.class);
            }
            assert_eq!(h.finalize().to_hex().as_str(), golden[i], "{}", arch.name());
        }
        assert!(
            classes.len() > 3,
            "outputs vary with the input: {classes:?}"
        );
    }

    #[test]
    fn no_float_on_the_verified_path() {
        let sources = [
            include_str!("engine.rs"),
            include_str!("fixed.rs"),
            include_str!("model.rs"),
            include_str!("format.rs"),
            include_str!("input.rs"),
            include_str!("output.rs"),
            include_str!("arch.rs"),
            include_str!("kernel.rs"),
        ];
        let (a, b) = ("f3", "f6");
        for (i, src) in sources.iter().enumerate() {
            let code = src.split("#[cfg(test)]").next().unwrap_or(src);
            for ty in [format!("{a}2"), format!("{b}4")] {
                let hits = code
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .filter(|l| l.contains(&ty))
                    .count();
                assert_eq!(hits, 0, "source {i} uses {ty} on {hits} lines");
            }
        }
    }

    #[test]
    fn batch_matches_sequential_at_any_thread_count() {
        for (i, arch) in archs().into_iter().enumerate() {
            let m = QuantModel::seeded(arch, 7 + i as u64);
            let inputs: Vec<Input> = (0..37).map(|s| Input::seeded(&m, s)).collect();
            let sequential: Vec<Output> = inputs.iter().map(|x| infer(&m, x)).collect();
            for threads in [1, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("pool");
                assert_eq!(pool.install(|| infer_batch(&m, &inputs)), sequential);
            }
        }
    }

    #[test]
    fn bytes_are_checked_before_running() {
        let m = QuantModel::seeded(archs()[0], 1);
        assert!(infer_bytes(&m, &[0; 63]).is_err());
        assert!(infer_bytes(&m, &[255; 64]).is_ok());
    }

    #[test]
    #[should_panic(expected = "another input shape")]
    fn an_input_for_another_shape_is_a_caller_bug() {
        let image = QuantModel::seeded(archs()[0], 1);
        let chars = QuantModel::seeded(archs()[3], 1);
        let _ = infer(&image, &Input::seeded(&chars, 0));
    }
}
