//! The README's main command: `deai demo --json` exits 0 and reports a verified walk.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

#[test]
fn demo_walks_the_ledger_and_verifies() {
    let out = common::deai().args(["demo", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "deai demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verify_ok"], true, "{v}");
    assert_eq!(v["proof_ok"], true, "{v}");
    assert!(v["height"].as_u64().unwrap() >= 6, "{v}");
    assert_eq!(v["steps"].as_array().unwrap().len(), 8, "{v}");
}
