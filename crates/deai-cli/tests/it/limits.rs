//! The CLI at its limits. Output the reader cannot take: a command whose stdout is a closed pipe
//! ends quietly with success (like `cat` into `head`), one whose stdout is a full disk ends with
//! a named error and exit code 1; neither panics. Numbers it cannot compute are refused by name,
//! in bounded time, instead of a panic, `inf` or minutes of work.

use crate::common;

use std::process::{Output, Stdio};

/// `deai dp epsilon --json` (a quick command with several lines of output) writing to `stdout`.
fn epsilon_into(stdout: impl Into<Stdio>) -> Output {
    common::deai()
        .args([
            "dp",
            "epsilon",
            "--sampling-rate",
            "0.01",
            "--noise-multiplier",
            "1",
        ])
        .args(["--steps", "100", "--delta", "0.00001", "--json"])
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .expect("run deai dp epsilon")
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    // Nobody will read: every write the command makes fails with EPIPE.
    drop(reader);
    let out = epsilon_into(writer);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_an_error_with_a_name() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = epsilon_into(full);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write to stdout"), "{stderr}");
}

/// Runs `deai dp epsilon` with `q`, `σ` and `steps`.
fn epsilon(q: &str, sigma: &str, steps: &str) -> Output {
    common::deai()
        .args([
            "dp",
            "epsilon",
            "--sampling-rate",
            q,
            "--noise-multiplier",
            sigma,
        ])
        .args(["--steps", steps, "--delta", "0.00001"])
        .output()
        .expect("run deai dp epsilon")
}

#[test]
fn epsilon_refuses_what_it_cannot_compute() {
    for (q, sigma, steps, says) in [
        // Once a capacity-overflow panic in the PLD accountant.
        ("0.5", "0.01", "1", "grid points"),
        // Once printed `inf`.
        ("0.5", "0.05", "1", "grid points"),
        // Once printed ε = 0.
        ("0.5", "1", "0", "--steps must be at least 1"),
        // Once ran for minutes with gigabytes.
        ("0.01", "1.1", "100000000", "grid points"),
        ("0.5", "0", "10", "--noise-multiplier"),
    ] {
        let out = epsilon(q, sigma, steps);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "q={q} σ={sigma} T={steps}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.contains(says), "q={q} σ={sigma} T={steps}: {stderr}");
    }
    let ok = epsilon("0.01", "1.1", "1000");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("PLD 1.51"));
}
