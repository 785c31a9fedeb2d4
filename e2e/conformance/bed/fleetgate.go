package bed

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"fleetgate.dev/e2e/conformance/upstream"
)

// The conformance tenant owns the suite's hostnames (every test hostname ends in one of these)
// and its one cluster's endpoints are the Pod addresses.
var conformanceHostnames = []string{"*.com", "*.org", "*.net", "*.io", "*.example", "listenerset-in-different-namespace-listener"}

// startFleetgate enrolls an agent, then starts the hub, Envoy and the agent on the bed's cluster.
func (b *Bed) startFleetgate(ctx context.Context) error {
	hub := filepath.Join(b.cfg.FleetgateBin, "fleetgate-hub")
	agent := filepath.Join(b.cfg.FleetgateBin, "fleetgate-agent")
	fg := func(parts ...string) string { return b.path(append([]string{"fleetgate"}, parts...)...) }
	if out, err := exec.CommandContext(ctx, hub, "ca", "init", "--pki-dir", fg("pki"), "--server-san", b.cfg.Address).CombinedOutput(); err != nil {
		return fmt.Errorf("fleetgate-hub ca init: %v: %s", err, out)
	}
	token, err := exec.CommandContext(ctx, hub, "token", "create", "--pki-dir", fg("pki"), "--tenant", "conformance", "--cluster", "c1").Output()
	if err != nil {
		return fmt.Errorf("fleetgate-hub token create: %w", err)
	}
	if err := os.WriteFile(fg("hub.yaml"), []byte(b.hubConfig()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(fg("envoy.yaml"), []byte(b.envoyBootstrap()), 0o644); err != nil {
		return err
	}
	rustLog := "RUST_LOG=" + b.cfg.RustLog
	hubProc, err := b.procs.start("hub", []string{rustLog}, hub, "run", "--config", fg("hub.yaml"))
	if err != nil {
		return err
	}
	if err := b.eventually(ctx, 60*time.Second, func() error {
		if err := b.procs.alive(hubProc); err != nil {
			return permanent{err}
		}
		c, err := net.DialTimeout("tcp", b.addr(portHubAgents), time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		return err
	}
	// Envoy is this process's child: it was seen to get SIGTERM when a starting shell exited.
	envoy, err := b.procs.start("envoy", nil, b.cfg.Envoy, "-c", fg("envoy.yaml"), "--concurrency", "2",
		"--base-id", "7371", "--log-level", "warn")
	if err != nil {
		return err
	}
	agentProc, err := b.procs.start("agent", []string{rustLog, "FLEETGATE_BOOTSTRAP_TOKEN=" + strings.TrimSpace(string(token))},
		agent, "--hub", b.url(portHubAgents), "--hub-ca", fg("pki", "ca.crt"), "--state-dir", fg("agent"),
		"--kubeconfig", b.Kubeconfig, "--endpoint-mode", "pod")
	if err != nil {
		return err
	}
	// Envoy is ready once it has its first configuration from the hub.
	return b.eventually(ctx, 60*time.Second, func() error {
		for _, p := range []*proc{hubProc, envoy, agentProc} {
			if err := b.procs.alive(p); err != nil {
				return permanent{err}
			}
		}
		resp, err := http.Get("http://" + b.addr(portEnvoyAdmin) + "/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("envoy /ready: %s", resp.Status)
		}
		return nil
	})
}

func (b *Bed) hubConfig() string {
	var listeners strings.Builder
	for _, p := range DataPlanePorts {
		proto := ""
		if p == 443 {
			proto = ", protocol: TLS"
		}
		fmt.Fprintf(&listeners, "    - {port: %d, bind: \"%s\"%s}\n", p, b.addr(p), proto)
	}
	quoted := make([]string, len(conformanceHostnames))
	for i, h := range conformanceHostnames {
		quoted[i] = fmt.Sprintf("%q", h)
	}
	return fmt.Sprintf(`# The conformance bed's hub (written by e2e/conformance/bed).
agentListen: "%s"
xdsListen: "%s"
pkiDir: %s
storePath: %s
disconnectedClusterGracePeriod: 1h
trustDomain: fleetgate
dataPlane:
  address: %s
  listeners:
%s  admin: "%s"
# A Gateway with a hostname-less HTTP/HTTPS listener (most of the suite's) gets an address of its
# own from here (docs/gateways.md); the suite dials whatever address a Gateway reports.
addressPools:
  - name: conformance
    addresses: [%s]
# Own addresses get exactly the listener ports (80, 443, 8080, ...), which must lie in this range.
l4PortRange: {from: 80, to: 65535}
quotas:
  defaults:
    # The suite applies and deletes its manifests in bursts.
    updatesPerSecond: 1000
    updateBurst: 5000
tenants:
  - name: conformance
    hostnames: [%s]
    clusters:
      - name: c1
        endpointCidrs: [%s]
`, b.addr(portHubAgents), b.addr(portHubXDS), b.path("fleetgate", "pki"), b.path("fleetgate", "hub.redb"),
		b.cfg.Address, listeners.String(), b.addr(portEnvoyAdmin), b.cfg.AddressPool, strings.Join(quoted, ", "), b.cfg.PodCIDR)
}

func (b *Bed) envoyBootstrap() string {
	return fmt.Sprintf(`# The conformance bed's Envoy: everything else comes from the hub over ADS.
node: {id: envoy-conformance, cluster: fleetgate}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services: [{envoy_grpc: {cluster_name: xds_cluster}}]
  lds_config: {ads: {}, resource_api_version: V3}
  cds_config: {ads: {}, resource_api_version: V3}
static_resources:
  clusters:
    - name: xds_cluster
      type: STATIC
      connect_timeout: 2s
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
          explicit_http_config: {http2_protocol_options: {}}
      load_assignment:
        cluster_name: xds_cluster
        endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: %s, port_value: %d}}}}]}]
admin:
  address: {socket_address: {address: %s, port_value: %d}}
`, b.cfg.Address, portHubXDS, b.cfg.Address, portEnvoyAdmin)
}

var gatewayClassGVR = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gatewayclasses"}

// waitGatewayClass waits for the agent to accept the class, then reports the feature names it
// advertises that the suite's Gateway API version does not define (the suite ignores those).
func (b *Bed) waitGatewayClass(ctx context.Context) error {
	dc, _, err := b.dynamic()
	if err != nil {
		return err
	}
	var gc *unstructured.Unstructured
	if err := b.eventually(ctx, 120*time.Second, func() error {
		gc, err = dc.Resource(gatewayClassGVR).Get(ctx, b.cfg.GatewayClass, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !hasCondition(gc.Object, "Accepted", "True") {
			return fmt.Errorf("GatewayClass %s not Accepted=True", b.cfg.GatewayClass)
		}
		return nil
	}); err != nil {
		return err
	}
	sf, _, _ := unstructured.NestedSlice(gc.Object, "status", "supportedFeatures")
	var names []string
	for _, f := range sf {
		if m, ok := f.(map[string]any); ok {
			names = append(names, fmt.Sprint(m["name"]))
		}
	}
	b.logf("bed: GatewayClass %s advertises %d features: %s", b.cfg.GatewayClass, len(names), strings.Join(names, ","))
	if unknown := upstream.Unknown(names); len(unknown) > 0 {
		b.logf("bed: WARNING: not feature names of Gateway API %s (the suite runs no test for them): %s",
			upstream.Version, strings.Join(unknown, ","))
	}
	return nil
}
