//! Small versions of the `deai bench` commands: each runs end to end and its `--json` holds the
//! fields scripts read, with values a broken measurement would get wrong. The full-size runs and
//! their figures live in docs/; they do not belong in the test suite.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use crate::common;

use serde_json::Value;

/// Runs `deai bench ARGS --json` and parses its one JSON object.
fn bench(args: &[&str]) -> Value {
    let out = common::deai()
        .arg("bench")
        .args(args)
        .arg("--json")
        .output()
        .expect("run deai bench");
    assert!(
        out.status.success(),
        "deai bench {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "deai bench {args:?}: not one JSON object ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn f64_of(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` missing or not a number in {v}"))
}

#[test]
fn bench_fl_compares_equal_work() {
    let v = bench(&[
        "fl",
        "--repeats",
        "1",
        "--scale-clients",
        "200",
        "--scale-per-round",
        "100",
        "--scale-rounds",
        "1",
    ]);
    let (fed, central) = (f64_of(&v, "federated_s"), f64_of(&v, "central_s"));
    assert!(fed > 0.0 && central > 0.0, "{v}");
    assert!((f64_of(&v, "overhead") - fed / central).abs() < 1e-9, "{v}");
    // The same sample-steps within 1% (digits-100's work equivalence) ...
    let (fs, cs) = (
        f64_of(&v, "federated_samples"),
        f64_of(&v, "central_samples"),
    );
    assert_eq!(cs, 7190.0, "5 epochs of 1438 samples");
    assert!((fs - cs).abs() / cs < 0.01, "{v}");
    // ... in more, smaller steps: 500 clients of 14 or 15 samples take 2 batches each, and the
    // central run takes 15 per tenth of an epoch.
    assert_eq!(v["federated_batches"], 1000, "{v}");
    assert_eq!(v["central_batches"], 750, "{v}");
    assert!(f64_of(&v, "federated_accuracy") > 0.8, "{v}");
    assert!(f64_of(&v, "central_accuracy") > 0.9, "{v}");

    let s = &v["scale"];
    assert_eq!(
        (s["clients"].as_u64(), s["per_round"].as_u64()),
        (Some(200), Some(100))
    );
    assert!(f64_of(s, "round_s") > 0.0, "{s}");
    let rss = f64_of(s, "peak_rss_mb");
    assert!(rss > 10.0 && rss < 2048.0, "{s}");
    let acc = f64_of(s, "accuracy");
    assert!((0.0..=1.0).contains(&acc), "{s}");
}

#[test]
fn bench_secagg_small_round_is_exact() {
    let v = bench(&[
        "secagg",
        "--clients",
        "20",
        "--dim",
        "2000",
        "--dropout",
        "0.2",
    ]);
    assert_eq!(v["exact"], true, "{v}");
    assert_eq!(
        (v["clients"].as_u64(), v["dim"].as_u64()),
        (Some(20), Some(2000))
    );
    let (k, t) = (v["k"].as_u64().unwrap(), v["t"].as_u64().unwrap());
    assert!(t >= 2 && t <= k && k < 20, "k {k}, t {t}");
    for key in ["round_ms", "client_ms_p50", "server_ms", "plain_sum_ms"] {
        assert!(f64_of(&v, key) >= 0.0, "{key}: {v}");
    }
    // Sending keys and shares costs something on top of the masked vector itself.
    assert!(f64_of(&v, "expansion") > 1.0, "{v}");
    assert!(f64_of(&v, "bytes_up_per_client") > 2000.0, "{v}");
    assert_eq!(v["survivors"], 16, "a fifth of 20 dropped: {v}");
    // The dequantized mean is as close as the documented bound says.
    assert!(
        f64_of(&v, "mean_error_max") <= f64_of(&v, "mean_error_bound"),
        "{v}"
    );
}

#[test]
fn bench_ledger_finalizes_every_transaction() {
    let v = bench(&["ledger", "--txs", "400", "--accounts", "40"]);
    assert_eq!(v["txs"], 400, "{v}");
    assert_eq!(v["rejected"], 0, "{v}");
    assert!(v["blocks"].as_u64().is_some_and(|b| b >= 1), "{v}");
    assert!(f64_of(&v, "finalized_tps") > 0.0, "{v}");
    assert!(f64_of(&v, "ratio") > 0.0, "{v}");
}

#[test]
fn bench_ledger_over_http_reports_the_in_process_figure_of_the_same_run() {
    let v = bench(&[
        "ledger",
        "--txs",
        "600",
        "--accounts",
        "30",
        "--via",
        "http",
        "--clients",
        "4",
        "--batch",
        "16",
    ]);
    assert_eq!(v["via"], "http", "{v}");
    assert_eq!(
        (v["clients"].clone(), v["batch"].clone()),
        (4.into(), 16.into())
    );
    assert_eq!(v["rejected"], 0, "{v}");
    let (http, inproc) = (f64_of(&v, "finalized_tps"), f64_of(&v, "inproc_tps"));
    assert!(http > 0.0 && inproc > 0.0, "{v}");
    assert!(
        (f64_of(&v, "http_vs_inproc") - http / inproc).abs() < 1e-9,
        "{v}"
    );
}

/// A short soak: the node process survives every attack at once, honest transfers keep
/// finalizing, and no attacker gets anything accepted (the funded flood excepted: its transfers
/// are valid). The run's own pass verdict (memory flat after warm-up) needs minutes, so the
/// exit status is not asserted here; the full run is in docs/chain.md.
#[test]
fn bench_soak_short_run_keeps_finalizing_and_refuses_every_attacker() {
    let out = common::deai()
        .args(["bench", "soak", "--seconds", "20", "--json"])
        .output()
        .expect("run deai bench soak");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not one JSON object ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(v["node_alive"], true, "{v}");
    assert!(f64_of(&v, "honest_baseline_tps") > 0.0, "{v}");
    assert!(f64_of(&v, "honest_attack_tps") > 0.0, "{v}");
    assert_eq!(v["honest_failed_in_block"], 0, "{v}");
    let attacks = v["attacks"].as_array().unwrap();
    assert_eq!(attacks.len(), 9, "{v}");
    for a in attacks {
        assert!(a["attempts"].as_u64().unwrap() > 0, "{a}");
        let outcomes = a["outcomes"].as_object().unwrap();
        if a["name"] != "funded_block_flood" {
            let let_in: Vec<_> = outcomes
                .keys()
                .filter(|k| *k == "accepted" || k.starts_with("200") || k.starts_with("202"))
                .collect();
            assert!(let_in.is_empty(), "{} got {let_in:?}: {a}", a["name"]);
        }
    }
}

#[test]
fn bench_infer_compares_paid_with_unpaid_queries_and_times_disputes() {
    let v = bench(&[
        "infer",
        "--no-engine",
        "--seconds",
        "0.3",
        "--clients",
        "1",
        "--batch",
        "4",
        "--repeat",
        "2",
    ]);
    let http = &v["http"][0];
    assert_eq!(http["batch"], 4, "{v}");
    let mut runs: Vec<f64> = http["payment_overhead_runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    assert_eq!(runs.len(), 2, "one overhead per alternating pair: {v}");
    runs.sort_by(f64::total_cmp);
    assert_eq!(
        f64_of(http, "payment_overhead"),
        runs[1],
        "the median pair: {v}"
    );
    let (bare, paid) = (f64_of(http, "bare_qps"), f64_of(http, "paid_qps"));
    assert!(bare > 0.0 && paid > 0.0, "{v}");
    assert!(f64_of(http, "p99_ms") >= f64_of(http, "p50_ms"), "{v}");
    assert!(f64_of(&v, "voucher_checks_per_s") > 0.0, "{v}");
    let disputes = v["disputes"].as_array().unwrap();
    assert_eq!(disputes.len(), 5, "one row per model kind: {v}");
    for d in disputes {
        assert!(d["ops"].as_u64().unwrap() > 0, "{d}");
        assert!(f64_of(d, "dispute_reexec_ms") > 0.0, "{d}");
    }
}

/// The networked robustness table, two rounds and two seeds: every chosen rule (a screened one
/// among them) × every attack in both scenarios, each rule's worst loss and the best rule named.
#[test]
fn bench_fed_robust_fills_every_cell() {
    let v = bench(&[
        "fed-robust",
        "--rounds",
        "2",
        "--seeds",
        "2",
        "--rules",
        "fedavg,screened-median",
    ]);
    assert_eq!(v["owners"], 100, "{v}");
    assert_eq!(v["attackers"], 20, "{v}");
    assert_eq!(v["seeds"], 2, "{v}");
    let scenarios = v["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 2, "{v}");
    for s in scenarios {
        let rules = s["rules"].as_array().unwrap();
        let names: Vec<&str> = rules.iter().filter_map(|r| r["rule"].as_str()).collect();
        assert_eq!(names, ["fedavg", "screened-median"], "{s}");
        for r in rules {
            let none = f64_of(r, "none");
            assert!((0.0..=1.0).contains(&none), "{r}");
            let attacked = r["attacked"].as_array().unwrap();
            assert_eq!(attacked.len(), 9, "{r}");
            assert!(attacked.iter().any(|a| a[0] == "colluding"), "{r}");
            assert!(attacked.iter().any(|a| a[0] == "cancel-weight"), "{r}");
        }
        assert!(
            s["best_rule"].as_str().is_some_and(|b| !b.is_empty()),
            "{s}"
        );
    }
}

/// The cost of checking one challenged claim on a small task: an honest last round's claims all
/// hold (the bench refuses to report otherwise), every claim kind has a figure, and the work is
/// bounded by the claim: a group's sum reads only its group's masked updates (fewer bytes than
/// the aggregate, which reads every group's), and a score reads no masked update.
#[test]
fn bench_challenge_costs_every_claim_kind() {
    let v = bench(&[
        "challenge",
        "--rounds",
        "3",
        "--per-round",
        "12",
        "--group-size",
        "6",
        "--model",
        "logreg",
        "--repeat",
        "1",
    ]);
    assert_eq!(v["groups"], 2, "{v}");
    assert_eq!(v["survivors"], 12, "{v}");
    let claims = v["claims"].as_array().unwrap();
    let names: Vec<&str> = claims
        .iter()
        .map(|c| c["claim"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["group_sum:0", "aggregate", "model", "score:0"],
        "{v}"
    );
    assert!(claims.iter().all(|c| f64_of(c, "ms") > 0.0), "{v}");
    let bytes = |i: usize| claims[i]["blob_bytes"].as_u64().unwrap();
    let params = v["model_params"].as_u64().unwrap();
    assert!(params > 0, "{v}");
    assert!(
        bytes(1) > 12 * 4 * params,
        "the aggregate reads twelve masked updates of {params} words: {v}"
    );
    assert!(bytes(0) < bytes(1), "a group's sum reads one group: {v}");
    assert!(
        bytes(3) < 12 * 4 * params,
        "a score reads no masked update: {v}"
    );
}
