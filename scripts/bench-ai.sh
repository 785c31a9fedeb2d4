#!/usr/bin/env bash
# The AI gateway benchmark against LiteLLM's proxy (e2e/tests/bench_ai.rs; figures in
# docs/benchmarks.md). Installs LiteLLM's proxy once into ~/.cache/fleetgate (a virtualenv of its
# own, so its pins never touch the test SDKs'), builds release binaries and runs the benchmark.
#   BENCH_SECONDS=10 ./scripts/bench-ai.sh
set -euo pipefail
cd "$(dirname "$0")/.."

LITELLM_VERSION=1.108.12
# litellm[proxy] pins litellm-enterprise, which the package index here does not serve; the proxy's
# other requirements are installed by name instead (the enterprise package is optional at run time).
LITELLM_PROXY_DEPS=(
  "gunicorn>=23.0.0,<24.0" "uvicorn>=0.33.0,<1.0" "uvloop>=0.22.1,<1.0" "fastapi>=0.136.3,<1.0"
  "starlette>=1.0.1,<2.0" "backoff>=2.2.1,<3.0" "pyyaml>=6.0.3,<7.0" "rq>=2.7.0,<3.0"
  "orjson>=3.11.6,<4.0" "apscheduler>=3.11.2,<4.0" "fastapi-sso>=0.19.0,<1.0" "pyjwt>=2.13.0,<3.0"
  "python-multipart>=0.0.27,<1.0" "cryptography>=49.0.0,<51.0" "pynacl>=1.6.2,<2.0"
  "websockets>=15.0.1,<16.0" "litellm-proxy-extras==0.4.110" "mcp>=2.3.0,<3"
  "restrictedpython>=8.5,<9.0" "expression>=5.6.0,<6.0" "soundfile>=0.12.1,<1.0"
  "polars>=1.38.1,<2.0" "hiredis>=3.0.0,<4.0" "httpx2>=2.10.0,<3" "boto3>=1.43.117,<2.0"
  "rich>=13.9.4,<14.0" "tomlkit>=0.13.3,<1.0"
)
CACHE="${FLEETGATE_CACHE:-$HOME/.cache/fleetgate}"
dir="$CACHE/bench-litellm-$LITELLM_VERSION"
if [ ! -f "$dir/.complete" ]; then
  echo "installing LiteLLM $LITELLM_VERSION into $dir (first run only)" >&2
  python3 -m venv "$dir/venv"
  nice -n 19 "$dir/venv/bin/python" -m pip install --quiet "litellm==$LITELLM_VERSION" \
    "${LITELLM_PROXY_DEPS[@]}" >&2
  touch "$dir/.complete"
fi

cargo build --release --workspace --bins
# The second benchmark runs Envoy, kube-apiserver and etcd from `make setup`'s cache.
set -a && source target/fleetgate-env && set +a
FLEETGATE_PROFILE=release FLEETGATE_LITELLM="$dir/venv/bin/litellm" FLEETGATE_E2E_RUST_LOG=warn \
  cargo test --release -p fleetgate-e2e --test bench_ai -- --ignored --nocapture --test-threads=1 2>&1 |
  tee target/bench-ai.log
grep '^BENCH' target/bench-ai.log
