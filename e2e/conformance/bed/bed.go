// Package bed brings up the conformance test bed on one host, no container runtime: etcd,
// kube-apiserver, kube-controller-manager and the loopkubelet (a cluster whose Pods are real
// processes in network namespaces), the Gateway API CRDs and GatewayClass, then fleetgate's hub,
// Envoy and agent (`--endpoint-mode pod`). Every process is a child of the calling process (so
// Envoy lives exactly as long as the suite that talks to it) and is stopped by Down, or killed by
// the kernel if the caller dies first.
//
// Everything listens on one loopback address (Config.Address, 127.0.100.1 unless told), and
// Gateways that get an address of their own get it from Config.AddressPool (127.0.100.64/26), so
// the bed collides with nothing else on 127.0.0.1; Pod addresses (Config.PodCIDR) exist only inside
// this host's network namespaces. Needs root: network namespaces, and Envoy on ports 80 and 443.
package bed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config names the binaries and where the bed lives.
type Config struct {
	// Repo is the fleetgate checkout (for docs of errors only; nothing is read from it at run time
	// but the binaries in FleetgateBin).
	Repo string
	// WorkDir holds the bed's state and logs (emptied at Up).
	WorkDir string
	// FleetgateBin is the folder with fleetgate-hub and fleetgate-agent.
	FleetgateBin string
	// Binaries of the other components (e2e/setup.sh and scripts/conformance-setup.sh print them).
	Etcd, KubeAPIServer, KubeControllerManager, Loopkubelet, EchoBasic, Envoy string
	// CRDs is the folder of the Gateway API standard-channel CRDs.
	CRDs string
	// Address is the loopback address every component listens on and Gateways report.
	Address string
	// AddressPool is the hub's address pool for Gateways that get an address of their own (a
	// loopback CIDR next to Address).
	AddressPool string
	// PodCIDR is where Pod addresses come from (inside this host's network namespaces only).
	PodCIDR string
	// GatewayClass is the class the bed creates with fleetgate's controllerName.
	GatewayClass string
	// RustLog is RUST_LOG for the hub and the agent.
	RustLog string
}

// Ports on Config.Address.
const (
	portEtcd       = 2379
	portEtcdPeer   = 2380
	portAPIServer  = 6443
	portKubelet    = 10250
	portHubAgents  = 7443
	portHubXDS     = 18000
	portEnvoyAdmin = 19000
)

// DataPlanePorts are the Gateway listener ports Envoy serves on the shared address: the suite
// dials the Gateway's address on its listeners' ports (8090: HTTPRouteListenerPortMatching).
var DataPlanePorts = []int{80, 443, 8080, 8090}

// ConfigFromEnv reads the FLEETGATE_* variables that target/fleetgate-env and
// target/conformance-env set (see the Makefile's conformance target).
func ConfigFromEnv() (Config, error) {
	repo := envOr("FLEETGATE_REPO", ".")
	repo, _ = filepath.Abs(repo)
	c := Config{
		Repo:                  repo,
		WorkDir:               envOr("FLEETGATE_CONFORMANCE_DIR", filepath.Join(repo, "target", "conformance", "run")),
		FleetgateBin:          envOr("FLEETGATE_BIN", filepath.Join(repo, "target", "debug")),
		Etcd:                  os.Getenv("FLEETGATE_ETCD"),
		KubeAPIServer:         os.Getenv("FLEETGATE_KUBE_APISERVER"),
		KubeControllerManager: os.Getenv("FLEETGATE_KUBE_CONTROLLER_MANAGER"),
		Loopkubelet:           os.Getenv("FLEETGATE_LOOPKUBELET"),
		EchoBasic:             os.Getenv("FLEETGATE_ECHO_BASIC"),
		Envoy:                 os.Getenv("FLEETGATE_ENVOY"),
		CRDs:                  os.Getenv("FLEETGATE_GATEWAY_CRDS"),
		Address:               envOr("FLEETGATE_CONFORMANCE_ADDRESS", "127.0.100.1"),
		AddressPool:           envOr("FLEETGATE_CONFORMANCE_ADDRESS_POOL", "127.0.100.64/26"),
		PodCIDR:               envOr("FLEETGATE_CONFORMANCE_POD_CIDR", "10.244.0.0/24"),
		GatewayClass:          envOr("FLEETGATE_CONFORMANCE_GATEWAY_CLASS", "fleetgate"),
		RustLog:               envOr("FLEETGATE_CONFORMANCE_RUST_LOG", "info"),
	}
	return c, c.validate()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func (c Config) validate() error {
	var missing []string
	for name, path := range map[string]string{
		"FLEETGATE_ETCD": c.Etcd, "FLEETGATE_KUBE_APISERVER": c.KubeAPIServer,
		"FLEETGATE_KUBE_CONTROLLER_MANAGER": c.KubeControllerManager, "FLEETGATE_LOOPKUBELET": c.Loopkubelet,
		"FLEETGATE_ECHO_BASIC": c.EchoBasic, "FLEETGATE_ENVOY": c.Envoy, "FLEETGATE_GATEWAY_CRDS": c.CRDs,
		"fleetgate-hub": filepath.Join(c.FleetgateBin, "fleetgate-hub"), "fleetgate-agent": filepath.Join(c.FleetgateBin, "fleetgate-agent"),
	} {
		if path == "" {
			missing = append(missing, name+" (unset)")
		} else if _, err := os.Stat(path); err != nil {
			missing = append(missing, name+"="+path)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the bed needs %s: run `make conformance` (it runs e2e/setup.sh, scripts/conformance-setup.sh and cargo build --bins)",
			strings.Join(missing, ", "))
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("the bed needs root: every Pod gets its own network namespace, and Envoy binds ports 80 and 443")
	}
	return nil
}

// Bed is a running bed.
type Bed struct {
	cfg Config
	// Kubeconfig is the admin kubeconfig of the bed's cluster.
	Kubeconfig string
	procs      *supervisor
	logf       func(string, ...any)
}

// Up starts everything and returns once the GatewayClass is accepted. On error, what was started
// is stopped again.
func Up(ctx context.Context, cfg Config, logf func(string, ...any)) (b *Bed, err error) {
	if err := os.RemoveAll(cfg.WorkDir); err != nil {
		return nil, err
	}
	for _, d := range []string{"pki", "logs", "etcd", "fleetgate"} {
		if err := os.MkdirAll(filepath.Join(cfg.WorkDir, d), 0o755); err != nil {
			return nil, err
		}
	}
	b = &Bed{cfg: cfg, procs: newSupervisor(filepath.Join(cfg.WorkDir, "logs")), logf: logf}
	defer func() {
		if err != nil {
			b.Down()
		}
	}()
	start := time.Now()
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"cluster PKI", b.writePKI},
		{"etcd and kube-apiserver", b.startAPIServer},
		{"kube-controller-manager and loopkubelet", b.startNode},
		{"Gateway API CRDs and GatewayClass", b.applyCRDs},
		{"fleetgate hub, Envoy and agent", b.startFleetgate},
		{"GatewayClass accepted", b.waitGatewayClass},
	}
	for _, s := range steps {
		logf("bed: %s", s.name)
		if err := s.run(ctx); err != nil {
			return b, fmt.Errorf("%s: %w (logs in %s)", s.name, err, filepath.Join(cfg.WorkDir, "logs"))
		}
	}
	logf("bed: up in %s; KUBECONFIG=%s", time.Since(start).Round(time.Second), b.Kubeconfig)
	return b, nil
}

// Down stops every process, newest first, and is safe to call more than once.
func (b *Bed) Down() {
	b.procs.stopAll(b.logf)
}

func (b *Bed) path(parts ...string) string {
	return filepath.Join(append([]string{b.cfg.WorkDir}, parts...)...)
}

func (b *Bed) url(port int) string { return fmt.Sprintf("https://%s:%d", b.cfg.Address, port) }
