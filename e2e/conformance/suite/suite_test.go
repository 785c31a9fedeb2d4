//go:build conformance

// Package suite runs the upstream Gateway API conformance suite against fleetgate on the bed:
// TestMain brings the bed up (every component a child of this test binary, Envoy included),
// TestConformance is the suite itself with its own flags (-conformance-profiles, -report-output,
// ...), and the bed is torn down afterwards, on failure, and on SIGINT/SIGTERM. Built by
// scripts/conformance-setup.sh (`go test -tags conformance -c`) and run by `make conformance`.
package suite

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"sigs.k8s.io/gateway-api/conformance"

	"fleetgate.dev/e2e/conformance/bed"
	"fleetgate.dev/e2e/conformance/upstream"
)

var hold = flag.Bool("bed-hold", false, "keep the bed up after the suite until SIGINT/SIGTERM (to look around with the printed KUBECONFIG)")

func TestMain(m *testing.M) {
	flag.Parse()
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	skipTestsOutsideProfiles(logf)
	cfg, err := bed.ConfigFromEnv()
	if err != nil {
		logf("bed: %v", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	var b *bed.Bed
	down := make(chan struct{})
	go func() {
		s := <-signals
		logf("bed: %v: tearing down", s)
		cancel()
		if b != nil {
			b.Down()
		}
		close(down)
		os.Exit(130)
	}()
	b, err = bed.Up(ctx, cfg, logf)
	if err != nil {
		logf("bed: %v", err)
		os.Exit(2)
	}
	os.Setenv("KUBECONFIG", b.Kubeconfig)
	code := m.Run()
	if *hold {
		logf("bed: holding; KUBECONFIG=%s; Ctrl-C to stop", b.Kubeconfig)
		<-down
	}
	signal.Stop(signals)
	b.Down()
	os.Exit(code)
}

// skipTestsOutsideProfiles: with -conformance-profiles and no -skip-tests or -run-test, the tests
// of no requested profile are skipped (the suite selects tests by feature, so a TCPRoute
// implementation would otherwise run GATEWAY-TCP's tests too). Skipping keeps the suite reading
// the supported features from the GatewayClass.
func skipTestsOutsideProfiles(logf func(string, ...any)) {
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["conformance-profiles"] || set["skip-tests"] || set["run-test"] {
		return
	}
	profiles := strings.Split(flag.Lookup("conformance-profiles").Value.String(), ",")
	skip := upstream.TestsOutside(profiles)
	if err := flag.Set("skip-tests", strings.Join(skip, ",")); err != nil {
		logf("bed: -skip-tests: %v", err)
		os.Exit(2)
	}
	logf("bed: skipping %d tests of no profile in %s", len(skip), strings.Join(profiles, ","))
}

func TestConformance(t *testing.T) {
	conformance.RunConformance(t)
}
