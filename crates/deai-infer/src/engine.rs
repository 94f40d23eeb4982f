//! The integer engine: query input bytes → output logits, bit-exact everywhere.
//!
//! **No floating point in this module** (a test greps it): only `i8`/`u8` values, `i32`
//! accumulators, `i64` requantization products and table lookups. Accumulation uses wrapping
//! adds so the inner loops vectorise (release builds keep overflow checks on);
//! `QuantModel::new`'s accumulator bound guarantees they never actually wrap, so the result is
//! the exact integer sum. Nothing depends on thread count, SIMD width, tile size or summation
//! order.
//!
//! Queries run in tiles of up to [`TILE`]: each dense layer's weights are read once per tile
//! (see [`crate::kernel`]), and a CNN's convolutions are matrix products over output positions
//! in the same tiles. [`infer`] is a tile of one.
//!
//! The layer semantics are specified in the crate docs; the helpers below follow them.

use rayon::prelude::*;

use crate::arch::KERNEL;
use crate::fixed::{clamp_i32, shift_round};
use crate::input::{Input, InputError, decode_input};
use crate::kernel::vnni::{self, Quad};
use crate::kernel::{Pair, TILE, gemm, interleave_rows, interleave_runs, scratch, tile_len};
use crate::model::{Dense, HIDDEN_MAX, KERNEL_ROW_PAIRS, LUT_LEN, LUT_ZERO, Lstm, Net, QuantModel};
use crate::output::Output;

/// Runs one query.
///
/// Panics if `input` was decoded for a model with another input shape: that is a caller bug,
/// not bad outside input (use [`infer_bytes`] for unchecked bytes).
pub fn infer(model: &QuantModel, input: &Input) -> Output {
    let mut out = Vec::with_capacity(1);
    run(
        model,
        std::slice::from_ref(input),
        &mut Work::default(),
        &mut out,
    );
    out.pop().expect("one output per input")
}

/// Checks `bytes` against the model and runs the query.
pub fn infer_bytes(model: &QuantModel, bytes: &[u8]) -> Result<Output, InputError> {
    Ok(infer(model, &decode_input(model, bytes)?))
}

/// Runs many queries on the rayon pool; the outputs are in input order and identical to
/// calling [`infer`] on each (the arithmetic is exact, so neither the tile a query lands in nor
/// the thread that runs it changes a bit).
///
/// Panics like [`infer`] if an input was decoded for another input shape.
pub fn infer_batch(model: &QuantModel, inputs: &[Input]) -> Vec<Output> {
    // Small models answer in microseconds: hand threads runs of tiles, not single ones.
    let min_tiles = (BATCH_OPS / model.ops().max(1))
        .max(1)
        .div_ceil(TILE as u64) as usize;
    inputs
        .par_chunks(TILE)
        .with_min_len(min_tiles)
        .map_init(Work::default, |work, tile| {
            let mut out = Vec::with_capacity(tile.len());
            run(model, tile, work, &mut out);
            out
        })
        .flatten_iter()
        .collect()
}

/// Work (in [`QuantModel::ops`]) worth one rayon task.
const BATCH_OPS: u64 = 1 << 20;

/// Buffers reused from tile to tile.
#[derive(Default)]
struct Work {
    /// The current layer's input for the kernel.
    x: KernelInput,
    /// The current layer's accumulators, `[input][row]`.
    acc: Vec<i32>,
    /// A tile's hidden activations, `[input][unit]`.
    hidden: Vec<u8>,
    /// The LSTM's state.
    lstm: LstmWork,
    /// The CNN's pooled feature maps.
    maps: [Vec<u8>; 2],
    conv: ConvWork,
}

/// A layer's input laid out for one of the kernels.
#[derive(Default)]
struct KernelInput {
    /// `[pair][input]`.
    pairs: Vec<Pair>,
    /// `[quad][input]`.
    quads: Vec<Quad>,
}

/// Runs `inputs` tile by tile, appending to `out`: the dense layers walk their weights once per
/// tile of up to [`TILE`] queries; a CNN query is a tile of its own (its convolutions tile over
/// positions).
fn run(model: &QuantModel, inputs: &[Input], work: &mut Work, out: &mut Vec<Output>) {
    for x in inputs {
        assert_eq!(
            x.shape(),
            model.input_shape(),
            "input was decoded for a model of another input shape"
        );
    }
    let Work {
        x: kx,
        acc,
        hidden,
        lstm: lstm_work,
        maps: [map1, map2],
        conv,
    } = work;
    let mut rest = inputs;
    while !rest.is_empty() {
        let (tile, more) = rest.split_at(tile_len(rest.len()));
        rest = more;
        let n = tile.len();
        let mut bytes = [&[][..]; TILE];
        for (b, x) in bytes.iter_mut().zip(tile) {
            *b = x.as_bytes();
        }
        let bytes = &bytes[..n];
        match model.net() {
            Net::Logistic { fc } => {
                let acc = dense_bytes(fc, bytes, kx, acc);
                logits(fc, acc, out);
            }
            Net::Mlp { fc1, fc2 } => {
                let acc1 = dense_bytes(fc1, bytes, kx, acc);
                let h = relu(fc1, acc1, hidden);
                let acc2 = dense_bytes(fc2, &rows(h, fc1.rows)[..n], kx, acc);
                logits(fc2, acc2, out);
            }
            Net::Cnn { conv1, conv2, fc } => {
                let Some(g) = model.arch().cnn_geometry() else {
                    unreachable!("a Net::Cnn model has a Cnn architecture");
                };
                for x in bytes {
                    conv_relu_pool(conv1, x, g.side, g.pool1, &mut kx.pairs, conv, map1);
                    conv_relu_pool(conv2, map1, g.pool1, g.pool2, &mut kx.pairs, conv, map2);
                    let acc = dense_bytes(fc, &[&map2[..]], kx, acc);
                    logits(fc, acc, out);
                }
            }
            Net::CharLstm { lstm: cell, fc } => {
                let h = lstm(cell, tile, kx, acc, lstm_work);
                let acc = dense(fc, &rows(h, fc.cols)[..n], &mut kx.pairs, acc);
                logits(fc, acc, out);
            }
        }
    }
}

/// A tile's `[input][unit]` values as one row per input.
fn rows<X>(values: &[X], width: usize) -> [&[X]; TILE] {
    let mut rows = [&[][..]; TILE];
    for (r, v) in rows.iter_mut().zip(values.chunks_exact(width)) {
        *r = v;
    }
    rows
}

/// `bias + Σ w·x` of every row of `d` for a tile of byte inputs (`[input][row]`): a full tile
/// through [`vnni`] where the layer has its layout, else through the pair kernel.
fn dense_bytes<'a>(
    d: &Dense,
    inputs: &[&[u8]],
    x: &mut KernelInput,
    acc: &'a mut Vec<i32>,
) -> &'a [i32] {
    match (d.packed.quads(), <&[&[u8]; TILE]>::try_from(inputs)) {
        (Some(quads), Ok(tile)) => {
            let xs = vnni::interleave(&mut x.quads, tile, quads.quads());
            let acc = scratch(acc, TILE * d.rows);
            vnni::gemm(quads, d.packed.bias(), xs, acc);
            acc
        }
        _ => dense(d, inputs, &mut x.pairs, acc),
    }
}

/// `bias + Σ w·x` of every row of `d` for a tile of inputs through the pair kernel
/// (`[input][row]`).
fn dense<'a, X: Copy + Into<i16>>(
    d: &Dense,
    inputs: &[&[X]],
    xs: &mut Vec<Pair>,
    acc: &'a mut Vec<i32>,
) -> &'a [i32] {
    let n = inputs.len();
    let xs = interleave_rows(xs, inputs, d.packed.pairs());
    let acc = scratch(acc, n * d.rows);
    gemm(&d.packed, xs, n, acc);
    acc
}

/// Requantize-and-ReLU of a hidden layer's accumulators, `[input][row]` into the same layout.
fn relu<'a>(d: &Dense, acc: &[i32], buf: &'a mut Vec<u8>) -> &'a [u8] {
    let out = scratch(buf, acc.len());
    for (h, a) in out.chunks_exact_mut(d.rows).zip(acc.chunks_exact(d.rows)) {
        d.relu.apply(a, h);
    }
    out
}

/// The last layer of each input in `acc` (`[input][row]`): requantized to the common logit
/// scale, saturated to `i32`.
fn logits(d: &Dense, acc: &[i32], out: &mut Vec<Output>) {
    for row in acc.chunks_exact(d.rows) {
        let logits = row
            .iter()
            .zip(&d.requant)
            .map(|(&a, q)| clamp_i32(q.apply(a), i32::MIN, i32::MAX))
            .collect();
        out.push(Output::from_logits(logits));
    }
}

/// Buffers of the convolutions.
#[derive(Default)]
struct ConvWork {
    /// The layer input as `(pixel, right neighbour)` pairs, `[channel][y][x]`.
    pairs: Vec<Pair>,
    /// Where each weight pair's pixel pair sits relative to a patch's top-left corner.
    offsets: Vec<usize>,
    /// Accumulators of the convolution outputs the pooling uses, `[y][x][channel]`.
    acc: Vec<i32>,
    /// One pooling window's maxima and their requantized values.
    best: Vec<i32>,
    relu: Vec<u8>,
}

/// A 5×5 valid convolution (stride 1) → requantize → ReLU → 2×2 max pool (stride 2, floor).
///
/// `input` is `[channel][y][x]` with sides `side`; `out` is `[channel][y][x]` with sides
/// `pooled`. Only the convolution outputs a pooling window covers are computed, as a matrix
/// product over output positions in tiles: im2col goes straight into the kernel's input, and
/// with the weights paired within kernel rows (`Dense::prepare_conv`) a weight pair's inputs for
/// a tile are one run of a pair image. Pooling runs on the accumulators before requantizing:
/// requantize-and-clamp is monotone (multipliers are non-negative), so
/// `max(q(a), q(b)) = q(max(a, b))` and the result is the specified one.
fn conv_relu_pool(
    layer: &Dense,
    input: &[u8],
    side: usize,
    pooled: usize,
    xs: &mut Vec<Pair>,
    conv: &mut ConvWork,
    out: &mut Vec<u8>,
) {
    let image = scratch(&mut conv.pairs, input.len());
    for (pairs, row) in image.chunks_exact_mut(side).zip(input.chunks_exact(side)) {
        for (pair, x) in pairs.iter_mut().zip(row.windows(2)) {
            *pair = [x[0].into(), x[1].into()];
        }
        // The last pixel has no right neighbour (its weight is the padding zero).
        if let (Some(pair), Some(&x)) = (pairs.last_mut(), row.last()) {
            *pair = [x.into(), 0];
        }
    }
    // Pair index p is [in_channel][ky][j], matching `Dense::prepare_conv`.
    let plane = side * side;
    let per_channel = KERNEL * KERNEL_ROW_PAIRS;
    conv.offsets.clear();
    conv.offsets.extend((0..layer.packed.pairs()).map(|p| {
        let (c, ky, j) = (
            p / per_channel,
            p % per_channel / KERNEL_ROW_PAIRS,
            p % KERNEL_ROW_PAIRS,
        );
        c * plane + ky * side + 2 * j
    }));
    let rows = layer.rows;
    let used = 2 * pooled;
    let conv_acc = scratch(&mut conv.acc, used * used * rows);
    // Tiles run along one output row, so a weight pair's pixel pairs are consecutive.
    for y in 0..used {
        let mut x = 0;
        while x < used {
            let n = tile_len(used - x);
            let corner = y * side + x;
            let (pairs, offsets) = (&conv.pairs, &conv.offsets);
            let tile = interleave_runs(xs, n, offsets.len(), |p| &pairs[offsets[p] + corner..]);
            let first = y * used + x;
            let acc = &mut conv_acc[first * rows..(first + n) * rows];
            gemm(&layer.packed, tile, n, acc);
            x += n;
        }
    }
    out.resize(rows * pooled * pooled, 0);
    let best = scratch(&mut conv.best, rows);
    let relu = scratch(&mut conv.relu, rows);
    for py in 0..pooled {
        for px in 0..pooled {
            let at = |dy: usize, dx: usize| {
                let pos = (2 * py + dy) * used + 2 * px + dx;
                &conv_acc[pos * rows..(pos + 1) * rows]
            };
            let (a, b, c, d) = (at(0, 0), at(0, 1), at(1, 0), at(1, 1));
            let window = a.iter().zip(b).zip(c).zip(d);
            for (best, (((&a, &b), &c), &d)) in best.iter_mut().zip(window) {
                *best = a.max(b).max(c).max(d);
            }
            layer.relu.apply(best, relu);
            let at = py * pooled + px;
            for (map, &v) in out.chunks_exact_mut(pooled * pooled).zip(&*relu) {
                map[at] = v;
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

/// The LSTM's state over a tile.
#[derive(Default)]
struct LstmWork {
    /// Hidden state, `[input][unit]` (units of 1/128).
    h: Vec<i8>,
    /// Cell state (Q15), `[input][unit]`.
    c: Vec<i64>,
    /// One sequence's gate table indices.
    z: Vec<usize>,
}

/// The LSTM over a tile of id sequences in lock step; returns their last hidden states,
/// `[input][unit]`.
fn lstm<'a>(
    cell: &Lstm,
    tile: &[Input],
    x: &mut KernelInput,
    acc: &mut Vec<i32>,
    work: &'a mut LstmWork,
) -> &'a [i8] {
    let hidden = cell.recurrent.cols;
    let gates = cell.recurrent.rows;
    let n = tile.len();
    let LstmWork { h, c, z } = work;
    h.clear();
    h.resize(n * hidden, 0);
    c.clear();
    c.resize(n * hidden, 0);
    z.resize(gates, 0);
    let seq = tile.first().map_or(0, |x| x.as_bytes().len());
    for step in 0..seq {
        let acc = dense(&cell.recurrent, &rows(h, hidden)[..n], &mut x.pairs, acc);
        let states = h.chunks_exact_mut(hidden).zip(c.chunks_exact_mut(hidden));
        for ((x, acc), (h, c)) in tile.iter().zip(acc.chunks_exact(gates)).zip(states) {
            // Ids are checked against the vocabulary by `decode_input`.
            let id = usize::from(x.as_bytes()[step]);
            let proj = &cell.input_proj[id * gates..(id + 1) * gates];
            let gate = acc.iter().zip(proj).zip(&cell.recurrent.requant);
            for (zr, ((&a, &p), q)) in z.iter_mut().zip(gate) {
                *zr = lut_index(i64::from(p) + q.apply(a));
            }
            lstm_units(cell, z, h, c);
        }
    }
    h
}

/// One step of one sequence's cell and hidden state, from its gates' table indices `z`.
fn lstm_units(cell: &Lstm, z: &[usize], h: &mut [i8], c: &mut [i64]) {
    let hidden = h.len();
    for (j, (h, c)) in h.iter_mut().zip(c.iter_mut()).enumerate() {
        let sig = |k: usize| i64::from(cell.sigmoid[z[k * hidden + j]]);
        let (i, f, o) = (sig(0), sig(1), sig(3));
        let g = i64::from(cell.tanh[z[2 * hidden + j]]);
        *c = (shift_round(f * *c, 15) + shift_round(i * g, 15)).clamp(-CELL_MAX, CELL_MAX);
        let tc = i64::from(cell.tanh[lut_index(shift_round(*c, 7))]);
        let h15 = shift_round(o * tc, 15);
        let hq = shift_round(h15, 8).clamp(-i64::from(HIDDEN_MAX), i64::from(HIDDEN_MAX));
        // Clamped into ±127 above.
        *h = hq as i8;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

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
            include_str!("kernel/vnni.rs"),
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
            for threads in [1, 4] {
                assert_eq!(
                    pool(threads).install(|| infer_batch(&m, &inputs)),
                    sequential
                );
            }
        }
    }

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool")
    }

    /// Small models of every kind: odd and even widths, row counts that are not whole blocks,
    /// CNN sides whose output rows leave partial tiles.
    fn any_arch() -> impl Strategy<Value = Arch> {
        prop_oneof![
            (1usize..80, 1usize..20)
                .prop_map(|(inputs, classes)| Arch::Logistic { inputs, classes }),
            (1usize..80, 1usize..40, 1usize..20).prop_map(|(inputs, hidden, classes)| {
                Arch::Mlp {
                    inputs,
                    hidden,
                    classes,
                }
            }),
            (16usize..26, 1usize..10, 1usize..10, 1usize..12).prop_map(
                |(side, c1, c2, classes)| Arch::Cnn {
                    side,
                    c1,
                    c2,
                    classes,
                }
            ),
            (1usize..10, 1usize..40, 1usize..4, 1usize..20).prop_map(
                |(seq, vocab, embed, hidden)| Arch::CharLstm {
                    seq,
                    vocab,
                    embed,
                    hidden,
                }
            ),
        ]
    }

    /// The crate docs' arithmetic written out one value at a time, as a reference for the
    /// tiled engine: row-major weights, every convolution output requantized before pooling.
    fn reference(m: &QuantModel, x: &[u8]) -> Vec<i32> {
        let dense = |d: &Dense, x: &[i32]| -> Vec<i32> {
            let dot = |r: usize| d.row(r).iter().zip(x).map(|(&w, &x)| i32::from(w) * x);
            (0..d.rows)
                .map(|r| d.bias[r] + dot(r).sum::<i32>())
                .collect()
        };
        let relu = |d: &Dense, r: usize, a: i32| clamp_i32(d.requant[r].apply(a), 0, 255);
        let logits = |d: &Dense, x: &[i32]| -> Vec<i32> {
            let acc = dense(d, x).into_iter().zip(&d.requant);
            acc.map(|(a, q)| clamp_i32(q.apply(a), i32::MIN, i32::MAX))
                .collect()
        };
        let conv_pool = |d: &Dense, x: &[i32], side: usize, pooled: usize| -> Vec<i32> {
            let k = KERNEL;
            let at = |o: usize, y: usize, xx: usize| {
                let mut acc = d.bias[o];
                for c in 0..d.cols / (k * k) {
                    for ky in 0..k {
                        for kx in 0..k {
                            let w = i32::from(d.row(o)[(c * k + ky) * k + kx]);
                            acc += w * x[(c * side + y + ky) * side + xx + kx];
                        }
                    }
                }
                relu(d, o, acc)
            };
            let mut out = Vec::new();
            for o in 0..d.rows {
                for py in 0..pooled {
                    for px in 0..pooled {
                        let window = [(0, 0), (0, 1), (1, 0), (1, 1)];
                        let values = window.map(|(dy, dx)| at(o, 2 * py + dy, 2 * px + dx));
                        out.push(values.into_iter().max().unwrap_or(0));
                    }
                }
            }
            out
        };
        let x: Vec<i32> = x.iter().map(|&b| i32::from(b)).collect();
        match m.net() {
            Net::Logistic { fc } => logits(fc, &x),
            Net::Mlp { fc1, fc2 } => {
                let acc = dense(fc1, &x).into_iter().enumerate();
                let h: Vec<i32> = acc.map(|(r, a)| relu(fc1, r, a)).collect();
                logits(fc2, &h)
            }
            Net::Cnn { conv1, conv2, fc } => {
                let g = m.arch().cnn_geometry().expect("a cnn");
                let map1 = conv_pool(conv1, &x, g.side, g.pool1);
                logits(fc, &conv_pool(conv2, &map1, g.pool1, g.pool2))
            }
            Net::CharLstm { lstm, fc } => {
                let hidden = lstm.recurrent.cols;
                let (mut h, mut c) = (vec![0i32; hidden], vec![0i64; hidden]);
                for &id in &x {
                    let gates = lstm.recurrent.rows;
                    let proj = &lstm.input_proj[id as usize * gates..][..gates];
                    let z: Vec<usize> = dense(&lstm.recurrent, &h)
                        .into_iter()
                        .enumerate()
                        .map(|(r, a)| {
                            lut_index(i64::from(proj[r]) + lstm.recurrent.requant[r].apply(a))
                        })
                        .collect();
                    let mut h8 = vec![0i8; hidden];
                    lstm_units(lstm, &z, &mut h8, &mut c);
                    h = h8.iter().map(|&v| i32::from(v)).collect();
                }
                logits(fc, &h)
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The tiled engine against the one-value-at-a-time reference, across last rows outside
        /// whole blocks, odd widths, padded kernel-row pairs and partial position tiles.
        #[test]
        fn engine_matches_the_reference(arch in any_arch(), seed in any::<u64>()) {
            let m = QuantModel::seeded(arch, seed);
            for s in 0..3 {
                let x = Input::seeded(&m, seed.wrapping_add(s));
                prop_assert_eq!(infer(&m, &x).logits, reference(&m, x.as_bytes()));
            }
        }

        /// A batch runs in tiles of 8, 4, 2 and 1 queries, split across threads: every output is
        /// still bit for bit the one query's own.
        #[test]
        fn batch_equals_one_query_at_a_time(
            arch in any_arch(),
            seed in any::<u64>(),
            len in 1usize..40,
        ) {
            let m = QuantModel::seeded(arch, seed);
            let inputs: Vec<Input> = (0..len as u64).map(|s| Input::seeded(&m, seed ^ s)).collect();
            let single: Vec<Output> = inputs.iter().map(|x| infer(&m, x)).collect();
            for threads in [1, 4] {
                prop_assert_eq!(&pool(threads).install(|| infer_batch(&m, &inputs)), &single);
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
