#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, every crate's tests. Installs what the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
scripts/fuzz-smoke.sh
