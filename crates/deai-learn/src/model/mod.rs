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
        }
    }

    /// Output classes.
    pub fn classes(&self) -> usize {
        match *self {
            Self::Logistic { classes, .. }
            | Self::Mlp { classes, .. }
            | Self::Cnn { classes, .. } => classes,
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

    #[test]
    fn cnn_layout_fits_28x28() {
        let m = ModelKind::from_name("cnn", 784, 10).expect("28x28");
        assert_eq!(
            m.num_params(),
            8 * 25 + 8 + 16 * 8 * 25 + 16 + 16 * 16 * 10 + 10
        );
    }
}
