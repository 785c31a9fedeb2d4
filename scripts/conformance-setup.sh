#!/usr/bin/env bash
# Builds what `make conformance` needs beyond e2e/setup.sh, into ~/.cache/fleetgate/ (not part of
# `make test`, which does not pay for it):
#   - kube-controller-manager, built from the Go module proxy with e2e/setup.sh's kube-apiserver
#     recipe (same module and build caches, so most of it is already compiled),
#   - echo-basic, the suite's backend, from sigs.k8s.io/gateway-api/conformance at the version of
#     the CRDs we install,
#   - the bed: e2e/conformance's suite test binary (the upstream suite + our bring-up) and the
#     loopkubelet, keyed by the Gateway API version and a hash of e2e/conformance's sources.
# Idempotent: every artefact lives in a folder keyed by its version and is never rebuilt when
# present. Prints the environment the bed reads (FLEETGATE_*) on stdout; `make conformance`
# sources it after target/fleetgate-env.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-v1.6.3}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${FLEETGATE_CACHE:-$HOME/.cache/fleetgate}"
export GOMODCACHE="$CACHE/go/mod"
export GOCACHE="$CACHE/go/build"
export CGO_ENABLED=0
mkdir -p "$CACHE"

log() { printf '[conformance-setup %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# The suite must be the version of the CRDs e2e/setup.sh installs.
suite_version="$(cd "$ROOT/e2e/conformance" && GOFLAGS=-mod=readonly go list -m -f '{{.Version}}' sigs.k8s.io/gateway-api/conformance)"
if [ "$suite_version" != "$GATEWAY_API_VERSION" ]; then
  log "e2e/conformance/go.mod requires the suite at $suite_version but the CRDs are $GATEWAY_API_VERSION"
  exit 1
fi

# --- kube-controller-manager (Deployments -> ReplicaSets -> Pods, EndpointSlices) -------------
kcm_dir="$CACHE/kube-controller-manager-$K8S_VERSION"
if [ ! -x "$kcm_dir/kube-controller-manager" ]; then
  log "building kube-controller-manager $K8S_VERSION from the Go module proxy (first run only)"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (
    cd "$work"
    export GOFLAGS=-mod=mod
    go mod init fleetgate.local/kube-controller-manager-build >/dev/null 2>&1
    # As for kube-apiserver (e2e/setup.sh): pin each staging module to the matching v0.X.Y tag.
    gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
    staging_version="v0.${K8S_VERSION#v1.}"
    grep -E '=> \./staging/' "$gomod" | awk '{print $1}' | sort -u | while read -r mod; do
      go mod edit -replace "$mod=$mod@$staging_version"
    done
    go get "k8s.io/kubernetes@$K8S_VERSION" "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION" >&2
    mkdir -p "$kcm_dir.tmp"
    go build -trimpath \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)" \
      -o "$kcm_dir.tmp/kube-controller-manager" k8s.io/kubernetes/cmd/kube-controller-manager >&2
  )
  rm -rf "$kcm_dir" && mv "$kcm_dir.tmp" "$kcm_dir"
  rm -rf "$work"; trap - EXIT
  log "kube-controller-manager ready: $kcm_dir/kube-controller-manager"
fi

# --- echo-basic (the suite's backend; every echo-basic image maps to it) ----------------------
echo_dir="$CACHE/echo-basic-$GATEWAY_API_VERSION"
if [ ! -x "$echo_dir/echo-basic" ]; then
  log "building echo-basic $GATEWAY_API_VERSION from the Go module proxy (first run only)"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (
    cd "$work"
    export GOFLAGS=-mod=mod
    go mod init fleetgate.local/echo-basic-build >/dev/null 2>&1
    # The suite module's own `replace ../` is ignored in a dependency: require both at one version.
    go get "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" "sigs.k8s.io/gateway-api/conformance@$GATEWAY_API_VERSION" >&2
    mkdir -p "$echo_dir.tmp"
    go build -trimpath -o "$echo_dir.tmp/echo-basic" sigs.k8s.io/gateway-api/conformance/echo-basic >&2
  )
  rm -rf "$echo_dir" && mv "$echo_dir.tmp" "$echo_dir"
  rm -rf "$work"; trap - EXIT
  log "echo-basic ready: $echo_dir/echo-basic"
fi

# --- the bed: suite test binary and loopkubelet, from e2e/conformance ------------------------
src_hash="$(cd "$ROOT/e2e/conformance" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum -o -name '*.tsv' \) -print0 \
  | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)"
bed_dir="$CACHE/conformance-bed-$GATEWAY_API_VERSION-$src_hash"
if [ ! -x "$bed_dir/conformance.test" ] || [ ! -x "$bed_dir/loopkubelet" ]; then
  log "building the conformance bed (suite $GATEWAY_API_VERSION, sources $src_hash)"
  rm -rf "$bed_dir.tmp" && mkdir -p "$bed_dir.tmp"
  (
    cd "$ROOT/e2e/conformance"
    export GOFLAGS=-mod=readonly
    go test -tags conformance -c -trimpath -o "$bed_dir.tmp/conformance.test" ./suite >&2
    go build -trimpath -o "$bed_dir.tmp/loopkubelet" ./cmd/loopkubelet >&2
  )
  rm -rf "$bed_dir" && mv "$bed_dir.tmp" "$bed_dir"
  log "bed ready: $bed_dir"
fi

echo "FLEETGATE_KUBE_CONTROLLER_MANAGER=$kcm_dir/kube-controller-manager"
echo "FLEETGATE_ECHO_BASIC=$echo_dir/echo-basic"
echo "FLEETGATE_LOOPKUBELET=$bed_dir/loopkubelet"
echo "FLEETGATE_CONFORMANCE_TEST=$bed_dir/conformance.test"
