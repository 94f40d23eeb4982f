//! The burn layer: turns flat parameters into tensors on burn's `flex` CPU backend, runs the
//! forward pass, and returns gradients as a flat vector in the same order.
//!
//! Burn ops are single-threaded here (no `rayon` feature), so one call's result is a pure
//! function of its inputs; parallelism happens one level up, across clients (and across the
//! batches of an evaluation).

use burn::tensor::activation::{log_softmax, relu, sigmoid};
use burn::tensor::module::{conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Gradients, Tensor, TensorData};
use rayon::prelude::*;

use super::{Metrics, ModelKind, ParamSpec};
use crate::data::Dataset;

/// Evaluation batch size: bounds memory, not results.
const EVAL_BATCH: usize = 500;

/// A parameter tensor of one of the ranks the models use.
enum Leaf {
    R1(Tensor<1>),
    R2(Tensor<2>),
    R4(Tensor<4>),
}

impl Leaf {
    fn new(values: &[f32], spec: &ParamSpec, device: &Device, track: bool) -> Self {
        let data = TensorData::new(values.to_vec(), spec.shape.clone());
        let leaf = match spec.shape.len() {
            1 => Self::R1(Tensor::from_data(data, device)),
            2 => Self::R2(Tensor::from_data(data, device)),
            4 => Self::R4(Tensor::from_data(data, device)),
            rank => unreachable!("layouts only use ranks 1, 2 and 4, not {rank}"),
        };
        if !track {
            return leaf;
        }
        match leaf {
            Self::R1(t) => Self::R1(t.require_grad()),
            Self::R2(t) => Self::R2(t.require_grad()),
            Self::R4(t) => Self::R4(t.require_grad()),
        }
    }

    fn r1(&self) -> Tensor<1> {
        match self {
            Self::R1(t) => t.clone(),
            _ => unreachable!("layout says rank 1"),
        }
    }

    fn r2(&self) -> Tensor<2> {
        match self {
            Self::R2(t) => t.clone(),
            _ => unreachable!("layout says rank 2"),
        }
    }

    fn r4(&self) -> Tensor<4> {
        match self {
            Self::R4(t) => t.clone(),
            _ => unreachable!("layout says rank 4"),
        }
    }

    /// Appends this leaf's gradient (zeros when it got none) to `out`.
    fn push_grad(&self, grads: &Gradients, len: usize, out: &mut Vec<f32>) {
        let data = match self {
            Self::R1(t) => t.grad(grads).map(Tensor::into_data),
            Self::R2(t) => t.grad(grads).map(Tensor::into_data),
            Self::R4(t) => t.grad(grads).map(Tensor::into_data),
        };
        match data {
            Some(d) => out.extend_from_slice(d.as_slice::<f32>().expect("f32 gradients")),
            None => out.extend(std::iter::repeat_n(0.0, len)),
        }
    }
}

/// Splits `params` into tensors in layout order.
fn leaves(kind: &ModelKind, params: &[f32], device: &Device, track: bool) -> Vec<(Leaf, usize)> {
    let mut offset = 0;
    kind.layout()
        .iter()
        .map(|spec| {
            let len = spec.len();
            let leaf = Leaf::new(&params[offset..offset + len], spec, device, track);
            offset += len;
            (leaf, len)
        })
        .collect()
}

/// `x · w + b` with `w: [in, out]`, `b: [out]`.
fn linear(x: Tensor<2>, w: &Leaf, b: &Leaf) -> Tensor<2> {
    x.matmul(w.r2()).add(b.r1().unsqueeze::<2>())
}

/// Logits `[n, classes]` for `n` samples.
fn forward(kind: &ModelKind, p: &[(Leaf, usize)], x: Tensor<2>) -> Tensor<2> {
    match *kind {
        ModelKind::Logistic { .. } => linear(x, &p[0].0, &p[1].0),
        ModelKind::Mlp { .. } => linear(relu(linear(x, &p[0].0, &p[1].0)), &p[2].0, &p[3].0),
        ModelKind::Cnn { side, .. } => {
            let n = x.dims()[0];
            let conv = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
            let pool = MaxPoolOptions::new([2, 2]);
            let x = x.reshape([n, 1, side, side]);
            let x = conv2d(x, p[0].0.r4(), Some(p[1].0.r1()), conv.clone());
            let x = max_pool2d(relu(x), pool.clone());
            let x = conv2d(x, p[2].0.r4(), Some(p[3].0.r1()), conv);
            let x = max_pool2d(relu(x), pool);
            let flat = x.dims()[1..].iter().product::<usize>();
            linear(x.reshape([n, flat]), &p[4].0, &p[5].0)
        }
        ModelKind::CharLstm {
            seq, embed, hidden, ..
        } => lstm(p, x, seq, embed, hidden),
    }
}

/// The character LSTM on one-hot input `[n · seq, vocab]`.
fn lstm(
    p: &[(Leaf, usize)],
    onehot: Tensor<2>,
    seq: usize,
    embed: usize,
    hidden: usize,
) -> Tensor<2> {
    let n = onehot.dims()[0] / seq;
    let device = onehot.device();
    let e: Tensor<3> = onehot.matmul(p[0].0.r2()).reshape([n, seq, embed]);
    let (w_ih, w_hh, b) = (p[1].0.r2(), p[2].0.r2(), p[3].0.r1().unsqueeze::<2>());
    let mut h: Tensor<2> = Tensor::zeros([n, hidden], &device);
    let mut c: Tensor<2> = Tensor::zeros([n, hidden], &device);
    for t in 0..seq {
        let xt = e.clone().narrow(1, t, 1).reshape([n, embed]);
        let gates = xt
            .matmul(w_ih.clone())
            .add(h.matmul(w_hh.clone()))
            .add(b.clone());
        let gate = |k: usize| gates.clone().narrow(1, k * hidden, hidden);
        let (i, f, g, o) = (
            sigmoid(gate(0)),
            sigmoid(gate(1)),
            gate(2).tanh(),
            sigmoid(gate(3)),
        );
        c = f.mul(c).add(i.mul(g));
        h = o.mul(c.clone().tanh());
    }
    linear(h, &p[4].0, &p[5].0)
}

/// The input tensor: `[n, features]`, or one-hot `[n · seq, vocab]` for the character LSTM.
fn input(kind: &ModelKind, features: &[f32], n: usize, device: &Device) -> Tensor<2> {
    if let ModelKind::CharLstm { vocab, .. } = *kind {
        let mut onehot = vec![0.0f32; features.len() * vocab];
        for (row, &id) in features.iter().enumerate() {
            // Ids are checked by the loader; clamp keeps a bad one from indexing out of bounds.
            onehot[row * vocab + (id.max(0.0) as usize).min(vocab - 1)] = 1.0;
        }
        return Tensor::from_data(TensorData::new(onehot, [features.len(), vocab]), device);
    }
    let width = features.len() / n;
    Tensor::from_data(TensorData::new(features.to_vec(), [n, width]), device)
}

/// Mean softmax cross-entropy of a batch and its gradient with respect to `params`.
///
/// `features` holds `labels.len()` samples back to back.
pub fn loss_and_grad(
    kind: &ModelKind,
    params: &[f32],
    features: &[f32],
    labels: &[u32],
) -> (f64, Vec<f32>) {
    let n = labels.len();
    assert!(
        n > 0 && features.len() == n * kind.inputs(),
        "batch shape checked by the caller"
    );
    let device = Device::flex().autodiff();
    let p = leaves(kind, params, &device, true);
    let logits = forward(kind, &p, input(kind, features, n, &device));
    let classes = kind.classes();
    let mut onehot = vec![0.0f32; n * classes];
    for (i, &l) in labels.iter().enumerate() {
        onehot[i * classes + l as usize] = 1.0;
    }
    let target: Tensor<2> = Tensor::from_data(TensorData::new(onehot, [n, classes]), &device);
    let loss = log_softmax(logits, 1).mul(target).sum_dim(1).mean().neg();
    let grads = loss.backward();
    let loss_value = f64::from(loss.into_data().as_slice::<f32>().expect("f32 loss")[0]);
    let mut grad = Vec::with_capacity(params.len());
    for (leaf, len) in &p {
        leaf.push_grad(&grads, *len, &mut grad);
    }
    (loss_value, grad)
}

/// Accuracy (argmax, first maximum on ties) and mean cross-entropy on `data`.
pub fn evaluate(kind: &ModelKind, params: &[f32], data: &Dataset) -> Metrics {
    // Batches run on the rayon pool (a central test set is the largest single piece of work in a
    // round of few clients); each batch's loss is summed in batch order afterwards, so the
    // result does not depend on the thread count.
    let starts: Vec<usize> = (0..data.len()).step_by(EVAL_BATCH).collect();
    let batches: Vec<(usize, f64)> = starts
        .par_iter()
        .map(|&start| evaluate_batch(kind, params, data, start))
        .collect();
    let (correct, loss) = batches
        .iter()
        .fold((0usize, 0.0f64), |(c, l), &(bc, bl)| (c + bc, l + bl));
    let samples = data.len().max(1);
    Metrics {
        accuracy: correct as f64 / samples as f64,
        loss: loss / samples as f64,
        samples: data.len(),
    }
}

/// Correct predictions and summed loss of the batch of `data` that begins at `start`.
fn evaluate_batch(kind: &ModelKind, params: &[f32], data: &Dataset, start: usize) -> (usize, f64) {
    let device = Device::flex();
    let p = leaves(kind, params, &device, false);
    let classes = kind.classes();
    let n = EVAL_BATCH.min(data.len() - start);
    let x = &data.features[start * data.sample_len..(start + n) * data.sample_len];
    let logp = log_softmax(forward(kind, &p, input(kind, x, n, &device)), 1).into_data();
    let logp = logp.as_slice::<f32>().expect("f32 log-probabilities");
    let (mut correct, mut loss) = (0usize, 0.0f64);
    for (i, row) in logp.chunks_exact(classes).enumerate() {
        let label = data.labels[start + i] as usize;
        loss -= f64::from(row[label]);
        let best = row
            .iter()
            .enumerate()
            .fold(0, |b, (j, &v)| if v > row[b] { j } else { b });
        correct += usize::from(best == label);
    }
    (correct, loss)
}
