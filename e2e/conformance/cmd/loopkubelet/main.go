// loopkubelet is the kubelet of the conformance bed: a cluster node without a container runtime.
//
// It registers one Node and, for every Pod (binding pending Pods to itself, so no scheduler is
// needed), runs the binary mapped to the container's image (`--image echo-basic=PATH`) in a
// network namespace of its own with an address from --pod-cidr, the environment the downward
// API would give and its Secret/ConfigMap volumes written to disk; it reports the Pod Running
// with its IP and Ready once the container's port answers, and serves the container's log to the
// API server (`kubectl logs`, which the suite's mirror tests read). Pods of images without a
// mapping (coredns) are reported Ready with an IP and run nothing.
//
// Host-local by construction: pod addresses live only inside this host's network namespaces,
// reached through a /32 route per Pod over a veth pair. Needs root (ip netns, veth). Every
// namespace and interface it creates carries --prefix, and only those are removed at exit or at
// the next start.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

type config struct {
	kubeconfig string
	nodeName   string
	nodeIP     string
	logsPort   int
	podCIDR    netip.Prefix
	stateDir   string
	prefix     string
	images     []imageMapping
}

// imageMapping: containers whose image contains substring run binary.
type imageMapping struct{ substring, binary string }

type imageFlag []imageMapping

func (m *imageFlag) String() string { return fmt.Sprint(*m) }
func (m *imageFlag) Set(v string) error {
	sub, bin, ok := strings.Cut(v, "=")
	if !ok || sub == "" || bin == "" {
		return fmt.Errorf("want SUBSTRING=BINARY, got %q", v)
	}
	*m = append(*m, imageMapping{sub, bin})
	return nil
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("loopkubelet", flag.ContinueOnError)
	var c config
	var cidr string
	var images imageFlag
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (required)")
	fs.StringVar(&c.nodeName, "node-name", "loopback-node", "the Node to register")
	fs.StringVar(&c.nodeIP, "node-ip", "127.0.0.1", "the Node's InternalIP; the log server listens there")
	fs.IntVar(&c.logsPort, "port", 10250, "port of the log server (the Node's kubelet endpoint)")
	fs.StringVar(&cidr, "pod-cidr", "10.244.0.0/24", "pod addresses come from here (host-local)")
	fs.StringVar(&c.stateDir, "state-dir", "loopkubelet", "folder of the Pods' volumes and logs")
	fs.StringVar(&c.prefix, "prefix", "fgconf", "name prefix of the network namespaces and host interfaces (at most 8 characters)")
	fs.Var(&images, "image", "SUBSTRING=BINARY: containers whose image contains SUBSTRING run BINARY (repeatable)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.kubeconfig == "" {
		return c, fmt.Errorf("--kubeconfig is required")
	}
	if len(c.prefix) == 0 || len(c.prefix) > 8 {
		return c, fmt.Errorf("--prefix must be 1 to 8 characters (interface names are at most 15)")
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return c, fmt.Errorf("--pod-cidr: %w", err)
	}
	c.podCIDR = p.Masked()
	c.images = images
	return c, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		log.Fatal(err)
	}
	if os.Geteuid() != 0 {
		log.Fatal("loopkubelet needs root: every Pod gets its own network namespace")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, cfg); err != nil {
		log.Fatal(err)
	}
}
