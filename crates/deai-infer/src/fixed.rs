//! Fixed-point arithmetic: requantization multipliers and the one rounding rule.
//!
//! A real multiplier `M` is stored as `mult · 2^-shift` with `0 ≤ mult < 2^31` and
//! `shift ≤ 62` (the quantizer normalises `mult` into `[2^30, 2^31)` when `M` allows). Applying it
//! to an `i32` accumulator is one `i64` product and one rounding right shift, so the result is
//! exact and the same everywhere: `|acc · mult| < 2^62`, and adding the half before shifting
//! stays below `2^63`.
//!
//! Rounding is **half away from zero** everywhere in this crate ([`shift_round`]): `2.5 → 3`,
//! `−2.5 → −3`. It is symmetric, so a model and its negation give negated results.
//!
//! No floating point in this module: it is on the verified path.

/// Largest shift a multiplier may carry.
pub const SHIFT_MAX: u8 = 62;

/// A fixed-point multiplier `mult · 2^-shift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Requant {
    /// Mantissa, `0 ≤ mult < 2^31`.
    pub mult: i32,
    /// Right shift, `≤ SHIFT_MAX`.
    pub shift: u8,
}

impl Requant {
    /// The identity multiplier (`2^30 · 2^-30`).
    pub const ONE: Self = Self {
        mult: 1 << 30,
        shift: 30,
    };

    /// Whether `mult` and `shift` are in range (what a decoder must check).
    pub fn is_valid(self) -> bool {
        self.mult >= 0 && self.shift <= SHIFT_MAX
    }

    /// `round(acc · mult / 2^shift)`, half away from zero.
    #[inline]
    pub fn apply(self, acc: i32) -> i64 {
        // |acc · mult| < 2^31 · 2^31: the product cannot overflow.
        let product = i64::from(acc).wrapping_mul(i64::from(self.mult));
        shift_round(product, u32::from(self.shift))
    }
}

/// `x / 2^shift` rounded half away from zero, for `|x| < 2^63 − 2^62` and `shift ≤ 62`.
///
/// Branch-free on the magnitude: `sign · ((|x| + half) >> shift)`. Wrapping operations only
/// because the range above makes every step exact (and it keeps overflow checks out of the
/// per-output loop); `x = i64::MIN` is outside the range and never reaches here.
#[inline]
pub fn shift_round(x: i64, shift: u32) -> i64 {
    let half = (1i64 << shift) >> 1;
    let sign = x >> 63;
    let magnitude = (x ^ sign).wrapping_sub(sign);
    let rounded = magnitude.wrapping_add(half) >> shift;
    (rounded ^ sign).wrapping_sub(sign)
}

/// `x` clamped into `lo..=hi`, as an `i32`.
#[inline]
pub fn clamp_i32(x: i64, lo: i32, hi: i32) -> i32 {
    // After the clamp the value is in `lo..=hi`, so the narrowing cannot truncate.
    x.clamp(i64::from(lo), i64::from(hi)) as i32
}

/// A layer's multipliers laid out for requantize-and-ReLU over whole rows ([`Relu::apply`]):
/// one column per field, and for each whole block of 8 rows its even and odd rows apart (the
/// lanes `pmuludq` multiplies).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Relu {
    mult: Vec<u32>,
    half: Vec<u64>,
    shift: Vec<u64>,
    /// Per block of 8 rows: halves and shifts of rows `[0, 2, 4, 6]` and `[1, 3, 5, 7]`.
    lanes: Vec<[[[u64; 4]; 2]; 2]>,
}

impl Relu {
    /// The columns of valid multipliers ([`Requant::is_valid`]).
    pub(crate) fn new(requant: &[Requant]) -> Self {
        let half: Vec<u64> = requant.iter().map(|q| (1u64 << q.shift) >> 1).collect();
        let shift: Vec<u64> = requant.iter().map(|q| u64::from(q.shift)).collect();
        let split = |v: &[u64; 8]| [0, 1].map(|odd| std::array::from_fn(|k| v[2 * k + odd]));
        let blocks = half.as_chunks::<8>().0.iter().zip(shift.as_chunks::<8>().0);
        let lanes = blocks.map(|(h, s)| [split(h), split(s)]).collect();
        Self {
            mult: requant.iter().map(|q| q.mult.unsigned_abs()).collect(),
            half,
            shift,
            lanes,
        }
    }

    /// `out[r] = clamp(round(acc[r] · M_r), 0, 255)`, the same value as
    /// `clamp_i32(requant[r].apply(acc[r]), 0, 255)`.
    ///
    /// Multipliers are non-negative, so a non-positive accumulator gives a non-positive product
    /// that clamps to 0, and a positive one rounds as `(product + half) >> shift`. The product
    /// is below `2^31 · 2^31` and `half ≤ 2^61`, so nothing overflows `u64`; `shift ≤ 62`, so
    /// the wrapping shift is the plain one.
    pub(crate) fn apply(&self, acc: &[i32], out: &mut [u8]) {
        assert!(
            acc.len() == self.mult.len() && out.len() == acc.len(),
            "one value per row"
        );
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: `x86::relu` only requires AVX2, which the CPU was just checked to have.
            unsafe { x86::relu(self, acc, out) };
            return;
        }
        self.apply_portable(acc, out, 0);
    }

    /// [`Relu::apply`] one row at a time, from row `first` (`acc` and `out` start there).
    fn apply_portable(&self, acc: &[i32], out: &mut [u8], first: usize) {
        let params = self.mult[first..]
            .iter()
            .zip(&self.half[first..])
            .zip(&self.shift[first..]);
        for ((o, &a), ((&mult, &half), &shift)) in out.iter_mut().zip(acc).zip(params) {
            let positive = u64::from(a.max(0).unsigned_abs());
            let product = positive.wrapping_mul(u64::from(mult)).wrapping_add(half);
            // At most 255 after the `min`, so the narrowing is exact.
            *o = product.wrapping_shr(shift as u32).min(255) as u8;
        }
    }
}

/// [`Relu::apply`] eight rows at a time with AVX2 (which has the variable 64-bit shift): the
/// even rows' products in one `pmuludq`, the odd rows' in another.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m256i, _mm_extract_epi16, _mm256_add_epi64, _mm256_blendv_epi8, _mm256_castsi256_si128,
        _mm256_cmpgt_epi64, _mm256_max_epi32, _mm256_mul_epu32, _mm256_or_si256,
        _mm256_packs_epi32, _mm256_permute4x64_epi64, _mm256_set1_epi64x, _mm256_setr_epi32,
        _mm256_setr_epi64x, _mm256_setzero_si256, _mm256_slli_epi64, _mm256_srli_epi64,
        _mm256_srlv_epi64,
    };

    use super::Relu;

    #[target_feature(enable = "avx2")]
    pub(super) fn relu(q: &Relu, acc: &[i32], out: &mut [u8]) {
        let (acc8, acc_rest) = acc.as_chunks::<8>();
        let (out8, out_rest) = out.as_chunks_mut::<8>();
        let blocks = q.mult.as_chunks::<8>().0.iter().zip(&q.lanes);
        for ((a, o), (m, [half, shift])) in acc8.iter().zip(out8).zip(blocks) {
            let a = _mm256_max_epi32(setr(a.map(|v| v as u32)), _mm256_setzero_si256());
            let m = setr(*m);
            let even = round(_mm256_mul_epu32(a, m), &half[0], &shift[0]);
            let odd = _mm256_mul_epu32(_mm256_srli_epi64::<32>(a), _mm256_srli_epi64::<32>(m));
            let odd = round(odd, &half[1], &shift[1]);
            // Each 64-bit lane now holds two rows' values, each at most 255.
            let rows = _mm256_or_si256(even, _mm256_slli_epi64::<32>(odd));
            let packed = _mm256_permute4x64_epi64::<0b1000>(_mm256_packs_epi32(rows, rows));
            *o = to_u8(packed);
        }
        let first = acc.len() - acc_rest.len();
        q.apply_portable(acc_rest, out_rest, first);
    }

    /// `min((product + half) >> shift, 255)` per 64-bit lane.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn round(product: __m256i, half: &[u64; 4], shift: &[u64; 4]) -> __m256i {
        let v = _mm256_srlv_epi64(_mm256_add_epi64(product, setr_64(half)), setr_64(shift));
        let max = _mm256_set1_epi64x(255);
        _mm256_blendv_epi8(v, max, _mm256_cmpgt_epi64(v, max))
    }

    // Loads and stores through `setr`/`extract` keep this module free of raw pointers; LLVM
    // folds them into single vector moves.

    #[target_feature(enable = "avx2")]
    #[inline]
    fn setr(v: [u32; 8]) -> __m256i {
        // Bit reinterpretation of each lane.
        let v = v.map(|x| x as i32);
        _mm256_setr_epi32(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7])
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn setr_64(v: &[u64; 4]) -> __m256i {
        // Bit reinterpretation of each lane.
        let v = v.map(|x| x as i64);
        _mm256_setr_epi64x(v[0], v[1], v[2], v[3])
    }

    /// The low eight 16-bit lanes, each a value in `0..=255`.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn to_u8(v: __m256i) -> [u8; 8] {
        let v = _mm256_castsi256_si128(v);
        // Each lane holds a value in 0..=255, so the narrowing is exact.
        [
            _mm_extract_epi16::<0>(v) as u8,
            _mm_extract_epi16::<1>(v) as u8,
            _mm_extract_epi16::<2>(v) as u8,
            _mm_extract_epi16::<3>(v) as u8,
            _mm_extract_epi16::<4>(v) as u8,
            _mm_extract_epi16::<5>(v) as u8,
            _mm_extract_epi16::<6>(v) as u8,
            _mm_extract_epi16::<7>(v) as u8,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(shift_round(5, 1), 3);
        assert_eq!(shift_round(-5, 1), -3);
        assert_eq!(shift_round(4, 1), 2);
        assert_eq!(shift_round(-4, 1), -2);
        assert_eq!(shift_round(3, 1), 2);
        assert_eq!(shift_round(-3, 1), -2);
        assert_eq!(shift_round(1, 2), 0);
        assert_eq!(shift_round(2, 2), 1);
        assert_eq!(shift_round(-2, 2), -1);
        assert_eq!(shift_round(7, 0), 7);
        assert_eq!(shift_round(-7, 0), -7);
        for x in -1000i64..1000 {
            for s in 0..12 {
                let d = (1i64 << s) as i128;
                let q = (2 * i128::from(x) + x.signum() as i128 * d) / (2 * d);
                assert_eq!(i128::from(shift_round(x, s)), q, "{x} >> {s}");
            }
        }
    }

    #[test]
    fn extreme_products_do_not_overflow() {
        let max = Requant {
            mult: i32::MAX,
            shift: SHIFT_MAX,
        };
        for acc in [i32::MIN, i32::MIN + 1, -1, 0, 1, i32::MAX] {
            let r = max.apply(acc);
            assert!(r.abs() <= 1, "{acc} → {r}");
        }
        let wide = Requant {
            mult: i32::MAX,
            shift: 0,
        };
        assert_eq!(
            wide.apply(i32::MIN),
            i64::from(i32::MIN) * i64::from(i32::MAX)
        );
        assert_eq!(Requant::ONE.apply(-12345), -12345);
    }

    #[test]
    fn relu_columns_match_the_scalar_rule() {
        let mut requant = Vec::new();
        for shift in [0, 1, 5, 13, 30, 31, 45, 62] {
            for mult in [0, 1, 3 << 29, (1 << 30) + 12345, i32::MAX] {
                requant.push(Requant { mult, shift });
            }
        }
        // 43 rows: five blocks of eight and a rest of three.
        requant.extend_from_slice(&[Requant::ONE, Requant { mult: 7, shift: 2 }, Requant::ONE]);
        let relu = Relu::new(&requant);
        let mut out = vec![0u8; requant.len()];
        let mut portable = vec![0u8; requant.len()];
        for acc in [
            i32::MIN,
            -70_000,
            -1,
            0,
            1,
            2,
            127,
            255,
            256,
            99_999,
            1 << 30,
            i32::MAX,
        ] {
            // Neighbouring rows see different accumulators, so swapped lanes would show.
            let acc: Vec<i32> = (0..requant.len() as i32)
                .map(|r| acc.saturating_add(r * 37))
                .collect();
            relu.apply(&acc, &mut out);
            relu.apply_portable(&acc, &mut portable, 0);
            assert_eq!(out, portable, "dispatched and portable copies");
            for ((q, &a), &o) in requant.iter().zip(&acc).zip(&out) {
                assert_eq!(i32::from(o), clamp_i32(q.apply(a), 0, 255), "{a} {q:?}");
            }
        }
    }

    #[test]
    fn multiplier_scales() {
        // 0.75 = 3·2^30 / 2^32
        let m = Requant {
            mult: 3 << 29,
            shift: 31,
        };
        assert_eq!(m.apply(100), 75);
        assert_eq!(m.apply(-2), -2); // −1.5 → −2
        assert_eq!(m.apply(2), 2); // 1.5 → 2
    }
}
