#!/usr/bin/env bash
# Installs what deai's tests and demo need beyond the Rust toolchain. Idempotent; quiet when done.
set -euo pipefail
rustup component add rustfmt clippy >/dev/null 2>&1 || true

# --- learn: Fashion-MNIST (Debian's dataset-fashion-mnist, IDX files under /usr/share/datasets/fashion-mnist)
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  export DEBIAN_FRONTEND=noninteractive
  (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; }) \
    || echo "install-deps: could not install dataset-fashion-mnist" >&2
fi
