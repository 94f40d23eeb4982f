//! `deai model quantize`: a trained float model (safetensors, as training writes it) to the
//! deterministic integer model providers serve and validators re-execute (`deai-qm1`).
//!
//! The quantized blob's BLAKE3 is what offers and receipts name. Both models are scored on the
//! data set's test split, so the accuracy the conversion costs is printed beside the hash.

use std::path::PathBuf;

use anyhow::Context as _;
use deai_infer::features::input_from_features;
use deai_learn::{
    data::{Dataset, digits, fashion},
    model::{ModelKind, evaluate},
};
use serde::Serialize;

/// A drop above this many percentage points is reported as a warning.
const DROP_WARN_PT: f64 = 0.5;

/// Arguments of `deai model quantize`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  deai model quantize --weights final.safetensors --model logistic --out m.qm")]
pub struct Args {
    /// The float model: safetensors weights in the model's layout (what a task's rounds produce).
    #[arg(long)]
    pub weights: PathBuf,
    /// The architecture: mlp, logistic or cnn.
    #[arg(long)]
    pub model: String,
    /// Data set the model was trained for (calibration from its training split, scores on its
    /// test split): digits or fashion-mnist.
    #[arg(long, default_value = "digits")]
    pub data: String,
    /// Where to write the quantized model (default: the weights' path with extension `.qm`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON object instead of a human summary.
    #[arg(long)]
    pub json: bool,
}

/// What the conversion produced.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The architecture, e.g. `mlp 64-128-10`.
    pub model: String,
    /// Data set of calibration and scoring.
    pub data: String,
    /// The quantized model's file.
    pub out: PathBuf,
    /// BLAKE3 of the quantized blob, hex: what offers and receipts name.
    pub model_hash: String,
    /// Size of the blob.
    pub bytes: usize,
    /// Integer operations per query (bounds what a dispute costs a validator).
    pub ops: u64,
    /// Test samples scored.
    pub test_samples: usize,
    /// Float accuracy on the test split.
    pub float_accuracy: f64,
    /// Integer engine accuracy on the test split.
    pub quantized_accuracy: f64,
    /// (float − quantized) × 100, percentage points.
    pub drop_pt: f64,
}

/// Runs `deai model quantize`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let report = convert(&args)?;
    crate::output::emit(args.json, &report, |r| {
        println!("quantized {} ({}) to {}", r.model, r.data, r.out.display());
        println!("  model hash  {}", r.model_hash);
        println!(
            "  size        {} bytes, {} operations per query",
            r.bytes, r.ops
        );
        println!(
            "  accuracy    float {:.2} %, integer {:.2} % on {} test samples ({:+.2} pt)",
            r.float_accuracy * 100.0,
            r.quantized_accuracy * 100.0,
            r.test_samples,
            -r.drop_pt
        );
        if r.drop_pt > DROP_WARN_PT {
            println!(
                "  warning: quantization cost more than {DROP_WARN_PT} pt of accuracy on this \
                 model"
            );
        }
    })
}

/// Quantizes the model `args` names, writes it and scores both models.
pub fn convert(args: &Args) -> anyhow::Result<Report> {
    let (train, test) = load(&args.data)?;
    let kind = ModelKind::from_name(&args.model, train.sample_len, train.classes)
        .with_context(|| format!("--model {}", args.model))?;
    let bytes = std::fs::read(&args.weights)
        .with_context(|| format!("cannot read the weights {}", args.weights.display()))?;
    let params = deai_fed::weights::decode(&kind, &bytes).with_context(|| {
        format!(
            "{} is not a {} model for {} ({} inputs, {} classes)",
            args.weights.display(),
            kind.name(),
            args.data,
            train.sample_len,
            train.classes
        )
    })?;
    let Scored {
        model,
        float_accuracy,
        quantized_accuracy,
    } = quantize_and_score(&kind, &params, &train, &test)?;
    let blob = model.encode();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.weights.with_extension("qm"));
    crate::files::write_atomically(&out, &blob)?;
    Ok(Report {
        model: deai_infer::quantize::arch_of(&kind).to_string(),
        data: args.data.clone(),
        out,
        model_hash: hex::encode(model.hash()),
        bytes: blob.len(),
        ops: model.ops(),
        test_samples: test.len(),
        float_accuracy,
        quantized_accuracy,
        drop_pt: (float_accuracy - quantized_accuracy) * 100.0,
    })
}

/// A quantized model and how it and its float original score.
pub struct Scored {
    /// The integer model.
    pub model: deai_infer::QuantModel,
    /// The float model's test accuracy (deai-learn).
    pub float_accuracy: f64,
    /// The integer model's test accuracy (deai-infer).
    pub quantized_accuracy: f64,
}

/// Quantizes the float `params` of `kind` (calibrated on `train`) and scores both on `test`.
pub fn quantize_and_score(
    kind: &ModelKind,
    params: &[f32],
    train: &Dataset,
    test: &Dataset,
) -> anyhow::Result<Scored> {
    let model = deai_infer::quantize(kind, params, train)?;
    let mut hits = 0usize;
    for i in 0..test.len() {
        let input = input_from_features(&model, test.sample(i))?;
        hits += usize::from(deai_infer::infer(&model, &input).class == test.labels[i]);
    }
    Ok(Scored {
        float_accuracy: evaluate(kind, params, test).accuracy,
        quantized_accuracy: hits as f64 / test.len().max(1) as f64,
        model,
    })
}

/// The training and test splits of a data set by name.
fn load(name: &str) -> anyhow::Result<(Dataset, Dataset)> {
    match name {
        "digits" => Ok(digits::split(&digits::load()?)),
        "fashion-mnist" | "fmnist" => fashion::load(None).context(
            "Fashion-MNIST is not installed: run scripts/install-deps.sh (Debian package \
             dataset-fashion-mnist)",
        ),
        other => anyhow::bail!("--data {other}: expected digits or fashion-mnist"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deai_learn::model::optim::{LocalTrain, Optimizer, train};

    #[test]
    fn a_trained_digits_model_quantizes_to_a_blob_that_scores_like_it() {
        let (train_d, _) = digits::split(&digits::load().expect("digits load"));
        let kind = ModelKind::from_name("logistic", 64, 10).expect("a model");
        let init = kind.init(&mut deai_learn::rng::stream("quantize-test", &[0]));
        let cfg = LocalTrain {
            lr: 0.01,
            epochs: 10,
            batch: 32,
            optimizer: Optimizer::ADAM,
            prox_mu: 0.0,
        };
        let mut order = deai_learn::rng::stream("quantize-test-order", &[0]);
        let params = train(&kind, &init, &train_d, &cfg, &mut order)
            .expect("trains")
            .params;
        let dir = tempfile::tempdir().expect("a temp dir");
        let weights = dir.path().join("model.safetensors");
        std::fs::write(
            &weights,
            deai_fed::weights::encode(&kind, &params).expect("encodes"),
        )
        .expect("writes");
        let args = Args {
            weights: weights.clone(),
            model: "logistic".into(),
            data: "digits".into(),
            out: None,
            json: true,
        };
        let report = convert(&args).expect("converts");
        assert_eq!(report.out, dir.path().join("model.qm"));
        let blob = std::fs::read(&report.out).expect("the blob was written");
        let model = deai_infer::QuantModel::decode(&blob).expect("a valid quantized model");
        assert_eq!(hex::encode(model.hash()), report.model_hash);
        assert_eq!(report.bytes, blob.len());
        assert!(report.float_accuracy > 0.9, "{report:?}");
        assert!(report.drop_pt.abs() <= DROP_WARN_PT, "{report:?}");

        let wrong = Args {
            model: "mlp".into(),
            ..args
        };
        let err = convert(&wrong).expect_err("logistic weights are not an mlp");
        assert!(format!("{err:#}").contains("is not a mlp model"), "{err:#}");
    }
}
