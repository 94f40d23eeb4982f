//! Accuracy and throughput harnesses behind `deai bench infer` and `deai model quantize`
//! (feature `bench`).
//!
//! [`accuracy_report`] trains float models centrally with deai-learn, quantizes them and
//! compares test accuracy; [`engine_qps`] times the integer engine against burn's float
//! inference of the same model in this process. Floats and clocks are fine here: nothing below
//! is on the verified path.

use std::hint::black_box;
use std::time::Instant;

use deai_learn::data::{Dataset, digits, fashion, shakespeare};
use deai_learn::model::optim::{LocalTrain, Optimizer, train};
use deai_learn::model::{ModelKind, evaluate};
use deai_learn::rng;

use crate::features::input_from_features;
use crate::quantize::{
    QuantizeConfig, QuantizeError, Rounding, arch_of, float, quantize, quantize_with,
};
use crate::{Input, QuantModel, infer, infer_batch};

/// Why a harness could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Loading data or training failed (e.g. Fashion-MNIST not installed).
    #[error(transparent)]
    Learn(#[from] deai_learn::LearnError),
    /// Quantizing failed.
    #[error(transparent)]
    Quantize(#[from] QuantizeError),
    /// A test sample could not be converted to input bytes.
    #[error(transparent)]
    Feature(#[from] crate::features::FeatureError),
}

/// Float against quantized accuracy of one model on one data set.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AccuracyRow {
    /// `digits` or `fashion-mnist`.
    pub dataset: &'static str,
    /// Architecture, e.g. `mlp 64-128-10`.
    pub model: String,
    /// Training samples the float model saw.
    pub train_samples: usize,
    /// Test samples both were scored on.
    pub test_samples: usize,
    /// deai-learn (burn) float accuracy.
    pub float_accuracy: f64,
    /// Integer engine accuracy.
    pub quant_accuracy: f64,
    /// `(float − quant) · 100`, in percentage points (negative: quantized is better).
    pub drop_pt: f64,
    /// Share of test samples whose quantized class equals the float argmax (`None` where the
    /// float reference has no per-sample logits here: the character model).
    pub agreement: Option<f64>,
    /// Integer accuracy with every weight rounded to nearest ([`Rounding::Nearest`]) instead of
    /// with error feedback: what the feedback buys.
    pub nearest_quant_accuracy: f64,
    /// [`Self::agreement`] with nearest rounding.
    pub nearest_agreement: Option<f64>,
    /// BLAKE3 of the quantized blob, hex.
    pub model_hash: String,
    /// Size of the blob.
    pub blob_bytes: usize,
    /// [`QuantModel::ops`] per query.
    pub ops: u64,
}

/// What [`accuracy_report`] trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccuracyConfig {
    /// Seed of initialisation and batch order.
    pub seed: u64,
    /// Fashion-MNIST training samples (the first ones of the 60,000; `None`: all).
    pub fashion_train: Option<usize>,
    /// Fashion-MNIST test samples (`None`: all 10,000).
    pub fashion_test: Option<usize>,
    /// Whether to include the Fashion-MNIST models at all.
    pub fashion: bool,
    /// Whether to include the Shakespeare character model (slow to train on a CPU).
    pub shakespeare: bool,
}

impl Default for AccuracyConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            fashion_train: Some(20_000),
            fashion_test: None,
            fashion: true,
            shakespeare: false,
        }
    }
}

/// Trains a float model on `data` from a seeded initialisation with Adam.
pub fn train_float(
    kind: &ModelKind,
    data: &Dataset,
    epochs: usize,
    lr: f32,
    batch: usize,
    seed: u64,
) -> Result<Vec<f32>, BenchError> {
    let init = kind.init(&mut rng::stream("deai-infer/bench-init", &[seed]));
    let cfg = LocalTrain {
        lr,
        epochs,
        batch,
        optimizer: Optimizer::ADAM,
        prox_mu: 0.0,
    };
    let mut order = rng::stream("deai-infer/bench-train", &[seed]);
    Ok(train(kind, &init, data, &cfg, &mut order)?.params)
}

/// Quantizes `params` (calibrating on `calibration`) and scores float and integer models on
/// `test`.
pub fn compare(
    dataset: &'static str,
    kind: &ModelKind,
    params: &[f32],
    calibration: &Dataset,
    test: &Dataset,
    train_samples: usize,
) -> Result<AccuracyRow, BenchError> {
    let model = quantize(kind, params, calibration)?;
    let nearest = QuantizeConfig {
        rounding: Rounding::Nearest,
        ..QuantizeConfig::default()
    };
    let float_classes = float_classes(kind, params, test);
    let (quant_accuracy, agreement) = score(&model, test, &float_classes)?;
    let (nearest_quant_accuracy, nearest_agreement) = score(
        &quantize_with(kind, params, calibration, &nearest)?,
        test,
        &float_classes,
    )?;
    let float_accuracy = evaluate(kind, params, test).accuracy;
    let blob = model.encode();
    Ok(AccuracyRow {
        dataset,
        model: describe(kind),
        train_samples,
        test_samples: test.len(),
        float_accuracy,
        quant_accuracy,
        drop_pt: (float_accuracy - quant_accuracy) * 100.0,
        agreement,
        nearest_quant_accuracy,
        nearest_agreement,
        model_hash: blake3::hash(&blob).to_hex().to_string(),
        blob_bytes: blob.len(),
        ops: model.ops(),
    })
}

/// The float model's class of each `test` sample (`None` for the character model).
fn float_classes(kind: &ModelKind, params: &[f32], test: &Dataset) -> Vec<Option<u32>> {
    (0..test.len())
        .map(|i| float::logits(kind, params, test.sample(i)).map(|z| first_argmax(&z)))
        .collect()
}

/// Share of `test` samples whose class under the quantized `model` is the class of the float
/// model `params` it came from (`None` for the character model, which has no float logits
/// here).
pub fn agreement(
    model: &QuantModel,
    kind: &ModelKind,
    params: &[f32],
    test: &Dataset,
) -> Result<Option<f64>, BenchError> {
    Ok(score(model, test, &float_classes(kind, params, test))?.1)
}

/// `model`'s accuracy on `test`, and the share of samples whose class equals the float class
/// (of those that have one).
fn score(
    model: &QuantModel,
    test: &Dataset,
    float_classes: &[Option<u32>],
) -> Result<(f64, Option<f64>), BenchError> {
    let outputs = infer_batch(model, &inputs(model, test)?);
    let (mut hits, mut agree, mut compared) = (0usize, 0usize, 0usize);
    for (i, out) in outputs.iter().enumerate() {
        hits += usize::from(out.class == test.labels[i]);
        if let Some(class) = float_classes[i] {
            agree += usize::from(out.class == class);
            compared += 1;
        }
    }
    Ok((
        hits as f64 / test.len().max(1) as f64,
        (compared > 0).then(|| agree as f64 / compared as f64),
    ))
}

/// Trains, quantizes and scores: digits logistic and MLP 64-128-10; Fashion-MNIST MLP
/// 784-128-10 and the CNN (when `cfg.fashion`); the Shakespeare character LSTM (when
/// `cfg.shakespeare`).
pub fn accuracy_report(cfg: &AccuracyConfig) -> Result<Vec<AccuracyRow>, BenchError> {
    let (train_d, test_d) = digits::split(&digits::load()?);
    let mut rows = Vec::new();
    let logistic = ModelKind::Logistic {
        inputs: 64,
        classes: 10,
    };
    let w = train_float(&logistic, &train_d, 40, 0.01, 32, cfg.seed)?;
    rows.push(compare(
        "digits",
        &logistic,
        &w,
        &train_d,
        &test_d,
        train_d.len(),
    )?);
    let mlp = ModelKind::Mlp {
        inputs: 64,
        hidden: 128,
        classes: 10,
    };
    let w = train_float(&mlp, &train_d, 40, 0.003, 32, cfg.seed)?;
    rows.push(compare(
        "digits",
        &mlp,
        &w,
        &train_d,
        &test_d,
        train_d.len(),
    )?);
    if cfg.shakespeare {
        rows.push(shakespeare_row(cfg.seed)?);
    }
    if !cfg.fashion {
        return Ok(rows);
    }
    let (train_f, test_f) = fashion::load(None)?;
    let train_f = cfg
        .fashion_train
        .map_or(train_f.clone(), |n| train_f.head(n));
    let test_f = cfg.fashion_test.map_or(test_f.clone(), |n| test_f.head(n));
    let mlp = ModelKind::Mlp {
        inputs: 784,
        hidden: 128,
        classes: 10,
    };
    let w = train_float(&mlp, &train_f, 4, 0.001, 64, cfg.seed)?;
    rows.push(compare(
        "fashion-mnist",
        &mlp,
        &w,
        &train_f,
        &test_f,
        train_f.len(),
    )?);
    let cnn = ModelKind::from_name("cnn", 784, 10)?;
    let w = train_float(&cnn, &train_f, 3, 0.002, 32, cfg.seed)?;
    rows.push(compare(
        "fashion-mnist",
        &cnn,
        &w,
        &train_f,
        &test_f,
        train_f.len(),
    )?);
    Ok(rows)
}

/// The character model deai serves (`seq 80, vocab 95, embed 8, hidden 64`, as `deai bench
/// infer` times it), trained on the first 30 speaking roles of 2,000+ characters (a sample every
/// 20 characters), scored on next-character accuracy of their held-out 20 %.
fn shakespeare_row(seed: u64) -> Result<AccuracyRow, BenchError> {
    let fed = shakespeare::load(30, 2_000, 20)?;
    let kind = ModelKind::CharLstm {
        seq: shakespeare::SEQ,
        vocab: shakespeare::VOCAB,
        embed: 8,
        hidden: 64,
    };
    let w = train_float(&kind, &fed.train, 2, 0.003, 32, seed)?;
    compare(
        "shakespeare",
        &kind,
        &w,
        &fed.train.head(2_000),
        &fed.test,
        fed.train.len(),
    )
}

/// Integer engine against burn float inference of one model, in this process.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Throughput {
    /// Architecture, e.g. `cnn 28x28 8-16-10`.
    pub model: String,
    /// Queries timed per batched measurement.
    pub queries: usize,
    /// Rayon threads of the batched measurements.
    pub threads: usize,
    /// Integer engine, [`infer_batch`] on the whole pool, queries per second.
    pub engine_qps: f64,
    /// burn, `evaluate` on the whole pool (batches of 500), queries per second.
    pub burn_qps: f64,
    /// Integer engine on one thread, queries per second.
    pub engine_qps_1t: f64,
    /// burn on one thread (batches of 500), queries per second.
    pub burn_qps_1t: f64,
    /// Integer engine, one query at a time (a provider's per-request latency), µs.
    pub engine_latency_us: f64,
    /// burn, one query at a time, µs.
    pub burn_latency_us: f64,
    /// `engine_qps / burn_qps`.
    pub speedup: f64,
}

/// Times the digits MLP 64-128-10 and (when `fashion`) the Fashion-MNIST CNN; the best of
/// `repeats` runs each. Weights are a seeded initialisation: speed does not depend on them.
pub fn engine_qps(repeats: usize, fashion: bool) -> Result<Vec<Throughput>, BenchError> {
    let (_, test_d) = digits::split(&digits::load()?);
    let mlp = ModelKind::Mlp {
        inputs: 64,
        hidden: 128,
        classes: 10,
    };
    let w = mlp.init(&mut rng::stream("deai-infer/bench-init", &[0]));
    let mut out = vec![throughput(&mlp, &w, &test_d, repeats)?];
    if fashion {
        let (_, test_f) = fashion::load(Some(2000))?;
        let cnn = ModelKind::from_name("cnn", 784, 10)?;
        let w = cnn.init(&mut rng::stream("deai-infer/bench-init", &[0]));
        out.push(throughput(&cnn, &w, &test_f, repeats)?);
    }
    Ok(out)
}

/// Times one model on `data` (also its calibration set).
pub fn throughput(
    kind: &ModelKind,
    params: &[f32],
    data: &Dataset,
    repeats: usize,
) -> Result<Throughput, BenchError> {
    let model = quantize(kind, params, data)?;
    let inputs = inputs(&model, data)?;
    let n = inputs.len().max(1) as f64;
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool builds");
    let best = |f: &dyn Fn()| {
        (0..repeats.max(1))
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let engine_s = best(&|| {
        black_box(infer_batch(&model, &inputs));
    });
    let burn_s = best(&|| {
        black_box(evaluate(kind, params, data));
    });
    let engine_1t = best(&|| {
        one.install(|| black_box(infer_batch(&model, &inputs)));
    });
    let burn_1t = best(&|| {
        one.install(|| black_box(evaluate(kind, params, data)));
    });
    // One query at a time: the engine on every sample, burn on a slice (each call builds
    // tensors from scratch, which is what serving one request costs it).
    let singles = data.len().min(200);
    let engine_lat = best(&|| {
        for x in &inputs {
            black_box(infer(&model, x));
        }
    }) / n;
    let burn_lat = best(&|| {
        for i in 0..singles {
            one.install(|| black_box(evaluate(kind, params, &data.subset(&[i]))));
        }
    }) / singles.max(1) as f64;
    Ok(Throughput {
        model: describe(kind),
        queries: inputs.len(),
        threads: rayon::current_num_threads(),
        engine_qps: n / engine_s,
        burn_qps: n / burn_s,
        engine_qps_1t: n / engine_1t,
        burn_qps_1t: n / burn_1t,
        engine_latency_us: engine_lat * 1e6,
        burn_latency_us: burn_lat * 1e6,
        speedup: burn_s / engine_s,
    })
}

/// Every sample of `data` as input bytes for `model`.
fn inputs(model: &QuantModel, data: &Dataset) -> Result<Vec<Input>, BenchError> {
    (0..data.len())
        .map(|i| Ok(input_from_features(model, data.sample(i))?))
        .collect()
}

fn first_argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

fn describe(kind: &ModelKind) -> String {
    arch_of(kind).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bound on every model of the report: quantized test accuracy within 0.5
    /// points of float. Trains on Fashion-MNIST (minutes in a debug build), hence ignored;
    /// `cargo test -p deai-infer -- --ignored` runs it.
    #[test]
    #[ignore = "trains four models, Fashion-MNIST included (minutes)"]
    fn quantized_accuracy_is_within_half_a_point_everywhere() {
        let rows = accuracy_report(&AccuracyConfig::default()).expect("data installed");
        for row in &rows {
            println!("{row:?}");
            assert!(
                row.drop_pt <= 0.5,
                "{} on {}: {row:?}",
                row.model,
                row.dataset
            );
            assert!(row.agreement.is_some_and(|a| a >= 0.98), "{row:?}");
        }
    }
}
