#!/usr/bin/env bash
# Deterministic fault sweep of the chain: four validators, one Byzantine (equivocating,
# withholding votes, proposing invalid blocks), lossy links that partition and heal, an honest
# validator crashed and restarted; safety and liveness checked per seed (see
# crates/deai-chain/tests/it/faults.rs and docs/chain.md, "Faults under simulation").
#
# Usage: scripts/chain-fault-sweep.sh [SEEDS]    SEEDS: a count n (seeds 0..n, default 1000)
#                                                or a range a..b
# DEAI_JOBS=n runs n seeds at a time (default 1). A failing seed prints the command replaying it.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${1:-1000}"
if [[ "$seeds" != *..* ]]; then
  seeds="0..$seeds"
fi
export DEAI_SEEDS="$seeds"
exec cargo test --release --locked -p deai-chain --test it faults::sweep -- --ignored --nocapture
