//! Full tiles of byte inputs against `i8` weights with VNNI's `vpdpbusd`: four `u8 × i8`
//! products summed into each `i32` lane, accumulate included, in one instruction (against
//! `pmaddwd`'s two products and a separate add). Image bytes and ReLU outputs are bytes, so
//! every layer but the LSTM's can use it, on CPUs with AVX-VNNI or AVX-512 VNNI.
//!
//! The layout mirrors the pair kernel's with **quads** of columns (`[i8; 4]`, zero-padded):
//! blocks of [`LANES`] rows, `[quad][row]` within a block, the last `rows % LANES` rows
//! row-major; inputs `[quad][input]`. Only tiles of [`TILE`] inputs come here: `vpdpbusd` adds
//! into its own input, so each accumulator is a chain of dependent instructions, and eight
//! inputs keep eight chains in flight where one input would stall on each.
//!
//! Exact like the pair kernel: each product fits `i16` (`255 · 128`), `vpdpbusd` adds without
//! saturating, and the accumulator bound keeps every sum in `i32`. No floating point: verified
//! path.

use super::{LANES, TILE, scratch};

/// Four neighbouring input bytes.
pub(crate) type Quad = [u8; 4];

/// Quad `q` of every row of a block.
type Block = [[i8; 4]; LANES];

/// A layer's weights in quads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Quads {
    rows: usize,
    quads: usize,
    /// The whole blocks, `[block][quad]`.
    blocks: Vec<Block>,
    /// The last `rows % LANES` rows, `[row][quad]`.
    tail: Vec<[i8; 4]>,
}

impl Quads {
    /// The `rows × cols` weights `weight(r, c)` in quads.
    pub(crate) fn new(rows: usize, cols: usize, weight: impl Fn(usize, usize) -> i8) -> Self {
        let quads = cols.div_ceil(4);
        let quad = |r: usize, q: usize| -> [i8; 4] {
            std::array::from_fn(|k| {
                let c = 4 * q + k;
                if c < cols { weight(r, c) } else { 0 }
            })
        };
        let whole = rows / LANES * LANES;
        let mut blocks = Vec::with_capacity(whole / LANES * quads);
        for first in (0..whole).step_by(LANES) {
            blocks.extend((0..quads).map(|q| std::array::from_fn(|k| quad(first + k, q))));
        }
        let tail = (whole..rows)
            .flat_map(|r| (0..quads).map(move |q| (r, q)))
            .map(|(r, q)| quad(r, q))
            .collect();
        Self {
            rows,
            quads,
            blocks,
            tail,
        }
    }

    /// Column quads per row: the quads one input brings.
    pub(crate) fn quads(&self) -> usize {
        self.quads
    }

    /// The whole blocks, each with its first row.
    fn blocks(&self) -> impl Iterator<Item = (usize, &[Block])> {
        let blocks = self.blocks.chunks_exact(self.quads.max(1));
        (0..self.rows).step_by(LANES).zip(blocks)
    }

    /// The rows after the whole blocks, each with its index.
    fn tail(&self) -> impl Iterator<Item = (usize, &[[i8; 4]])> {
        let first = self.rows / LANES * LANES;
        (first..self.rows).zip(self.tail.chunks_exact(self.quads.max(1)))
    }
}

/// Whether this CPU runs the VNNI kernel (else layers are not given quads).
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        has!("avxvnni") || (has!("avx512vnni") && has!("avx512vl"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The kernel's input for a full tile of byte rows (each `4 · quads − 3 ..= 4 · quads` bytes,
/// zero-padded): `[quad][input]`.
pub(crate) fn interleave<'a>(
    xs: &'a mut Vec<Quad>,
    inputs: &[&[u8]; TILE],
    quads: usize,
) -> &'a [Quad] {
    let xs = scratch(xs, TILE * quads);
    let columns = xs.as_chunks_mut::<TILE>().0;
    for (t, x) in inputs.iter().enumerate() {
        assert_eq!(
            x.len().div_ceil(4),
            quads,
            "input {t}: one quad per weight quad"
        );
        let (whole, rest) = x.as_chunks::<4>();
        for (column, &quad) in columns.iter_mut().zip(whole) {
            column[t] = quad;
        }
        if let Some(column) = columns.get_mut(whole.len()) {
            let mut quad = [0; 4];
            quad[..rest.len()].copy_from_slice(rest);
            column[t] = quad;
        }
    }
    xs
}

/// `acc[t · rows + r] = bias[r] + Σ_c w[r][c] · x_t[c]` for the [`TILE`] inputs whose quads
/// are `xs` (`[quad][input]`).
///
/// Wrapping adds: callers guarantee (by the accumulator bound) that no sum leaves `i32`.
pub(crate) fn gemm(w: &Quads, bias: &[i32], xs: &[Quad], acc: &mut [i32]) {
    assert_eq!(
        xs.len(),
        w.quads * TILE,
        "one quad per weight quad and input"
    );
    assert_eq!(
        acc.len(),
        w.rows * TILE,
        "one accumulator per row and input"
    );
    assert_eq!(bias.len(), w.rows, "one bias per row");
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avxvnni") {
            // SAFETY: `x86::gemm_avx` only requires AVX2 and AVX-VNNI, which the CPU was just
            // checked to have (AVX-VNNI implies AVX2).
            unsafe { x86::gemm_avx(w, bias, xs, acc) };
            return;
        }
        if has!("avx512vnni") && has!("avx512vl") {
            // SAFETY: `x86::gemm_avx512` only requires AVX-512 F, VL and VNNI (and the AVX2
            // they imply), which the CPU was just checked to have.
            unsafe { x86::gemm_avx512(w, bias, xs, acc) };
            return;
        }
    }
    gemm_portable(w, bias, xs, acc);
}

/// [`gemm`] one value at a time.
fn gemm_portable(w: &Quads, bias: &[i32], xs: &[Quad], acc: &mut [i32]) {
    let columns = xs.as_chunks::<TILE>().0;
    for (first, block) in w.blocks() {
        for (k, r) in (first..first + LANES).enumerate() {
            let row = block.iter().map(|quads| quads[k]);
            store_row(acc, w.rows, r, bias[r], row_sums(row, columns));
        }
    }
    for (r, row) in w.tail() {
        store_row(
            acc,
            w.rows,
            r,
            bias[r],
            row_sums(row.iter().copied(), columns),
        );
    }
}

/// One row's sums for the tile.
fn row_sums(row: impl Iterator<Item = [i8; 4]>, columns: &[[Quad; TILE]]) -> [i32; TILE] {
    let mut sums = [0i32; TILE];
    for (w, column) in row.zip(columns) {
        for (s, x) in sums.iter_mut().zip(column) {
            let dot = w.iter().zip(x).map(|(&w, &x)| i32::from(w) * i32::from(x));
            *s = s.wrapping_add(dot.sum());
        }
    }
    sums
}

/// Row `r`'s sums plus its bias into each input's accumulators.
fn store_row(acc: &mut [i32], rows: usize, r: usize, bias: i32, sums: [i32; TILE]) {
    for (t, s) in sums.into_iter().enumerate() {
        acc[t * rows + r] = s.wrapping_add(bias);
    }
}

/// The AVX-VNNI and AVX-512 VNNI kernels: one source, two instruction encodings.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi32, _mm256_dpbusd_avx_epi32, _mm256_dpbusd_epi32,
        _mm256_extract_epi32, _mm256_set1_epi32, _mm256_setr_epi32, _mm256_setzero_si256,
    };

    use super::{LANES, Quad, Quads, TILE};

    /// Each block keeps a vector of accumulators per input in registers for the whole input
    /// and loads each weight vector once for the tile; each last row runs across the tile's
    /// inputs instead (their quads for one weight quad are contiguous).
    macro_rules! kernel {
        ($name:ident, $features:literal, $dpbusd:ident) => {
            #[target_feature(enable = $features)]
            pub(super) fn $name(w: &Quads, bias: &[i32], xs: &[Quad], acc: &mut [i32]) {
                let columns = xs.as_chunks::<TILE>().0;
                for (first, block) in w.blocks() {
                    let mut a = [_mm256_setzero_si256(); TILE];
                    for (weights, x) in block.iter().zip(columns) {
                        let weights = setr(weights.map(|w| from_bytes(w.map(|b| b as u8))));
                        for (a, &x) in a.iter_mut().zip(x) {
                            *a = $dpbusd(*a, _mm256_set1_epi32(from_bytes(x)), weights);
                        }
                    }
                    let b: &[i32; LANES] = bias[first..first + LANES]
                        .try_into()
                        .expect("a whole block");
                    let b = setr(*b);
                    for (t, &a) in a.iter().enumerate() {
                        let out = &mut acc[t * w.rows + first..][..LANES];
                        *out.as_mut_array().expect("a block") = store(_mm256_add_epi32(a, b));
                    }
                }
                for (r, row) in w.tail() {
                    let mut a = _mm256_setzero_si256();
                    for (&weights, x) in row.iter().zip(columns) {
                        let weights = _mm256_set1_epi32(from_bytes(weights.map(|b| b as u8)));
                        a = $dpbusd(a, setr(x.map(from_bytes)), weights);
                    }
                    for (t, s) in store(a).into_iter().enumerate() {
                        acc[t * w.rows + r] = s.wrapping_add(bias[r]);
                    }
                }
            }
        };
    }

    kernel!(gemm_avx, "avx2,avxvnni", _mm256_dpbusd_avx_epi32);
    kernel!(
        gemm_avx512,
        "avx2,avx512f,avx512vl,avx512vnni",
        _mm256_dpbusd_epi32
    );

    /// Four bytes as the lane that holds them in order (`vpdpbusd` pairs byte `k` of a lane
    /// with byte `k` of the other operand's lane).
    #[inline(always)]
    fn from_bytes(bytes: [u8; 4]) -> i32 {
        i32::from_le_bytes(bytes)
    }

    // Loads and stores through `setr`/`extract` keep this module free of raw pointers; LLVM
    // folds them into single vector moves.

    #[target_feature(enable = "avx2")]
    #[inline]
    fn setr(v: [i32; 8]) -> __m256i {
        _mm256_setr_epi32(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7])
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn store(v: __m256i) -> [i32; 8] {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every copy of the kernel against the plain product, for widths that leave partial
    /// quads and row counts that leave last rows outside whole blocks.
    #[test]
    fn matches_the_plain_product() {
        for (rows, cols) in [
            (1usize, 1usize),
            (3, 5),
            (8, 25),
            (10, 64),
            (17, 203),
            (45, 9),
        ] {
            let w: Vec<i8> = (0..rows * cols)
                .map(|i| ((i * 37 + 11) % 256) as u8 as i8)
                .collect();
            let quads = Quads::new(rows, cols, |r, c| w[r * cols + c]);
            let bias: Vec<i32> = (0..rows).map(|r| r as i32 * 7 - 20).collect();
            let x: Vec<u8> = (0..TILE * cols)
                .map(|i| ((i * 91 + 3) % 256) as u8)
                .collect();
            let input = |t: usize| &x[t * cols..(t + 1) * cols];
            let inputs: [&[u8]; TILE] = std::array::from_fn(input);
            // A buffer left dirty by a wider use: every entry must be overwritten.
            let mut xs = vec![[9; 4]; 3 * TILE * quads.quads()];
            let xs = interleave(&mut xs, &inputs, quads.quads());
            let mut portable = vec![0; TILE * rows];
            gemm_portable(&quads, &bias, xs, &mut portable);
            let mut copies = vec![portable];
            #[cfg(target_arch = "x86_64")]
            {
                use std::arch::is_x86_feature_detected as has;
                if has!("avxvnni") {
                    let mut acc = vec![0; TILE * rows];
                    // SAFETY: AVX-VNNI (and so AVX2) was just checked.
                    unsafe { x86::gemm_avx(&quads, &bias, xs, &mut acc) };
                    copies.push(acc);
                }
                if has!("avx512vnni") && has!("avx512vl") {
                    let mut acc = vec![0; TILE * rows];
                    // SAFETY: AVX-512 F, VL and VNNI were just checked.
                    unsafe { x86::gemm_avx512(&quads, &bias, xs, &mut acc) };
                    copies.push(acc);
                }
            }
            for acc in &copies {
                for t in 0..TILE {
                    for r in 0..rows {
                        let plain: i32 = bias[r]
                            + (0..cols)
                                .map(|c| i32::from(w[r * cols + c]) * i32::from(input(t)[c]))
                                .sum::<i32>();
                        assert_eq!(acc[t * rows + r], plain, "{rows}x{cols} t {t} r {r}");
                    }
                }
            }
        }
    }
}
