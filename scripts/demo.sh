#!/usr/bin/env bash
# `make demo`: the whole path on one machine, without Kubernetes. The hub, Envoy, two agents in
# --manifests mode (tenant-a and tenant-b from examples/) and one echo backend per tenant, all on
# loopback. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${FLEETGATE_BIN_DIR:-target/release}"
demo=.demo
mkdir -p "$demo/logs"

envoy="$(./e2e/setup.sh envoy | sed -n 's/^FLEETGATE_ENVOY=//p')"

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping..."
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

if [ ! -f "$demo/pki/ca.key" ]; then
  "$bin/fleetgate-hub" ca init --pki-dir "$demo/pki" --server-san 127.0.0.1 >/dev/null
fi
# One single-use bootstrap token per cluster (docs/identity.md); each agent enrolls with it and
# keeps its key and certificate in $demo/agents/tenant-<t>.
token_a="$("$bin/fleetgate-hub" token create --pki-dir "$demo/pki" --tenant tenant-a --cluster east 2>/dev/null)"
token_b="$("$bin/fleetgate-hub" token create --pki-dir "$demo/pki" --tenant tenant-b --cluster west 2>/dev/null)"

"$bin/fleetgate-echo" --listen 127.0.1.10:8080 --name tenant-a-app >"$demo/logs/echo-a.log" 2>&1 & pids+=($!)
"$bin/fleetgate-echo" --listen 127.0.2.10:8080 --name tenant-b-app >"$demo/logs/echo-b.log" 2>&1 & pids+=($!)
"$bin/fleetgate-hub" run --config examples/hub.yaml >"$demo/logs/hub.log" 2>&1 & pids+=($!)
"$envoy" -c examples/envoy.yaml --concurrency 1 --base-id 7117 >"$demo/logs/envoy.log" 2>&1 & pids+=($!)
for t in a b; do
  token_var="token_$t"
  FLEETGATE_BOOTSTRAP_TOKEN="${!token_var}" "$bin/fleetgate-agent" --hub https://127.0.0.1:17443 \
    --hub-ca "$demo/pki/ca.crt" --state-dir "$demo/agents/tenant-$t" \
    --manifests "examples/tenant-$t" >"$demo/logs/agent-$t.log" 2>&1 & pids+=($!)
done

printf 'waiting for Envoy to serve both tenants'
for _ in $(seq 1 120); do
  a=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: app.a.example' http://127.0.0.1:18080/ || true)
  b=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: app.b.example' http://127.0.0.1:18080/ || true)
  [ "$a" = 200 ] && [ "$b" = 200 ] && break
  printf '.'; sleep 0.5
done
echo
if [ "$a" != 200 ] || [ "$b" != 200 ]; then
  echo "the data plane did not come up (tenant-a: $a, tenant-b: $b); logs are in $demo/logs/" >&2
  exit 1
fi
cat <<MSG

fleetgate is running. Each tenant's route answers through the shared Envoy:

  curl -H 'Host: app.a.example' http://127.0.0.1:18080/     # -> tenant-a-app
  curl -H 'Host: app.b.example' http://127.0.0.1:18080/     # -> tenant-b-app
  curl -H 'Host: nobody.example' http://127.0.0.1:18080/    # -> 404

Edit examples/tenant-*/ and the agents resend the change. Logs: $demo/logs/. Ctrl-C stops everything.
MSG
wait
