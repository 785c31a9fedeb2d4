#!/usr/bin/env bash
# Runs the upstream Gateway API conformance suite against fleetgate on the conformance bed
# (e2e/conformance): `make conformance` calls it after the setup scripts and `cargo build --bins`.
# The suite test binary brings the bed up itself (etcd, kube-apiserver, kube-controller-manager,
# loopkubelet, CRDs, hub, Envoy, agent: all its children), runs the profiles fleetgate claims with
# the supported features the agent advertises on the GatewayClass, writes the ConformanceReport
# and tears the bed down (also on failure and Ctrl-C). Needs root (per-Pod network namespaces,
# Envoy on ports 80 and 443). Extra arguments go to the suite, e.g.
#   scripts/conformance.sh -run-test=HTTPRouteSimpleSameNamespace -supported-features=Gateway,HTTPRoute
# (with -run-test the suite does not read the GatewayClass's features: name them).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
set -a
source target/fleetgate-env
source target/conformance-env
set +a
export FLEETGATE_REPO="$ROOT" FLEETGATE_BIN="${FLEETGATE_BIN:-$ROOT/target/debug}"

if [ "$(id -u)" != 0 ]; then
  echo "make conformance needs root: the loopkubelet gives every Pod its own network namespace and Envoy binds ports 80 and 443" >&2
  exit 1
fi

REPORT="${CONFORMANCE_REPORT:-$ROOT/docs/conformance/report-v1.6.3.yaml}"
PROFILES="${CONFORMANCE_PROFILES:-GATEWAY-HTTP,GATEWAY-TLS,GATEWAY-GRPC}"
# A test that waits for a condition fleetgate never sets fails after the suite's timeout: 60 to
# 300 s each by default. 30 s is still ten times what the hub and agent need on this machine.
TIMEOUTS="${CONFORMANCE_TIMEOUTS:-GatewayMustHaveAddress:30;GatewayMustHaveCondition:30;GatewayStatusMustHaveListeners:30;GatewayListenersMustHaveConditions:30;ListenerSetMustHaveCondition:30;ListenerSetListenersMustHaveConditions:30;HTTPRouteMustHaveCondition:30;HTTPRouteMustNotHaveParents:30;TLSRouteMustHaveCondition:30;RouteMustHaveParents:30;LatestObservedGenerationSet:30;DefaultTestTimeout:30;NamespacesMustBeReady:120}"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)-$(git rev-parse --short HEAD)"

mkdir -p "$(dirname "$REPORT")" target/conformance
cd target/conformance
set -x
"$FLEETGATE_CONFORMANCE_TEST" -test.run '^TestConformance$' -test.v -test.timeout 180m \
  -gateway-class=fleetgate \
  -conformance-profiles="$PROFILES" \
  -organization=fleetgate -project=fleetgate -url=https://fleetgate.dev -version="$version" -contact=@fleetgate \
  -report-output="$REPORT" \
  -timeout-config-overrides="$TIMEOUTS" \
  "$@"
