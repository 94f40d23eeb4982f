//! The one hot loop: a layer's int8 weights against a tile of up to [`TILE`] inputs at once.
//!
//! **Weights** are packed once, when a model is built ([`Packed`]): a layer's columns are taken
//! in **pairs** (`[i16; 2]`, a zero pads an odd last column), and rows in **blocks** of
//! [`LANES`]; within a block, pair `p` of every row is contiguous (`[p][row]`, one vector). The
//! last `rows % LANES` rows stay row-major. No row is padded, so a packed layer takes two bytes
//! per weight whatever its shape (a CNN's last layer can have millions of columns and a single
//! row), plus a pair's zero per odd row width.
//!
//! **Inputs** come as pairs too, `[pair][input]` for the tile. A block's product with input
//! `t`'s pair `p` is `pmaddwd(block[p], broadcast(x_t[p]))`: `w₀·x₀ + w₁·x₁` for eight rows in
//! one instruction, added to that input's accumulators. A last row goes the other way: its pair
//! `p` broadcast against the tile's pairs `p`, which are contiguous.
//!
//! **Tiling**: each weight load serves every input of the tile (a block's accumulators for the
//! tile, `TILE × LANES` `i32`, stay in registers), so a batch walks the weights once per eight
//! queries, not once per query.
//!
//! On x86-64 with AVX2 the loops are written with `std::arch` intrinsics: LLVM's
//! auto-vectoriser found `pmaddwd` for some tile sizes and not others (falling back to `pmulld`
//! and shuffles, three times slower), and which ones changed with unrelated edits. The
//! intrinsics are safe calls inside `#[target_feature]` functions, so the only `unsafe` is the
//! dispatch. Elsewhere a portable copy of the same arithmetic runs, and the tests check the two
//! agree.
//!
//! Layers whose inputs are bytes also get a `u8 × i8` layout for full tiles on CPUs with VNNI
//! ([`vnni`]; one more byte per weight).
//!
//! Results are exact integers whatever the instruction set and tile size: callers guarantee by
//! the accumulator bound that no sum leaves `i32`, so wrapping adds never wrap, and every
//! product is exact in `i32` (`|w·x| ≤ 128 · 255`). No floating point: verified path.

pub(crate) mod vnni;

/// Rows of a block: eight `i32` accumulators, one AVX2 register.
pub(crate) const LANES: usize = 8;

/// Most inputs one pass over a layer's weights serves.
pub(crate) const TILE: usize = 8;

/// Two neighbouring columns of a weight row, or two neighbouring input values.
pub(crate) type Pair = [i16; 2];

/// Pair `p` of every row of a block.
type Block = [Pair; LANES];

/// A layer's weights and biases in the kernel's layout (see the module docs); derived, not part
/// of a blob.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Packed {
    rows: usize,
    pairs: usize,
    /// The whole blocks, `[block][pair]`.
    blocks: Vec<Block>,
    /// The last `rows % LANES` rows, `[row][pair]`.
    tail: Vec<Pair>,
    bias: Vec<i32>,
    /// The same weights for [`vnni`], where that kernel runs and the inputs are bytes.
    quads: Option<vnni::Quads>,
}

impl Packed {
    /// Packs `bias.len()` rows of `pairs` weight pairs; `pair(r, p)` is row `r`'s pair `p`.
    pub(crate) fn new(pairs: usize, bias: &[i32], pair: impl Fn(usize, usize) -> Pair) -> Self {
        let rows = bias.len();
        let whole = rows / LANES * LANES;
        let mut blocks = Vec::with_capacity(whole / LANES * pairs);
        for first in (0..whole).step_by(LANES) {
            blocks.extend((0..pairs).map(|p| std::array::from_fn(|k| pair(first + k, p))));
        }
        let mut tail = Vec::with_capacity((rows - whole) * pairs);
        for r in whole..rows {
            tail.extend((0..pairs).map(|p| pair(r, p)));
        }
        Self {
            rows,
            pairs,
            blocks,
            tail,
            bias: bias.to_vec(),
            quads: None,
        }
    }

    /// Adds the [`vnni`] layout of the `rows × cols` weights `weight(r, c)`, for a layer whose
    /// inputs are bytes, where this CPU runs that kernel.
    pub(crate) fn with_quads(mut self, cols: usize, weight: impl Fn(usize, usize) -> i8) -> Self {
        if vnni::available() {
            self.quads = Some(vnni::Quads::new(self.rows, cols, weight));
        }
        self
    }

    /// The [`vnni`] layout, if the layer has one.
    pub(crate) fn quads(&self) -> Option<&vnni::Quads> {
        self.quads.as_ref()
    }

    /// One bias per row.
    pub(crate) fn bias(&self) -> &[i32] {
        &self.bias
    }

    /// Column pairs per row: the pairs one input brings.
    pub(crate) fn pairs(&self) -> usize {
        self.pairs
    }

    /// The whole blocks, each with its first row.
    fn blocks(&self) -> impl Iterator<Item = (usize, &[Block])> {
        let blocks = self.blocks.chunks_exact(self.pairs.max(1));
        (0..self.rows).step_by(LANES).zip(blocks)
    }

    /// The rows after the whole blocks, each with its index.
    fn tail(&self) -> impl Iterator<Item = (usize, &[Pair])> {
        let first = self.rows / LANES * LANES;
        (first..self.rows).zip(self.tail.chunks_exact(self.pairs.max(1)))
    }

    /// The biases of the block starting at row `first`.
    fn block_bias(&self, first: usize) -> &[i32; LANES] {
        self.bias[first..first + LANES]
            .try_into()
            .expect("a whole block")
    }
}

/// The largest of 8, 4, 2, 1 that is at most `len` (`len ≥ 1`): how callers cut a batch into
/// tiles.
pub(crate) fn tile_len(len: usize) -> usize {
    match len {
        8.. => 8,
        4..=7 => 4,
        2 | 3 => 2,
        _ => 1,
    }
}

/// Pair `p` of `x` as `i16`s, zero past the end (an odd last column).
#[inline]
pub(crate) fn pair_of<X: Copy + Into<i16>>(x: &[X], p: usize) -> Pair {
    let at = |c: usize| x.get(c).map_or(0, |&v| v.into());
    [at(2 * p), at(2 * p + 1)]
}

/// The first `len` entries of a reusable buffer, growing it if needed. Their contents are
/// whatever an earlier use left: callers overwrite every entry. (Resizing to each use's length
/// instead zero-filled kilobytes per tile whenever two layers of different widths took turns.)
pub(crate) fn scratch<T: Copy + Default>(buf: &mut Vec<T>, len: usize) -> &mut [T] {
    if buf.len() < len {
        buf.resize(len, T::default());
    }
    &mut buf[..len]
}

/// The kernel's input for a tile of dense-layer inputs (each `2 · pairs` or `2 · pairs − 1`
/// values; an odd last value is paired with a zero): `[pair][input]`.
#[inline]
pub(crate) fn interleave_rows<'a, X: Copy + Into<i16>>(
    xs: &'a mut Vec<Pair>,
    inputs: &[&[X]],
    pairs: usize,
) -> &'a [Pair] {
    let xs = scratch(xs, inputs.len() * pairs);
    for (t, x) in inputs.iter().enumerate() {
        assert_eq!(
            x.len().div_ceil(2),
            pairs,
            "input {t}: one pair per weight pair"
        );
    }
    // A tile size known at compile time keeps the transposition free of bounds checks.
    match inputs.len() {
        8 => transpose::<8, X>(xs, inputs),
        4 => transpose::<4, X>(xs, inputs),
        2 => transpose::<2, X>(xs, inputs),
        _ => transpose::<1, X>(xs, inputs),
    }
    xs
}

#[inline(always)]
fn transpose<const N: usize, X: Copy + Into<i16>>(xs: &mut [Pair], inputs: &[&[X]]) {
    let inputs: &[&[X]; N] = inputs.try_into().expect("a tile of N");
    let columns = xs.as_chunks_mut::<N>().0;
    for (t, x) in inputs.iter().enumerate() {
        let (pairs, odd) = x.as_chunks::<2>();
        for (column, &[a, b]) in columns.iter_mut().zip(pairs) {
            column[t] = [a.into(), b.into()];
        }
        if let (Some(column), [a]) = (columns.get_mut(pairs.len()), odd) {
            column[t] = [(*a).into(), 0];
        }
    }
}

/// The kernel's input for a tile of `n` inputs whose pair `p` are the consecutive
/// `run(p)[..n]` (a convolution's neighbouring output positions): `[pair][input]`.
#[inline]
pub(crate) fn interleave_runs<'a, 'r>(
    xs: &'a mut Vec<Pair>,
    n: usize,
    pairs: usize,
    run: impl Fn(usize) -> &'r [Pair],
) -> &'a [Pair] {
    let xs = scratch(xs, n * pairs);
    // Fixed-size copies: a copy of run-time length is a call to `memmove`.
    match n {
        8 => copy_runs::<8>(xs, run),
        4 => copy_runs::<4>(xs, run),
        2 => copy_runs::<2>(xs, run),
        _ => copy_runs::<1>(xs, run),
    }
    xs
}

#[inline(always)]
fn copy_runs<'a, const N: usize>(xs: &mut [Pair], run: impl Fn(usize) -> &'a [Pair]) {
    for (p, column) in xs.as_chunks_mut::<N>().0.iter_mut().enumerate() {
        *column = run(p)[..N].try_into().expect("a run of N");
    }
}

/// `acc[t · rows + r] = bias[r] + Σ_p w[r][p] · x_t[p]` for the `n` inputs whose pairs are
/// `xs` (`[pair][input]`; `n` one of 1, 2, 4, 8, see [`tile_len`]).
///
/// Wrapping adds: callers guarantee (by the accumulator bound) that no sum leaves `i32`.
pub(crate) fn gemm(w: &Packed, xs: &[Pair], n: usize, acc: &mut [i32]) {
    assert!(n == tile_len(n) && n <= TILE, "tile of {n} inputs");
    assert_eq!(xs.len(), w.pairs * n, "one pair per weight pair and input");
    assert_eq!(acc.len(), w.rows * n, "one accumulator per row and input");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `x86::gemm` only requires AVX2, which the CPU was just checked to have.
        unsafe { x86::gemm(w, xs, n, acc) };
        return;
    }
    gemm_portable(w, xs, n, acc);
}

fn gemm_portable(w: &Packed, xs: &[Pair], n: usize, acc: &mut [i32]) {
    match n {
        8 => tile_portable::<8>(w, xs, acc),
        4 => tile_portable::<4>(w, xs, acc),
        2 => tile_portable::<2>(w, xs, acc),
        _ => tile_portable::<1>(w, xs, acc),
    }
}

/// A tile of `T` inputs in plain Rust (vectorised as the target allows).
fn tile_portable<const T: usize>(w: &Packed, xs: &[Pair], acc: &mut [i32]) {
    for (first, block) in w.blocks() {
        let mut a = [[0i32; LANES]; T];
        for (block, x) in block.iter().zip(xs.chunks_exact(T)) {
            for (a, x) in a.iter_mut().zip(x) {
                for (a, w) in a.iter_mut().zip(block) {
                    *a = a.wrapping_add(madd(*w, *x));
                }
            }
        }
        for (t, a) in a.iter().enumerate() {
            let out = &mut acc[t * w.rows + first..][..LANES];
            for ((o, &s), &b) in out.iter_mut().zip(a).zip(w.block_bias(first)) {
                *o = s.wrapping_add(b);
            }
        }
    }
    for (r, row) in w.tail() {
        let sums = row_sums::<T>(row, xs);
        for (t, s) in sums.into_iter().enumerate() {
            acc[t * w.rows + r] = s.wrapping_add(w.bias[r]);
        }
    }
}

/// One row's sums for a tile of `T` inputs, one value at a time.
#[inline(always)]
fn row_sums<const T: usize>(row: &[Pair], xs: &[Pair]) -> [i32; T] {
    let mut a = [0i32; T];
    for (&w, x) in row.iter().zip(xs.chunks_exact(T)) {
        for (a, &x) in a.iter_mut().zip(x) {
            *a = a.wrapping_add(madd(w, x));
        }
    }
    a
}

/// `w₀·x₀ + w₁·x₁`.
#[inline(always)]
fn madd(w: Pair, x: Pair) -> i32 {
    i32::from(w[0])
        .wrapping_mul(i32::from(x[0]))
        .wrapping_add(i32::from(w[1]).wrapping_mul(i32::from(x[1])))
}

/// The AVX2 kernel.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m128i, __m256i, _mm_add_epi32, _mm_extract_epi32, _mm_madd_epi16, _mm_set1_epi32,
        _mm_setr_epi32, _mm_setzero_si128, _mm256_add_epi32, _mm256_extract_epi32,
        _mm256_madd_epi16, _mm256_set1_epi32, _mm256_setr_epi32, _mm256_setzero_si256,
    };

    use super::{Block, LANES, Packed, Pair, row_sums};

    #[target_feature(enable = "avx2")]
    pub(super) fn gemm(w: &Packed, xs: &[Pair], n: usize, acc: &mut [i32]) {
        match n {
            8 => tile::<8>(w, xs, acc),
            4 => tile::<4>(w, xs, acc),
            2 => tile::<2>(w, xs, acc),
            _ => tile::<1>(w, xs, acc),
        }
    }

    /// A tile of `T` inputs. Each block keeps `T` vectors of accumulators in registers for the
    /// whole input and loads each weight vector once for the tile; each last row runs across
    /// the tile's inputs instead (for one input, across its pairs).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn tile<const T: usize>(w: &Packed, xs: &[Pair], acc: &mut [i32]) {
        for (first, block) in w.blocks() {
            let mut a = [_mm256_setzero_si256(); T];
            for (block, x) in block.iter().zip(xs.chunks_exact(T)) {
                let weights = load(block);
                for (a, &x) in a.iter_mut().zip(x) {
                    let product = _mm256_madd_epi16(weights, _mm256_set1_epi32(pack(x)));
                    *a = _mm256_add_epi32(*a, product);
                }
            }
            let bias = load_i32(w.block_bias(first));
            for (t, &a) in a.iter().enumerate() {
                let out = &mut acc[t * w.rows + first..][..LANES];
                *out.as_mut_array().expect("a block") = store(_mm256_add_epi32(a, bias));
            }
        }
        for (r, row) in w.tail() {
            let mut sums = [0i32; T];
            match T {
                8 => sums.copy_from_slice(&across_8(row, xs)),
                4 => sums.copy_from_slice(&across_4(row, xs)),
                1 => sums[0] = along(row, xs),
                _ => sums = row_sums::<T>(row, xs),
            }
            for (t, s) in sums.into_iter().enumerate() {
                acc[t * w.rows + r] = s.wrapping_add(w.bias[r]);
            }
        }
    }

    /// One row against eight inputs, `xs` being `[pair][input]`.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn across_8(row: &[Pair], xs: &[Pair]) -> [i32; 8] {
        let mut a = _mm256_setzero_si256();
        for (&w, x) in row.iter().zip(xs.as_chunks::<8>().0) {
            a = _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_set1_epi32(pack(w)), load(x)));
        }
        store(a)
    }

    /// One row against four inputs, `xs` being `[pair][input]`.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn across_4(row: &[Pair], xs: &[Pair]) -> [i32; 4] {
        let mut a = _mm_setzero_si128();
        for (&w, x) in row.iter().zip(xs.as_chunks::<4>().0) {
            let x = _mm_setr_epi32(pack(x[0]), pack(x[1]), pack(x[2]), pack(x[3]));
            a = _mm_add_epi32(a, _mm_madd_epi16(_mm_set1_epi32(pack(w)), x));
        }
        store_128(a)
    }

    /// One row against one input: a dot product along the pairs.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn along(row: &[Pair], x: &[Pair]) -> i32 {
        let (ws, w_rest) = row.as_chunks::<8>();
        let (xs, x_rest) = x.as_chunks::<8>();
        let mut a = _mm256_setzero_si256();
        for (w, x) in ws.iter().zip(xs) {
            a = _mm256_add_epi32(a, _mm256_madd_epi16(load(w), load(x)));
        }
        let rest = row_sums::<1>(w_rest, x_rest)[0];
        store(a).into_iter().fold(rest, i32::wrapping_add)
    }

    /// A pair as the `i32` whose low half is its first value (the `pmaddwd` lane order).
    #[inline(always)]
    fn pack([a, b]: Pair) -> i32 {
        // Bit reinterpretation: the halves are the two values' two's-complement bits.
        (u32::from(a as u16) | (u32::from(b as u16) << 16)) as i32
    }

    // Loads and stores through `setr`/`extract` keep this module free of raw pointers; LLVM
    // folds them into single vector moves.

    #[target_feature(enable = "avx2")]
    #[inline]
    fn load(b: &Block) -> __m256i {
        let p = b.map(pack);
        _mm256_setr_epi32(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7])
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn load_i32(v: &[i32; LANES]) -> __m256i {
        _mm256_setr_epi32(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7])
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn store(v: __m256i) -> [i32; LANES] {
        [
            _mm256_extract_epi32::<0>(v),
            _mm256_extract_epi32::<1>(v),
            _mm256_extract_epi32::<2>(v),
            _mm256_extract_epi32::<3>(v),
            _mm256_extract_epi32::<4>(v),
            _mm256_extract_epi32::<5>(v),
            _mm256_extract_epi32::<6>(v),
            _mm256_extract_epi32::<7>(v),
        ]
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn store_128(v: __m128i) -> [i32; 4] {
        [
            _mm_extract_epi32::<0>(v),
            _mm_extract_epi32::<1>(v),
            _mm_extract_epi32::<2>(v),
            _mm_extract_epi32::<3>(v),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel against the plain product, for shapes that exercise every block size, odd
    /// widths and every tile size.
    #[test]
    fn matches_the_plain_product() {
        for (rows, cols) in [
            (1usize, 1usize),
            (3, 5),
            (8, 25),
            (10, 64),
            (17, 200),
            (45, 9),
            (128, 64),
            (15, 2),
        ] {
            let w: Vec<i8> = (0..rows * cols)
                .map(|i| ((i * 37 + 11) % 255) as u8 as i8)
                .collect();
            let pairs = cols.div_ceil(2);
            let bias: Vec<i32> = (0..rows).map(|r| r as i32 * 7 - 20).collect();
            let packed = Packed::new(pairs, &bias, |r, p| {
                pair_of(&w[r * cols..(r + 1) * cols], p)
            });
            for n in [1, 2, 4, 8] {
                let x: Vec<i8> = (0..n * cols)
                    .map(|i| ((i * 91 + 3) % 256) as u8 as i8)
                    .collect();
                let input = |t: usize| &x[t * cols..(t + 1) * cols];
                // A buffer left dirty by a wider use: every entry must be overwritten.
                let mut xs = vec![[7; 2]; 3 * n * pairs];
                let inputs: Vec<&[i8]> = (0..n).map(input).collect();
                let xs = interleave_rows(&mut xs, &inputs, pairs);
                let mut acc = vec![0; n * rows];
                gemm(&packed, xs, n, &mut acc);
                let mut portable = vec![0; n * rows];
                gemm_portable(&packed, xs, n, &mut portable);
                assert_eq!(acc, portable, "{rows}x{cols} n {n}: portable copy");
                for t in 0..n {
                    for r in 0..rows {
                        let plain: i32 = bias[r]
                            + (0..cols)
                                .map(|c| i32::from(w[r * cols + c]) * i32::from(input(t)[c]))
                                .sum::<i32>();
                        assert_eq!(acc[t * rows + r], plain, "{rows}x{cols} n {n} t {t} r {r}");
                    }
                }
            }
        }
    }

    #[test]
    fn tiles_cover_and_rows_are_not_padded() {
        assert_eq!(
            (1..=9).map(tile_len).collect::<Vec<_>>(),
            [1, 2, 2, 4, 4, 4, 4, 8, 8]
        );
        for rows in [1, 7, 8, 9, 17] {
            let packed = Packed::new(3, &vec![0; rows], |_, _| [1, 1]);
            assert_eq!(packed.blocks.len() * LANES + packed.tail.len(), rows * 3);
        }
    }
}
