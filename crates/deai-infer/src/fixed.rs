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
