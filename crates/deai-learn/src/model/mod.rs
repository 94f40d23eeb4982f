//! Models as flat parameter vectors with a fixed layout, and the burn code that runs them.
//!
//! A [`ModelKind`] fixes the parameter order ([`ModelKind::layout`]); everything outside this
//! module sees only `&[f32]` in that order. Burn types never leave [`backend`], so the backend
//! can be swapped without touching strategies, DP or the driver.

mod backend;
pub mod optim;

use rand::Rng as _;

use crate::data::Dataset;
use crate::error::{LearnError, Result};
use crate::rng::Rng;

pub use backend::{evaluate, loss_and_grad};

/// One named tensor in the flat layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    /// Name, e.g. `fc1.weight`.
    pub name: &'static str,
    /// Tensor shape (linear weights are `[in, out]`, conv weights `[out, in, k, k]`).
    pub shape: Vec<usize>,
    /// Fan-in used by the default initialisation `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`.
    pub fan_in: usize,
}

impl ParamSpec {
    /// Number of values in the tensor.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor is empty (never, for the built-in models).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The model architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// Multinomial logistic regression: `Linear(inputs, classes)`.
    Logistic {
        /// Input features.
        inputs: usize,
        /// Output classes.
        classes: usize,
    },
    /// `Linear(inputs, hidden) → ReLU → Linear(hidden, classes)`.
    Mlp {
        /// Input features.
        inputs: usize,
        /// Hidden units.
        hidden: usize,
        /// Output classes.
        classes: usize,
    },
    /// Small CNN for `side × side` grey images: conv5(1→c1) → ReLU → maxpool2 → conv5(c1→c2)
    /// → ReLU → maxpool2 → Linear(c2·s·s, classes).
    Cnn {
        /// Image side in pixels (28 for Fashion-MNIST).
        side: usize,
        /// First conv's channels.
        c1: usize,
        /// Second conv's channels.
        c2: usize,
        /// Output classes.
        classes: usize,
    },
    /// Character LSTM: one-hot ids → embedding → LSTM over `seq` steps → Linear(hidden, vocab)
    /// on the last hidden state (gate order i, f, g, o).
    CharLstm {
        /// Characters of context.
        seq: usize,
        /// Vocabulary size (input ids and output classes).
        vocab: usize,
        /// Embedding width.
        embed: usize,
        /// LSTM hidden units.
        hidden: usize,
    },
}

impl ModelKind {
    /// Builds a model by name for data with `inputs` features and `classes` classes.
    pub fn from_name(name: &str, inputs: usize, classes: usize) -> Result<Self> {
        match name {
            "mlp" => Ok(Self::Mlp {
                inputs,
                hidden: 128,
                classes,
            }),
            "logistic" | "logreg" => Ok(Self::Logistic { inputs, classes }),
            "cnn" => {
                let side = (inputs as f64).sqrt() as usize;
                if side * side != inputs || side < 12 {
                    return Err(LearnError::config(
                        "model",
                        name,
                        "cnn needs square images ≥ 12×12",
                    ));
                }
                Ok(Self::Cnn {
                    side,
                    c1: 8,
                    c2: 16,
                    classes,
                })
            }
            other => Err(LearnError::config(
                "model",
                other,
                "expected mlp, logistic or cnn",
            )),
        }
    }

    /// The name [`ModelKind::from_name`] accepts.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Logistic { .. } => "logistic",
            Self::Mlp { .. } => "mlp",
            Self::Cnn { .. } => "cnn",
            Self::CharLstm { .. } => "lstm",
        }
    }

    /// The flat parameter order.
    pub fn layout(&self) -> Vec<ParamSpec> {
        let linear = |w: &'static str, b: &'static str, i: usize, o: usize| {
            [
                ParamSpec {
                    name: w,
                    shape: vec![i, o],
                    fan_in: i,
                },
                ParamSpec {
                    name: b,
                    shape: vec![o],
                    fan_in: i,
                },
            ]
        };
        let conv = |w: &'static str, b: &'static str, i: usize, o: usize| {
            [
                ParamSpec {
                    name: w,
                    shape: vec![o, i, 5, 5],
                    fan_in: i * 25,
                },
                ParamSpec {
                    name: b,
                    shape: vec![o],
                    fan_in: i * 25,
                },
            ]
        };
        match *self {
            Self::Logistic { inputs, classes } => {
                linear("fc.weight", "fc.bias", inputs, classes).into()
            }
            Self::Mlp {
                inputs,
                hidden,
                classes,
            } => {
                let mut v = linear("fc1.weight", "fc1.bias", inputs, hidden).to_vec();
                v.extend(linear("fc2.weight", "fc2.bias", hidden, classes));
                v
            }
            Self::Cnn {
                side,
                c1,
                c2,
                classes,
            } => {
                let s = ((side - 4) / 2 - 4) / 2;
                let mut v = conv("conv1.weight", "conv1.bias", 1, c1).to_vec();
                v.extend(conv("conv2.weight", "conv2.bias", c1, c2));
                v.extend(linear("fc.weight", "fc.bias", c2 * s * s, classes));
                v
            }
            Self::CharLstm {
                vocab,
                embed,
                hidden,
                ..
            } => {
                let h4 = 4 * hidden;
                let mut v = vec![
                    ParamSpec {
                        name: "embed.weight",
                        shape: vec![vocab, embed],
                        fan_in: 1,
                    },
                    ParamSpec {
                        name: "lstm.w_ih",
                        shape: vec![embed, h4],
                        fan_in: hidden,
                    },
                    ParamSpec {
                        name: "lstm.w_hh",
                        shape: vec![hidden, h4],
                        fan_in: hidden,
                    },
                    ParamSpec {
                        name: "lstm.bias",
                        shape: vec![h4],
                        fan_in: hidden,
                    },
                ];
                v.extend(linear("fc.weight", "fc.bias", hidden, vocab));
                v
            }
        }
    }

    /// Total number of parameters.
    pub fn num_params(&self) -> usize {
        self.layout().iter().map(ParamSpec::len).sum()
    }

    /// Features per input sample.
    pub fn inputs(&self) -> usize {
        match *self {
            Self::Logistic { inputs, .. } | Self::Mlp { inputs, .. } => inputs,
            Self::Cnn { side, .. } => side * side,
            Self::CharLstm { seq, .. } => seq,
        }
    }

    /// Output classes.
    pub fn classes(&self) -> usize {
        match *self {
            Self::Logistic { classes, .. }
            | Self::Mlp { classes, .. }
            | Self::Cnn { classes, .. } => classes,
            Self::CharLstm { vocab, .. } => vocab,
        }
    }

    /// Fresh parameters: every weight and bias from `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, drawn
    /// in layout order.
    pub fn init(&self, rng: &mut Rng) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.num_params());
        for spec in self.layout() {
            let bound = 1.0 / (spec.fan_in as f64).sqrt();
            out.extend((0..spec.len()).map(|_| rng.gen_range(-bound..bound) as f32));
        }
        out
    }

    /// Checks that `data` fits this model's input and output sizes.
    pub fn check_data(&self, data: &Dataset) -> Result<()> {
        if data.sample_len != self.inputs() || data.classes > self.classes() {
            let reason = format!(
                "model takes {} features and {} classes, data has {} and {}",
                self.inputs(),
                self.classes(),
                data.sample_len,
                data.classes
            );
            return Err(LearnError::config("model", self.name(), reason));
        }
        Ok(())
    }
}

/// Accuracy and mean loss of a model on a data set.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Metrics {
    /// Share of samples whose argmax equals the label.
    pub accuracy: f64,
    /// Mean softmax cross-entropy.
    pub loss: f64,
    /// Number of samples evaluated.
    pub samples: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_mlp_has_9610_params() {
        let m = ModelKind::Mlp {
            inputs: 64,
            hidden: 128,
            classes: 10,
        };
        assert_eq!(m.num_params(), 9610);
        let p = m.init(&mut crate::rng::stream("t", &[0]));
        assert_eq!(p.len(), 9610);
        let bound = 1.0 / 8.0;
        assert!(p[..64 * 128].iter().all(|v| v.abs() <= bound));
        let fc2_bound = 1.0 / 128f32.sqrt();
        assert!(p[64 * 128 + 128..].iter().all(|v| v.abs() <= fc2_bound));
        assert!(
            p[..8192].iter().any(|v| v.abs() > fc2_bound),
            "fc1 uses its own fan-in"
        );
    }

    /// A few random samples for `kind` (ids for the LSTM, [0, 1) values otherwise).
    fn batch(kind: &ModelKind, n: usize) -> (Vec<f32>, Vec<u32>) {
        let mut rng = crate::rng::stream("t/batch", &[n as u64]);
        let ids = matches!(kind, ModelKind::CharLstm { .. });
        let x = (0..n * kind.inputs())
            .map(|_| {
                if ids {
                    rng.gen_range(0..kind.classes()) as f32
                } else {
                    rng.gen_range(0.0..1.0)
                }
            })
            .collect();
        let y = (0..n)
            .map(|_| rng.gen_range(0..kind.classes() as u32))
            .collect();
        (x, y)
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let kind = ModelKind::Mlp {
            inputs: 6,
            hidden: 5,
            classes: 3,
        };
        let w = kind.init(&mut crate::rng::stream("t", &[1]));
        let (x, y) = batch(&kind, 4);
        let (_, g) = loss_and_grad(&kind, &w, &x, &y);
        for i in [0, 7, 31, 40, kind.num_params() - 1] {
            let h = 1e-2f32;
            let (mut up, mut down) = (w.clone(), w.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (loss_and_grad(&kind, &up, &x, &y).0
                - loss_and_grad(&kind, &down, &x, &y).0)
                / (2.0 * f64::from(h));
            assert!(
                (numeric - f64::from(g[i])).abs() < 2e-3,
                "param {i}: {numeric} vs {}",
                g[i]
            );
        }
    }

    #[test]
    fn a_gradient_step_lowers_the_loss_for_every_model() {
        let kinds = [
            ModelKind::Logistic {
                inputs: 64,
                classes: 10,
            },
            ModelKind::Mlp {
                inputs: 64,
                hidden: 16,
                classes: 10,
            },
            ModelKind::from_name("cnn", 784, 10).expect("28x28"),
            ModelKind::CharLstm {
                seq: 12,
                vocab: 20,
                embed: 4,
                hidden: 8,
            },
        ];
        for kind in kinds {
            let w = kind.init(&mut crate::rng::stream("t", &[2]));
            let (x, y) = batch(&kind, 5);
            let (before, g) = loss_and_grad(&kind, &w, &x, &y);
            assert_eq!(g.len(), kind.num_params(), "{}", kind.name());
            assert!(
                g.iter().any(|v| *v != 0.0),
                "{}: some gradient",
                kind.name()
            );
            let stepped: Vec<f32> = w.iter().zip(&g).map(|(a, b)| a - 0.05 * b).collect();
            let (after, _) = loss_and_grad(&kind, &stepped, &x, &y);
            assert!(after < before, "{}: {after} !< {before}", kind.name());
        }
    }

    /// Evaluation splits the data into batches on the thread pool: every sample counts once
    /// (the partial last batch too) and the result is the same whatever the thread count.
    #[test]
    fn evaluation_covers_every_sample_whatever_the_thread_count() {
        let kind = ModelKind::Mlp {
            inputs: 8,
            hidden: 6,
            classes: 4,
        };
        let w = kind.init(&mut crate::rng::stream("t", &[2]));
        let (x, y) = batch(&kind, 1234);
        let data = crate::data::Dataset::new("t", x.clone(), y.clone(), 8, 4).expect("valid");
        let on = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool")
                .install(|| evaluate(&kind, &w, &data))
        };
        let one = on(1);
        assert_eq!(one, on(3));
        assert_eq!(one.samples, 1234);
        let (mean_loss, _) = loss_and_grad(&kind, &w, &x, &y);
        assert!(
            (one.loss - mean_loss).abs() < 1e-5,
            "{} vs {mean_loss}",
            one.loss
        );
        let argmax_hits = x
            .chunks_exact(8)
            .zip(&y)
            .filter(|(xi, yi)| {
                let one = crate::data::Dataset::new("s", xi.to_vec(), vec![**yi], 8, 4);
                evaluate(&kind, &w, &one.expect("valid")).accuracy == 1.0
            })
            .count();
        assert_eq!(one.accuracy, argmax_hits as f64 / 1234.0);
    }

    #[test]
    fn cnn_layout_fits_28x28() {
        let m = ModelKind::from_name("cnn", 784, 10).expect("28x28");
        assert_eq!(
            m.num_params(),
            8 * 25 + 8 + 16 * 8 * 25 + 16 + 16 * 16 * 10 + 10
        );
    }
}
