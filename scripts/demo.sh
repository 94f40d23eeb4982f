#!/usr/bin/env bash
# Runs the main job: `deai demo`, built in release mode. Extra arguments go to `deai demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
exec cargo run --release --locked -q -p deai-cli -- demo "$@"
