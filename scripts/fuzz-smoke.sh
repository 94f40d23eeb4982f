#!/usr/bin/env bash
# Runs every fuzz target briefly (FUZZ_SECONDS each, default 10): decoders of outside input must
# never panic. Longer campaigns: `cd crates/<crate>/fuzz && cargo +nightly fuzz run <target>`.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${FUZZ_SECONDS:-10}"
# One target directory for every fuzz crate: their instrumented dependency trees overlap, so
# each shared crate is built once, and the disk holds one copy.
target_dir="$(realpath -m "${CARGO_TARGET_DIR:-target}")/fuzz"
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
    log="$(mktemp)"
    if (cd "$dir" && cargo +nightly fuzz run --target-dir "$target_dir" "$target" -- -max_total_time="$secs" >"$log" 2>&1); then
      tail -1 "$log"
    else
      # A failure prints the whole report (the input, the panic and where), not just its last lines.
      grep -v '^"' "$log" | tail -80 >&2
      df -h "$target_dir" >&2 || true
      echo "fuzz-smoke: $dir $target failed; the input is under $dir/artifacts/$target/" >&2
      rm -f "$log"
      exit 1
    fi
    rm -f "$log"
  done
done
