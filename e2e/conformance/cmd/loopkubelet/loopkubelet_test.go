package main

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRewritePathMapsMountPaths(t *testing.T) {
	mounts := []mount{{path: "/etc/secret-volume/", dir: "/state/v/secret"}, {path: "/etc", dir: "/state/v/etc"}}
	for in, want := range map[string]string{
		"/etc/secret-volume/crt": "/state/v/secret/crt",
		"/etc/secret-volume":     "/state/v/secret",
		"/etc/hosts":             "/state/v/etc/hosts",
		"/etcetera":              "/etcetera",
		"plain":                  "plain",
	} {
		if got := rewritePath(in, mounts); got != want {
			t.Errorf("rewritePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIPPoolSkipsNetworkAndFirstHostAndReuses(t *testing.T) {
	p := newIPPool(netip.MustParsePrefix("10.244.0.0/30"))
	a, _ := p.take()
	if a.String() != "10.244.0.2" {
		t.Fatalf("first = %s", a)
	}
	b, _ := p.take()
	if _, err := p.take(); err == nil {
		t.Fatalf("a /30 has two pod addresses, got a third after %s", b)
	}
	p.give(a)
	if c, _ := p.take(); c != a {
		t.Fatalf("given back %s, got %s", a, c)
	}
}

func TestWriteLogsHonoursSinceTailAndTimestamps(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	stored := now.Add(-time.Minute).Format(time.RFC3339Nano) + " old\n" +
		now.Add(-time.Second).Format(time.RFC3339Nano) + " new\n" +
		now.Format(time.RFC3339Nano) + " newest\n"
	run := func(q string) string {
		var b strings.Builder
		v, _ := url.ParseQuery(q)
		writeLogs(&b, strings.NewReader(stored), v, now)
		return b.String()
	}
	if got := run("sinceSeconds=10"); got != "new\nnewest\n" {
		t.Errorf("sinceSeconds: %q", got)
	}
	if got := run("tailLines=1"); got != "newest\n" {
		t.Errorf("tailLines: %q", got)
	}
	if got := run("timestamps=true&tailLines=1"); !strings.HasSuffix(got, " newest\n") || !strings.HasPrefix(got, "2026-") {
		t.Errorf("timestamps: %q", got)
	}
}

func TestFlagsRefuseLongPrefixes(t *testing.T) {
	if _, err := parseFlags([]string{"--kubeconfig=k", "--prefix=waytoolongprefix"}); err == nil {
		t.Fatal("a 16-character prefix leaves no room in a 15-character interface name")
	}
	c, err := parseFlags([]string{"--kubeconfig=k", "--image=echo-basic=/bin/echo", "--pod-cidr=10.244.0.7/24"})
	if err != nil || c.podCIDR.String() != "10.244.0.0/24" || c.images[0].binary != "/bin/echo" {
		t.Fatalf("parseFlags = %+v, %v", c, err)
	}
}
