use super::*;

#[test]
fn multipliers_are_precise() {
    for m in [0.75, 1.0, 3.5e-4, 0.9999999, 1234.5, 1e-12] {
        let q = requant(m);
        assert!(q.is_valid());
        let back = f64::from(q.mult) / 2f64.powi(i32::from(q.shift));
        assert!(((back - m) / m).abs() < 1e-8, "{m} → {q:?}");
    }
    assert_eq!(requant(0.0), Requant { mult: 0, shift: 0 });
}

use deai_learn::data::digits;
use deai_learn::model::evaluate;
use deai_learn::rng;

use crate::features::input_from_features;
use crate::{infer, infer_batch};

fn random_images(n: usize, len: usize, classes: usize, seed: u64) -> Dataset {
    use rand::Rng as _;
    let mut r = rng::stream("deai-infer/test-images", &[seed]);
    let x = (0..n * len)
        .map(|_| f32::from(r.gen_range(0u8..=255)) / 255.0)
        .collect();
    let y = (0..n).map(|_| r.gen_range(0..classes as u32)).collect();
    Dataset::new("t", x, y, len, classes).expect("shapes agree")
}

/// The float reference used for calibration and agreement computes what deai-learn's burn code
/// computes: same mean cross-entropy on random models of every image kind.
#[test]
fn float_reference_matches_burn() {
    let kinds = [
        ModelKind::Logistic {
            inputs: 784,
            classes: 10,
        },
        ModelKind::Mlp {
            inputs: 784,
            hidden: 32,
            classes: 10,
        },
        ModelKind::from_name("cnn", 784, 10).expect("28x28"),
        ModelKind::Cnn {
            side: 17,
            c1: 3,
            c2: 4,
            classes: 5,
        },
    ];
    for (k, kind) in kinds.iter().enumerate() {
        let data = random_images(20, kind.inputs(), kind.classes(), k as u64);
        let w = kind.init(&mut rng::stream("deai-infer/test", &[k as u64]));
        let burn = evaluate(kind, &w, &data);
        let mut loss = 0f64;
        for i in 0..data.len() {
            let z = float::logits(kind, &w, data.sample(i)).expect("image model");
            let max = z.iter().copied().fold(f32::MIN, f32::max);
            let lse = f64::from(max)
                + z.iter()
                    .map(|&v| f64::from(v - max).exp())
                    .sum::<f64>()
                    .ln();
            loss += lse - f64::from(z[data.labels[i] as usize]);
        }
        loss /= data.len() as f64;
        assert!(
            (loss - burn.loss).abs() < 1e-4,
            "{}: {loss} vs {}",
            kind.name(),
            burn.loss
        );
    }
}

fn trained_digits_mlp() -> (ModelKind, Vec<f32>, Dataset, Dataset) {
    let (train, test) = digits::split(&digits::load().expect("vendored"));
    let kind = ModelKind::Mlp {
        inputs: 64,
        hidden: 128,
        classes: 10,
    };
    let w = crate::bench::train_float(&kind, &train, 15, 0.003, 32, 0).expect("trains");
    (kind, w, train, test)
}

#[test]
fn quantizing_is_deterministic_and_agrees_with_float_on_digits() {
    let (kind, w, train, test) = trained_digits_mlp();
    let a = quantize(&kind, &w, &train).expect("quantizes");
    let b = quantize(&kind, &w, &train).expect("quantizes");
    assert_eq!(a.encode(), b.encode());
    assert_eq!(a.input_max(), 16, "digits sit on a 1/16 grid");
    let inputs: Vec<_> = (0..test.len())
        .map(|i| input_from_features(&a, test.sample(i)).expect("in range"))
        .collect();
    let outs = infer_batch(&a, &inputs);
    let mut agree = 0;
    let mut hits = 0;
    for (i, out) in outs.iter().enumerate() {
        let z = float::logits(&kind, &w, test.sample(i)).expect("image model");
        let best = z
            .iter()
            .enumerate()
            .fold(0, |b, (j, &v)| if v > z[b] { j } else { b });
        agree += usize::from(out.class as usize == best);
        hits += usize::from(out.class == test.labels[i]);
        assert_eq!(*out, infer(&a, &inputs[i]));
    }
    let agreement = agree as f64 / test.len() as f64;
    let float_acc = evaluate(&kind, &w, &test).accuracy;
    let quant_acc = hits as f64 / test.len() as f64;
    println!("digits mlp: float {float_acc:.4} quant {quant_acc:.4} agreement {agreement:.4}");
    assert!(agreement >= 0.98, "agreement {agreement}");
    assert!(float_acc > 0.9, "the float model learned: {float_acc}");
    assert!(
        float_acc - quant_acc <= 0.005,
        "float {float_acc} quant {quant_acc}"
    );
}

#[test]
fn bad_parameters_are_refused() {
    let (train, _) = digits::split(&digits::load().expect("vendored"));
    let kind = ModelKind::Logistic {
        inputs: 64,
        classes: 10,
    };
    let mut w = vec![0.1f32; kind.num_params()];
    assert!(matches!(
        quantize(&kind, &w[1..], &train),
        Err(QuantizeError::Params { .. })
    ));
    w[5] = f32::NAN;
    assert_eq!(
        quantize(&kind, &w, &train),
        Err(QuantizeError::NonFinite(5))
    );
    let wide = ModelKind::Logistic {
        inputs: 65,
        classes: 10,
    };
    assert!(matches!(
        quantize(&wide, &vec![0.0; wide.num_params()], &train),
        Err(QuantizeError::Calibration(_))
    ));
}

/// The character model quantizes and runs; its class agrees with a float LSTM (f64, same
/// gate order) on most random sequences even untrained.
#[test]
fn char_lstm_tracks_its_float_model() {
    use rand::Rng as _;
    let kind = ModelKind::CharLstm {
        seq: 10,
        vocab: 20,
        embed: 6,
        hidden: 12,
    };
    let w: Vec<f32> = kind
        .init(&mut rng::stream("deai-infer/test-lstm", &[0]))
        .iter()
        .map(|v| v * 4.0)
        .collect();
    let mut r = rng::stream("deai-infer/test-lstm-data", &[0]);
    let n = 200;
    let x: Vec<f32> = (0..n * 10).map(|_| r.gen_range(0..20u8) as f32).collect();
    let y: Vec<u32> = (0..n).map(|_| r.gen_range(0..20)).collect();
    let data = Dataset::new("t", x, y, 10, 20).expect("shapes agree");
    let m = quantize(&kind, &w, &data).expect("quantizes");
    let float_acc = evaluate(&kind, &w, &data).accuracy;
    let mut agree = 0;
    for i in 0..n {
        let out = infer(&m, &input_from_features(&m, data.sample(i)).expect("ids"));
        let z = float_lstm(&kind, &w, data.sample(i));
        let best = z
            .iter()
            .enumerate()
            .fold(0, |b, (j, &v)| if v > z[b] { j } else { b });
        agree += usize::from(out.class as usize == best);
    }
    println!("lstm agreement {agree}/{n}, float accuracy {float_acc}");
    assert!(agree * 10 >= n * 8, "agreement {agree}/{n}");
}

fn float_lstm(kind: &ModelKind, params: &[f32], ids: &[f32]) -> Vec<f64> {
    let ModelKind::CharLstm {
        vocab,
        embed,
        hidden,
        ..
    } = *kind
    else {
        unreachable!("lstm only")
    };
    let t = split(kind, params);
    let g4 = 4 * hidden;
    let (mut h, mut c) = (vec![0f64; hidden], vec![0f64; hidden]);
    let sig = |z: f64| 1.0 / (1.0 + (-z).exp());
    for &id in ids {
        let e = &t[0][id as usize * embed..(id as usize + 1) * embed];
        let z: Vec<f64> = (0..g4)
            .map(|r| {
                f64::from(t[3][r])
                    + (0..embed)
                        .map(|k| f64::from(e[k]) * f64::from(t[1][k * g4 + r]))
                        .sum::<f64>()
                    + (0..hidden)
                        .map(|j| h[j] * f64::from(t[2][j * g4 + r]))
                        .sum::<f64>()
            })
            .collect();
        for j in 0..hidden {
            let (i, f, g, o) = (
                sig(z[j]),
                sig(z[hidden + j]),
                z[2 * hidden + j].tanh(),
                sig(z[3 * hidden + j]),
            );
            c[j] = f * c[j] + i * g;
            h[j] = o * c[j].tanh();
        }
    }
    (0..vocab)
        .map(|o| {
            f64::from(t[5][o])
                + (0..hidden)
                    .map(|j| h[j] * f64::from(t[4][j * vocab + o]))
                    .sum::<f64>()
        })
        .collect()
}

/// Error-feedback rounding brings the integer logits closer to the float ones than nearest
/// rounding, on trained models of both kinds the digits task uses (a quantizer that fed errors
/// the wrong way, or into the wrong inputs, would make them further).
#[test]
fn feedback_rounding_tracks_the_float_logits_better_than_nearest() {
    let (train, test) = digits::split(&digits::load().expect("vendored"));
    for (kind, epochs) in [
        (ModelKind::from_name("logistic", 64, 10).expect("a kind"), 5),
        (ModelKind::from_name("mlp", 64, 10).expect("a kind"), 3),
    ] {
        let w = crate::bench::train_float(&kind, &train, epochs, 0.01, 32, 7).expect("trains");
        let error = |rounding| {
            let cfg = QuantizeConfig {
                rounding,
                ..QuantizeConfig::default()
            };
            let q = quantize_with(&kind, &w, &train, &cfg).expect("quantizes");
            // Relative squared error after the best common scale (the integer logits' unit).
            let (mut zl, mut ll, mut zz, mut pairs) = (0.0, 0.0, 0.0, Vec::new());
            for i in 0..test.len() {
                let x = input_from_features(&q, test.sample(i)).expect("in range");
                let l = infer(&q, &x).logits;
                let z = float::logits(&kind, &w, test.sample(i)).expect("image model");
                for (&zi, &li) in z.iter().zip(&l) {
                    let (zi, li) = (f64::from(zi), f64::from(li));
                    zl += zi * li;
                    ll += li * li;
                    zz += zi * zi;
                    pairs.push((zi, li));
                }
            }
            let s = zl / ll;
            pairs.iter().map(|(z, l)| (z - s * l).powi(2)).sum::<f64>() / zz
        };
        let (nearest, feedback) = (error(Rounding::Nearest), error(Rounding::Feedback));
        println!(
            "{}: logit error nearest {nearest:.3e} feedback {feedback:.3e}",
            kind.name()
        );
        assert!(
            feedback < 0.5 * nearest,
            "{}: feedback {feedback} nearest {nearest}",
            kind.name()
        );
    }
}
