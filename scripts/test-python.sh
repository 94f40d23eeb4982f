#!/usr/bin/env bash
# Tests the Python client (clients/python): the shared vectors the Rust ledger generates, proofs,
# payments, and an end-to-end run against a real `deai node`. Makes a virtual environment under
# target/python-venv (ignored by git), installs the package with its pandas extra and pytest,
# and runs pytest. The live tests use target/debug/deai (or $CARGO_TARGET_DIR/debug/deai), which
# `cargo test --workspace` builds; it is built here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/python-venv
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "test-python: creating $venv with $("$python" --version)"
  "$python" -m venv "$venv"
fi
echo "test-python: installing ./clients/python[pandas] and pytest into $venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "setuptools>=68" wheel
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation \
  "./clients/python[pandas]" pytest
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
bin="$target_dir/debug/deai"
if [ ! -x "$bin" ]; then
  echo "test-python: building $bin"
  cargo build -q -p deai-cli --locked
fi
echo "test-python: pytest clients/python (live node: $bin)"
DEAI_LIVE_REQUIRED=1 DEAI_BIN="$bin" "$venv/bin/python" -m pytest -q clients/python
