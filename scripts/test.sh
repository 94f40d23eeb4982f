#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, every crate's tests. Installs what the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."
# One clean pass: incremental caches would double the disk a full build needs and buy nothing.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
scripts/test-python.sh
scripts/fuzz-smoke.sh
