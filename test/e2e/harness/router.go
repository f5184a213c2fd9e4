package harness

import (
	"fmt"
	"testing"
)

// routerOctet is the router's address on the second network it joins.
const routerOctet = 254

// Route joins two networks through a router host, as two subnets of a site
// are joined: a host of a with a second leg, eth1, on b's bridge at b's
// .254, forwarding between them. Every host of a and b added so far gets a
// route to the other network through it (add the hosts first). The hosts'
// default route stays via their own bridge, and nothing routes between the
// networks but the router.
func Route(t testing.TB, a, b *Network) *Host {
	t.Helper()
	aHosts, bHosts := a.snapshot(), b.snapshot()
	r := a.AddHost(t, "router")

	unlock, err := lockHarness()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	b.mu.Lock()
	leg := &Host{Name: "router", NS: r.NS, IP: hostIP(b.Subnet, routerOctet),
		RootVeth: fmt.Sprintf("v%s%d", b.id, len(b.hosts)), net: b}
	// Tracked by b too, so b's cleanup removes the leg's root veth.
	b.hosts = append(b.hosts, leg)
	b.mu.Unlock()
	ones, _ := b.Subnet.Mask.Size()
	steps := [][]string{
		{"link", "add", "name", leg.RootVeth, "type", "veth", "peer", "name", "eth1", "netns", r.NS},
		{"link", "set", "dev", leg.RootVeth, "alias", b.owner},
		{"-n", r.NS, "link", "set", "dev", "eth1", "alias", b.owner},
		{"link", "set", "dev", leg.RootVeth, "master", b.Bridge},
		{"link", "set", "dev", leg.RootVeth, "up"},
		{"-n", r.NS, "addr", "add", fmt.Sprintf("%s/%d", leg.IP, ones), "dev", "eth1"},
		{"-n", r.NS, "link", "set", "dev", "eth1", "up"},
	}
	for _, args := range steps {
		if _, err := runIP(args...); err != nil {
			unlock()
			t.Fatalf("harness: router between %s and %s: %v", a.Bridge, b.Bridge, err)
		}
	}
	unlock()
	// /proc/sys/net belongs to the network namespace of whoever opens it.
	if out, err := r.Run(t, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"); err != nil {
		t.Fatalf("harness: router forwarding: %v: %s", err, out)
	}
	for _, h := range aHosts {
		h.routeVia(t, b, r.IP)
	}
	for _, h := range bHosts {
		h.routeVia(t, a, leg.IP)
	}
	t.Logf("harness: router %s joins %s (%s) and %s (%s, as %s)", r.NS, a.Bridge, r.IP, b.Bridge, leg.IP, leg.RootVeth)
	return r
}

// routeVia sends the host's traffic for network n through gw.
func (h *Host) routeVia(t testing.TB, n *Network, gw fmt.Stringer) {
	t.Helper()
	if _, err := runIP("-n", h.NS, "route", "add", n.Subnet.String(), "via", gw.String()); err != nil {
		t.Fatalf("harness: route from %s to %s: %v", h.Name, n.Subnet, err)
	}
}

// snapshot returns the hosts added so far.
func (n *Network) snapshot() []*Host {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*Host(nil), n.hosts...)
}
