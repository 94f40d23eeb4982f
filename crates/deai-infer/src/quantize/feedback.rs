//! Error-feedback rounding of a layer's weights (GPTQ/OPTQ, Frantar et al. 2022).
//!
//! Rounding each weight to the nearest grid point makes independent errors `e_j` that add up in
//! the layer's output `Σ_j e_j x_j`. Rounding the weights of a row one at a time and moving each
//! rounding error onto the weights not yet rounded, in proportion to how the inputs co-vary on
//! the calibration set, minimises that output error `E[(Σ e_j x_j)²]` instead. The inputs'
//! second moment `H = E[x xᵀ]` (a [`Gram`]) decides the proportions: with `H⁻¹ = Uᵀ U` (`U` upper
//! triangular), the error of weight `j` scaled by `1 / U[j][j]` moves onto weight `k > j` with
//! factor `U[j][k]`. Inputs that never vary on the calibration set (a dead pixel) neither give nor
//! take error, so a test input that lights one still meets its nearest-rounded weight.
//!
//! This is float work on the quantizer's side only: the blob it produces is the verified object.

/// Relative damping of `H`'s diagonal, as GPTQ: keeps the inverse well conditioned when inputs
/// are (nearly) linearly dependent.
const DAMP: f64 = 0.01;

/// The second moment `Σ x xᵀ` of a layer's calibration inputs.
pub(super) struct Gram {
    cols: usize,
    /// Row-major `cols × cols`; only the upper triangle is summed until [`Gram::factor`].
    sum: Vec<f64>,
    count: usize,
    nonzero: Vec<usize>,
}

impl Gram {
    pub(super) fn new(cols: usize) -> Self {
        Self {
            cols,
            sum: vec![0.0; cols * cols],
            count: 0,
            nonzero: Vec::with_capacity(cols),
        }
    }

    /// Adds one input vector of length `cols` (zeros cost nothing: images are sparse).
    pub(super) fn add(&mut self, x: &[f32]) {
        debug_assert_eq!(x.len(), self.cols);
        self.nonzero.clear();
        self.nonzero.extend(
            x.iter()
                .enumerate()
                .filter(|(_, v)| **v != 0.0)
                .map(|(i, _)| i),
        );
        for (a, &i) in self.nonzero.iter().enumerate() {
            let xi = f64::from(x[i]);
            let row = &mut self.sum[i * self.cols..(i + 1) * self.cols];
            for &j in &self.nonzero[a..] {
                row[j] += xi * f64::from(x[j]);
            }
        }
        self.count += 1;
    }

    /// The upper Cholesky factor `U` of `(H + λI)⁻¹` (row-major), or `None` when there were no
    /// inputs or the matrix is numerically singular (the caller rounds to nearest instead).
    pub(super) fn factor(&self) -> Option<Feedback> {
        let n = self.cols;
        if self.count == 0 {
            return None;
        }
        let moment = |i: usize, j: usize| self.sum[i.min(j) * n + i.max(j)] / self.count as f64;
        // Inputs with the most energy first (GPTQ's activation order): their errors have the
        // most weights left to absorb them.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| moment(b, b).total_cmp(&moment(a, a)).then(a.cmp(&b)));
        let mut h = vec![0.0; n * n];
        for (i, &oi) in order.iter().enumerate() {
            for (j, &oj) in order.iter().enumerate() {
                h[i * n + j] = moment(oi, oj);
            }
        }
        let mean_diag = (0..n).map(|i| h[i * n + i]).sum::<f64>() / n as f64;
        let damp = DAMP * mean_diag.max(f64::MIN_POSITIVE);
        for i in 0..n {
            // A dead input gets a unit diagonal so it is independent of the rest.
            if h[i * n + i] == 0.0 {
                h[i * n + i] = 1.0;
            }
            h[i * n + i] += damp;
        }
        let l = cholesky(&h, n)?;
        let inv = inverse_from_cholesky(&l, n);
        let l2 = cholesky(&inv, n)?;
        // U = L2ᵀ.
        let mut u = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                u[j * n + i] = l2[i * n + j];
            }
        }
        Some(Feedback { order, u })
    }
}

/// What [`round_row`] needs: the rounding order and the factor in that order.
pub(super) struct Feedback {
    order: Vec<usize>,
    u: Vec<f64>,
}

/// Rounds one row `w` (changed in place) at scale `s` to int8 with error feedback through the
/// factor `u` of [`Gram::factor`].
pub(super) fn round_row(row: &[f32], s: f64, f: &Feedback) -> Vec<i8> {
    let n = row.len();
    let u = &f.u;
    let mut w: Vec<f64> = f.order.iter().map(|&i| f64::from(row[i])).collect();
    let mut q = vec![0i8; n];
    for j in 0..n {
        let level = (w[j] / s).round().clamp(-127.0, 127.0);
        q[f.order[j]] = level as i8;
        let err = (w[j] - level * s) / u[j * n + j];
        let urow = &u[j * n..(j + 1) * n];
        for (wk, &ujk) in w[j + 1..].iter_mut().zip(&urow[j + 1..]) {
            *wk -= err * ujk;
        }
    }
    q
}

/// Lower-triangular `L` with `L Lᵀ = a` (row-major `n × n`), or `None` if `a` is not positive
/// definite.
fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let dot: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            let v = a[i * n + j] - dot;
            if i == j {
                if !(v > 0.0 && v.is_finite()) {
                    return None;
                }
                l[i * n + i] = v.sqrt();
            } else {
                l[i * n + j] = v / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// `a⁻¹ = L⁻ᵀ L⁻¹` from the Cholesky factor `L` of `a`.
fn inverse_from_cholesky(l: &[f64], n: usize) -> Vec<f64> {
    // M = L⁻¹, lower triangular, by forward substitution column by column.
    let mut m = vec![0.0; n * n];
    for c in 0..n {
        m[c * n + c] = 1.0 / l[c * n + c];
        for i in c + 1..n {
            let dot: f64 = (c..i).map(|k| l[i * n + k] * m[k * n + c]).sum();
            m[i * n + c] = -dot / l[i * n + i];
        }
    }
    // a⁻¹[i][j] = Σ_k M[k][i] M[k][j], k ≥ max(i, j).
    let mut inv = vec![0.0; n * n];
    for i in 0..n {
        for j in i..n {
            let v: f64 = (j..n).map(|k| m[k * n + i] * m[k * n + j]).sum();
            inv[i * n + j] = v;
            inv[j * n + i] = v;
        }
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gram_of(xs: &[Vec<f32>]) -> Gram {
        let mut g = Gram::new(xs[0].len());
        for x in xs {
            g.add(x);
        }
        g
    }

    #[test]
    fn the_factor_inverts_the_damped_moment_in_energy_order() {
        let xs: Vec<Vec<f32>> = (0..50)
            .map(|i| {
                let t = i as f32 / 50.0;
                vec![0.1 * t, 1.0 - t, (t * 7.0).sin().abs(), 0.0]
            })
            .collect();
        let f = gram_of(&xs).factor().expect("positive definite");
        let n = 4;
        let moment = |a: usize, b: usize| {
            xs.iter()
                .map(|x| f64::from(x[a]) * f64::from(x[b]))
                .sum::<f64>()
                / xs.len() as f64
        };
        // Most energy first; the dead input last.
        assert_eq!(f.order[3], 3);
        assert!(
            (0..3)
                .all(|i| moment(f.order[i], f.order[i]) >= moment(f.order[i + 1], f.order[i + 1]))
        );
        let mut h: Vec<f64> = (0..n * n)
            .map(|ij| moment(f.order[ij / n], f.order[ij % n]))
            .collect();
        let mean_diag = (0..n).map(|i| h[i * n + i]).sum::<f64>() / n as f64;
        for i in 0..n {
            if h[i * n + i] == 0.0 {
                h[i * n + i] = 1.0;
            }
            h[i * n + i] += DAMP * mean_diag;
        }
        let u = &f.u;
        let inv: Vec<f64> = (0..n * n)
            .map(|ij| (0..n).map(|k| u[k * n + ij / n] * u[k * n + ij % n]).sum())
            .collect();
        for i in 0..n {
            for j in 0..n {
                let prod: f64 = (0..n).map(|k| inv[i * n + k] * h[k * n + j]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((prod - want).abs() < 1e-9, "[{i}][{j}] = {prod}");
            }
        }
    }

    /// On correlated inputs, feedback rounding gives a smaller output error than rounding each
    /// weight to nearest; a wrong factor (or feedback in the wrong direction) makes it larger.
    #[test]
    fn feedback_lowers_the_output_error() {
        let xs: Vec<Vec<f32>> = (0..400)
            .map(|i| {
                let a = ((i * 37) % 101) as f32 / 101.0;
                let b = ((i * 53) % 97) as f32 / 97.0;
                (0..16)
                    .map(|j| {
                        let t = j as f32 / 16.0;
                        (a * (1.0 - t) + b * t).clamp(0.0, 1.0)
                    })
                    .collect()
            })
            .collect();
        let g = gram_of(&xs);
        let u = g.factor().expect("positive definite");
        let w32: Vec<f32> = (0..16)
            .map(|j| ((j * 29 % 17) as f32 - 8.0) / 9.7)
            .collect();
        let w: Vec<f64> = w32.iter().map(|&v| f64::from(v)).collect();
        let s = w.iter().fold(0.0f64, |m, v| m.max(v.abs())) / 127.0 * 6.0; // coarse grid
        let nearest: Vec<i8> = w
            .iter()
            .map(|v| (v / s).round().clamp(-127.0, 127.0) as i8)
            .collect();
        let fed = round_row(&w32, s, &u);
        let mse = |q: &[i8]| {
            xs.iter()
                .map(|x| {
                    let e: f64 = x
                        .iter()
                        .zip(&w)
                        .zip(q)
                        .map(|((&xi, &wi), &qi)| (wi - f64::from(qi) * s) * f64::from(xi))
                        .sum();
                    e * e
                })
                .sum::<f64>()
                / xs.len() as f64
        };
        let (n, f) = (mse(&nearest), mse(&fed));
        assert!(f < 0.75 * n, "feedback {f} vs nearest {n}");
    }
}
