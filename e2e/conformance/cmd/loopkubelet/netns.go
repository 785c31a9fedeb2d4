package main

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
)

// addNamespace creates network namespace ns holding ip/32 on its eth0, reached from the host by a
// /32 route over the veth hostIf. Nothing leaves this host: the route lives in the host's table
// only and the namespace's default route leads back to the host.
func addNamespace(ns, hostIf, ip string) error {
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"link", "set", hostIf, "up"},
		{"route", "replace", ip + "/32", "dev", hostIf},
		{"-n", ns, "addr", "add", ip + "/32", "dev", "eth0"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "route", "add", "default", "dev", "eth0"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// deleteNamespace removes a namespace; its veth pair and the host route go with it.
func deleteNamespace(ns string) { _ = exec.Command("ip", "netns", "del", ns).Run() }

// removeNamespaces deletes every namespace whose name starts with prefix (left by a killed run).
func removeNamespaces(prefix string) {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			deleteNamespace(f[0])
		}
	}
}

func netipFrom(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}
