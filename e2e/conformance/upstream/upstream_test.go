package upstream

import (
	"os"
	"runtime/debug"
	"testing"
)

// The committed lists are what the module at go.mod's version says: regenerate with
// `go run ./cmd/featuregen` after changing the version.
func TestCommittedListsAreCurrent(t *testing.T) {
	for file, want := range map[string]string{FeaturesFile: FeaturesTSV(), TestsFile: TestsTSV()} {
		got, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("%s: %v (run `go run ./cmd/featuregen`)", file, err)
		}
		if string(got) != want {
			t.Errorf("%s differs from sigs.k8s.io/gateway-api %s: run `go run ./cmd/featuregen` in e2e/conformance", file, Version)
		}
	}
}

func TestUnknownNames(t *testing.T) {
	got := Unknown([]string{"HTTPRoute", "ListenerSet", "GatewayListenerSet"})
	if len(got) != 1 || got[0] != "GatewayListenerSet" {
		t.Fatalf("Unknown = %v, want [GatewayListenerSet]", got)
	}
}

// The Version constant (and the generated file names) follow go.mod.
func TestVersionIsTheOneGoModRequires(t *testing.T) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Skip("no build info")
	}
	for _, d := range bi.Deps {
		if d.Path == "sigs.k8s.io/gateway-api" && d.Version != Version {
			t.Fatalf("go.mod requires sigs.k8s.io/gateway-api %s, upstream.Version is %s", d.Version, Version)
		}
	}
}

func TestTestsOutsideTheClaimedProfiles(t *testing.T) {
	skip := map[string]bool{}
	for _, n := range TestsOutside([]string{"GATEWAY-HTTP", "GATEWAY-TLS", "GATEWAY-GRPC"}) {
		skip[n] = true
	}
	for n, want := range map[string]bool{
		"TCPRouteWeightedRouting": true, "UDPRoute": true, "MeshBasic": true,
		"HTTPRouteSimpleSameNamespace": false, "TLSRouteSimpleSameNamespace": false, "GRPCRouteWeight": false,
		"GatewayInvalidRouteKind": false, // core of every Gateway profile
	} {
		if skip[n] != want {
			t.Errorf("%s skipped = %v, want %v", n, skip[n], want)
		}
	}
}
