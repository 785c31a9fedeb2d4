#!/usr/bin/env bash
# The AI gateway benchmark against LiteLLM's proxy (e2e/tests/bench_ai.rs; figures in
# docs/benchmarks.md). Installs LiteLLM's proxy once into ~/.cache/fleetgate (a virtualenv of its
# own, so its pins never touch the test SDKs'), builds release binaries and runs the benchmark.
#   BENCH_SECONDS=10 ./scripts/bench-ai.sh
set -euo pipefail
cd "$(dirname "$0")/.."

LITELLM_VERSION=1.108.12 # the newest whose [proxy] extra (litellm-proxy-extras pin) resolves here
CACHE="${FLEETGATE_CACHE:-$HOME/.cache/fleetgate}"
dir="$CACHE/bench-litellm-$LITELLM_VERSION"
if [ ! -f "$dir/.complete" ]; then
  echo "installing LiteLLM $LITELLM_VERSION into $dir (first run only)" >&2
  python3 -m venv "$dir/venv"
  nice -n 19 "$dir/venv/bin/python" -m pip install --quiet "litellm[proxy]==$LITELLM_VERSION" >&2
  touch "$dir/.complete"
fi

cargo build --release --workspace --bins
FLEETGATE_PROFILE=release FLEETGATE_LITELLM="$dir/venv/bin/litellm" \
  cargo test --release -p fleetgate-e2e --test bench_ai -- --ignored --nocapture 2>&1 |
  tee target/bench-ai.log
grep '^BENCH' target/bench-ai.log
