#!/usr/bin/env bash
# Runs every fuzz target briefly (FUZZ_SECONDS each, default 10): decoders of outside input must
# never panic. Longer campaigns: `cd crates/<crate>/fuzz && cargo +nightly fuzz run <target>`.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${FUZZ_SECONDS:-10}"
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz-smoke: skipped, no nightly toolchain on this machine" >&2
  exit 0
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked -q || { echo "fuzz-smoke: skipped, cargo-fuzz could not be installed" >&2; exit 0; }
fi
for dir in crates/*/fuzz; do
  for target in $(cd "$dir" && cargo +nightly fuzz list); do
    echo "fuzz-smoke: $dir $target (${secs}s)"
    (cd "$dir" && cargo +nightly fuzz run "$target" -- -max_total_time="$secs" 2>&1 | tail -2)
  done
done
