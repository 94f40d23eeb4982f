//! The one hot loop: a matrix–vector product over int8 weights, vectorised across output rows.
//!
//! At load time each layer's `[row][col]` weights are rearranged into **column pairs**:
//! `pairs[(p · rows + r) · 2 + k] = w[r][2p + k]` as `i16` (a zero pads an odd last column).
//! The product then walks the input two values at a time and updates every row's accumulator
//! with `w₀·x₀ + w₁·x₁`: contiguous `i16` loads the compiler turns into `pmaddwd` (8 or 16
//! multiply-adds per instruction), with no horizontal sums.
//!
//! Results are exact integers whatever the instruction set: the AVX2 copy is the same source
//! compiled with AVX2 enabled, chosen at run time. No floating point: verified path.

/// Rearranges `[rows][cols]` weights into the column-pair layout.
pub(crate) fn pairs(weights: &[i8], rows: usize, cols: usize) -> Vec<i16> {
    let n_pairs = cols.div_ceil(2);
    let mut out = vec![0i16; n_pairs * rows * 2];
    for r in 0..rows {
        for (c, &w) in weights[r * cols..(r + 1) * cols].iter().enumerate() {
            out[((c / 2) * rows + r) * 2 + c % 2] = i16::from(w);
        }
    }
    out
}

/// `acc[r] += Σ_c w[r][c] · x[c]` over the pair layout of a `acc.len() × x.len()` matrix.
///
/// Wrapping adds: callers guarantee (by the accumulator bound) that no sum leaves `i32`.
#[inline]
pub(crate) fn gemv<X: Copy + Into<i32>>(pairs: &[i16], x: &[X], acc: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `gemv_avx2` only requires AVX2, which the CPU was just checked to have.
        unsafe { gemv_avx2(pairs, x, acc) };
        return;
    }
    gemv_body(pairs, x, acc);
}

/// [`gemv_body`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn gemv_avx2<X: Copy + Into<i32>>(pairs: &[i16], x: &[X], acc: &mut [i32]) {
    gemv_body(pairs, x, acc);
}

#[inline(always)]
fn gemv_body<X: Copy + Into<i32>>(pairs: &[i16], x: &[X], acc: &mut [i32]) {
    // Rows in register-sized blocks: a block's accumulators stay in registers for the whole
    // input, so each pair of inputs costs one load and one multiply-add per 8 rows.
    let rows = acc.len();
    let mut r = 0;
    while rows - r >= 32 {
        block::<32, X>(pairs, x, &mut acc[r..r + 32], r, rows);
        r += 32;
    }
    while rows - r >= 8 {
        block::<8, X>(pairs, x, &mut acc[r..r + 8], r, rows);
        r += 8;
    }
    while r < rows {
        block::<1, X>(pairs, x, &mut acc[r..r + 1], r, rows);
        r += 1;
    }
}

/// Rows `first..first + N` of a `rows`-row pair layout.
#[inline(always)]
fn block<const N: usize, X: Copy + Into<i32>>(
    pairs: &[i16],
    x: &[X],
    out: &mut [i32],
    first: usize,
    rows: usize,
) {
    let mut a = [0i32; N];
    let stride = 2 * rows;
    let mut xs = x.chunks_exact(2);
    let mut p = 0;
    for xp in &mut xs {
        let (x0, x1): (i32, i32) = (xp[0].into(), xp[1].into());
        let w = &pairs[p * stride + 2 * first..p * stride + 2 * (first + N)];
        for k in 0..N {
            let sum = i32::from(w[2 * k])
                .wrapping_mul(x0)
                .wrapping_add(i32::from(w[2 * k + 1]).wrapping_mul(x1));
            a[k] = a[k].wrapping_add(sum);
        }
        p += 1;
    }
    // An odd last column: its pair's second weight is the zero padding.
    if let [last] = xs.remainder() {
        let x0: i32 = (*last).into();
        let w = &pairs[p * stride + 2 * first..p * stride + 2 * (first + N)];
        for k in 0..N {
            a[k] = a[k].wrapping_add(i32::from(w[2 * k]).wrapping_mul(x0));
        }
    }
    for (o, v) in out.iter_mut().zip(a) {
        *o = o.wrapping_add(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_plain_product_for_odd_and_even_widths() {
        for (rows, cols) in [
            (1, 1),
            (3, 5),
            (8, 25),
            (10, 64),
            (17, 200),
            (45, 9),
            (128, 64),
        ] {
            let w: Vec<i8> = (0..rows * cols)
                .map(|i| ((i * 37 + 11) % 255) as u8 as i8)
                .collect();
            let x: Vec<u8> = (0..cols).map(|i| ((i * 91 + 3) % 256) as u8).collect();
            let mut acc = vec![7i32; rows];
            gemv(&pairs(&w, rows, cols), &x, &mut acc);
            for r in 0..rows {
                let plain: i32 = 7
                    + (0..cols)
                        .map(|c| i32::from(w[r * cols + c]) * i32::from(x[c]))
                        .sum::<i32>();
                assert_eq!(acc[r], plain, "{rows}x{cols} row {r}");
            }
            let xi: Vec<i8> = x.iter().map(|&v| v as i8).collect();
            let mut acc = vec![0i32; rows];
            gemv_body(&pairs(&w, rows, cols), &xi, &mut acc);
            let plain: i32 = (0..cols).map(|c| i32::from(w[c]) * i32::from(xi[c])).sum();
            assert_eq!(acc[0], plain, "portable copy, signed input");
        }
    }
}
