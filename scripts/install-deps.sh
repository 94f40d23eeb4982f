#!/usr/bin/env bash
# Installs what deai's tests and demo need beyond the Rust toolchain. Idempotent; quiet when done.
set -euo pipefail
rustup component add rustfmt clippy >/dev/null 2>&1 || true
