//! Random valid models without training (feature `test-utils`): for golden tests here and for
//! other crates' tests of offers, receipts and disputes. Integer-only, so a seed gives the same
//! blob on every machine and in every future version of the float stack.

use super::{ACT_MAX, Dense, HIDDEN_MAX, LUT_LEN, LUT_ZERO, Lstm, Net, Q15_MAX, QuantModel};
use crate::arch::{Arch, CnnGeometry, KERNEL};
use crate::fixed::Requant;

/// A deterministic byte stream: BLAKE3 in XOF mode keyed by a domain tag and the seed.
pub(crate) struct Stream(blake3::OutputReader);

impl Stream {
    pub(crate) fn new(domain: &str, seed: u64) -> Self {
        let mut h = blake3::Hasher::new();
        h.update(domain.as_bytes());
        h.update(&seed.to_le_bytes());
        Self(h.finalize_xof())
    }

    pub(crate) fn u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }

    /// Uniform in `-bound..=bound` (`bound ≥ 0`, tiny modulo bias is fine for tests).
    pub(crate) fn symmetric(&mut self, bound: u32) -> i32 {
        let span = 2 * bound + 1;
        (self.u32() % span) as i32 - bound as i32
    }

    pub(crate) fn below(&mut self, n: u32) -> u32 {
        self.u32() % n
    }
}

impl QuantModel {
    /// A random valid model of `arch`: weights spread over the i8 range (narrower for very wide
    /// layers, to respect the accumulator bound), small biases, multipliers that keep
    /// activations away from all-zero or all-saturated, and integer stand-ins for σ and tanh.
    ///
    /// Panics if `arch` is out of bounds (tests pass fixed, valid architectures).
    pub fn seeded(arch: Arch, seed: u64) -> Self {
        let mut s = Stream::new("deai-infer/seeded-model", seed);
        let input_max = match arch {
            Arch::CharLstm { .. } => 0,
            _ => 255,
        };
        let x0 = i32::from(input_max);
        let k2 = KERNEL * KERNEL;
        let net = match arch {
            Arch::Logistic { inputs, classes } => Net::Logistic {
                fc: dense(&mut s, classes, inputs, x0, true),
            },
            Arch::Mlp {
                inputs,
                hidden,
                classes,
            } => Net::Mlp {
                fc1: dense(&mut s, hidden, inputs, x0, false),
                fc2: dense(&mut s, classes, hidden, ACT_MAX, true),
            },
            Arch::Cnn {
                side,
                c1,
                c2,
                classes,
            } => {
                let g = CnnGeometry::new(side);
                Net::Cnn {
                    conv1: dense(&mut s, c1, k2, x0, false),
                    conv2: dense(&mut s, c2, c1 * k2, ACT_MAX, false),
                    fc: dense(&mut s, classes, c2 * g.pool2 * g.pool2, ACT_MAX, true),
                }
            }
            Arch::CharLstm { vocab, hidden, .. } => Net::CharLstm {
                lstm: lstm(&mut s, vocab, hidden),
                fc: dense(&mut s, vocab, hidden, HIDDEN_MAX, true),
            },
        };
        Self::new(arch, input_max, net).expect("seeded models are built within every bound")
    }
}

fn dense(s: &mut Stream, rows: usize, cols: usize, x_max: i32, logits: bool) -> Dense {
    // Keep Σ|w|·x_max + |bias| under i32::MAX with a factor-2 margin.
    let per_col = (i32::MAX as usize / 2) / (cols * x_max.max(1) as usize);
    let bound = per_col.clamp(1, 127) as u32;
    let weights = (0..rows * cols).map(|_| s.symmetric(bound) as i8).collect();
    let bias = (0..rows).map(|_| s.symmetric(1 << 12)).collect();
    // A typical |acc| is about bound · x_max · sqrt(cols); aim the output near 64 for hidden
    // layers (so ReLU and saturation both happen), keep logits at full resolution.
    let typical = (u64::from(bound) * x_max.max(1) as u64 * isqrt(cols as u64)).max(1);
    let shift = if logits {
        30
    } else {
        30 + (64 - typical.leading_zeros()).saturating_sub(6) as u8
    };
    let requant = (0..rows)
        .map(|_| Requant {
            mult: (1 << 30) + s.below(1 << 30) as i32,
            shift,
        })
        .collect();
    Dense::new(rows, cols, weights, bias, requant)
}

fn lstm(s: &mut Stream, vocab: usize, hidden: usize) -> Lstm {
    let gates = 4 * hidden;
    let input_proj = (0..vocab * gates).map(|_| s.symmetric(600)).collect();
    let mut recurrent = dense(s, gates, hidden, HIDDEN_MAX, false);
    recurrent.bias.iter_mut().for_each(|b| *b = 0);
    // Piecewise-linear stand-ins (slope 1/4 and 1 around 0, saturating): valid tables with the
    // shape of σ and tanh, computed without floats.
    let at = |i: usize| i as i64 - LUT_ZERO;
    let max = i64::from(Q15_MAX);
    let sigmoid = (0..LUT_LEN)
        .map(|i| (16384 + at(i) * 32).clamp(0, max) as i16)
        .collect();
    let tanh = (0..LUT_LEN)
        .map(|i| (at(i) * 128).clamp(-max, max) as i16)
        .collect();
    Lstm {
        input_proj,
        recurrent,
        sigmoid,
        tanh,
    }
}

fn isqrt(n: u64) -> u64 {
    let mut r = 0u64;
    while (r + 1) * (r + 1) <= n {
        r += 1;
    }
    r
}
