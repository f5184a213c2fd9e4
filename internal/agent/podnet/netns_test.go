package podnet

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/k3ha/k3ha/internal/testutil/logtest"
)

// inNetnsEnv tells the test binary it was started inside a scratch network
// namespace by TestNetns and may change routes and iptables there.
const inNetnsEnv = "K3HA_PODNET_IN_NETNS"

// TestNetns runs TestInNetns in a network namespace of its own, so the
// routes and iptables rules it makes never touch the machine's.
func TestNetns(t *testing.T) {
	if os.Getenv(inNetnsEnv) != "" {
		t.Skip("already inside")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2)")
	}
	hostNAT := iptablesS(t, "nat", "")
	name := fmt.Sprintf("k3ha-podnet-test-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("delete netns %s: %v: %s", name, err, out)
		}
	})
	cmd := exec.Command("ip", "netns", "exec", name, os.Args[0], "-test.run=^TestInNetns$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), inNetnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("inside netns %s:\n%s", name, out)
	if err != nil {
		t.Fatalf("test inside netns: %v", err)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestInNetns")) {
		t.Fatal("TestInNetns did not run")
	}
	if after := iptablesS(t, "nat", ""); after != hostNAT {
		t.Errorf("host nat table changed:\nbefore:\n%s\nafter:\n%s", hostNAT, after)
	}
}

// iptablesS lists a table (one chain if given) as `iptables -S` does; ""
// when iptables is missing.
func iptablesS(t *testing.T, table, chain string) string {
	t.Helper()
	if _, err := exec.LookPath("iptables"); err != nil {
		return ""
	}
	args := []string{"-w", "5", "-t", table, "-S"}
	if chain != "" {
		args = append(args, chain)
	}
	out, err := exec.Command("iptables", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("iptables %v: %v: %s", args, err, out)
	}
	return string(out)
}

func TestInNetns(t *testing.T) {
	if os.Getenv(inNetnsEnv) == "" {
		t.Skip("run by TestNetns inside a scratch network namespace")
	}
	// This kernel has no dummy links; a veth pair with both ends here
	// gives two addresses on one L2 segment.
	run(t, "ip", "link", "set", "lo", "up")
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "k3ha0"}, PeerName: "k3ha1"}); err != nil {
		t.Fatalf("veth: %v", err)
	}
	run(t, "ip", "addr", "add", "10.99.0.1/24", "dev", "k3ha0")
	run(t, "ip", "addr", "add", "10.99.0.2/24", "dev", "k3ha1")
	run(t, "ip", "link", "set", "k3ha0", "up")
	run(t, "ip", "link", "set", "k3ha1", "up")

	t.Run("routes", testRoutesInNetns)
	t.Run("prepare", testPrepareInNetns)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
	return string(out)
}

// routeTo returns the main-table IPv4 route to dst, nil if none.
func routeTo(t *testing.T, dst string) *netlink.Route {
	t.Helper()
	routes, err := mainRoutes()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Dst != nil && r.Dst.String() == dst {
			return &r
		}
	}
	return nil
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testRoutesInNetns(t *testing.T) {
	logs := &logtest.Buffer{}
	// Not restored: this process exists only for TestInNetns.
	slog.SetDefault(slog.New(slog.NewTextHandler(io.MultiWriter(logs, os.Stderr), nil)))
	oldResync := resyncInterval
	resyncInterval = 50 * time.Millisecond // many syncs: warnings must still come once
	t.Cleanup(func() { resyncInterval = oldResync })

	// Foreign routes: k3ha must leave them alone, even the one to a pod CIDR.
	run(t, "ip", "route", "add", "10.42.9.0/24", "via", "10.99.0.2", "proto", "static")
	run(t, "ip", "route", "add", "10.43.0.0/16", "via", "10.99.0.2")
	// A default route makes 203.0.113.5 reachable, but only behind a gateway.
	run(t, "ip", "route", "add", "default", "via", "10.99.0.254")
	// Ours from an earlier run, for a node that no longer exists.
	run(t, "ip", "route", "add", "10.42.50.0/24", "via", "10.99.0.2", "proto", fmt.Sprint(int(RouteProtocol)))

	ctx, cancel := context.WithCancel(context.Background())
	client := fake.NewClientset(
		node("self", "10.42.0.0/24", "10.99.0.1"),
		node("n7", "10.42.7.0/24", "10.99.0.2"),
		node("conflict", "10.42.9.0/24", "10.99.0.2"),
		node("far", "10.42.8.0/24", "203.0.113.5"),
	)
	cfg := Config{NodeName: "self", NodeIP: net.ParseIP("10.99.0.1"), ClusterCIDR: "10.42.0.0/16"}
	done := make(chan error, 1)
	go func() { done <- Routes(ctx, cfg, client) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Routes: %v", err)
		}
	}()

	ours := func(dst, gw string) func() bool {
		return func() bool {
			r := routeTo(t, dst)
			return r != nil && r.Protocol == RouteProtocol && r.Gw.Equal(net.ParseIP(gw))
		}
	}
	gone := func(dst string) func() bool { return func() bool { return routeTo(t, dst) == nil } }

	eventually(t, "route to n7's pods", ours("10.42.7.0/24", "10.99.0.2"))
	eventually(t, "stale route of an earlier run removed", gone("10.42.50.0/24"))
	t.Log(run(t, "ip", "route", "show"))

	// The kernel dropping our route (a link flap) is repaired by the resync.
	if err := netlink.RouteDel(&netlink.Route{Dst: mustCIDR(t, "10.42.7.0/24"), Protocol: RouteProtocol}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "route restored", ours("10.42.7.0/24", "10.99.0.2"))

	// A changed CIDR moves the route.
	n7, err := client.CoreV1().Nodes().Get(ctx, "n7", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n7.Spec.PodCIDR, n7.Spec.PodCIDRs = "10.42.17.0/24", []string{"10.42.17.0/24"}
	if _, err := client.CoreV1().Nodes().Update(ctx, n7, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "route for the new CIDR", ours("10.42.17.0/24", "10.99.0.2"))
	eventually(t, "route for the old CIDR removed", gone("10.42.7.0/24"))

	// Deleting the node removes its route.
	if err := client.CoreV1().Nodes().Delete(ctx, "n7", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "route of the deleted node removed", gone("10.42.17.0/24"))
	time.Sleep(200 * time.Millisecond) // a few more resyncs

	for dst, proto := range map[string]netlink.RouteProtocol{"10.42.9.0/24": unix.RTPROT_STATIC, "10.43.0.0/16": unix.RTPROT_BOOT} {
		if r := routeTo(t, dst); r == nil || r.Protocol != proto {
			t.Errorf("foreign route to %s touched: %v", dst, r)
		}
	}
	if r := routeTo(t, "10.42.8.0/24"); r != nil {
		t.Errorf("route to a node behind a gateway: %v", r)
	}
	out := logs.String()
	for _, n := range []string{"conflict", "far"} {
		if c := strings.Count(out, "node="+n+" "); c != 1 {
			t.Errorf("%d warnings about node %s, want 1:\n%s", c, n, out)
		}
	}
	if !strings.Contains(out, "behind gateway 10.99.0.254") {
		t.Errorf("no L2 warning for node far:\n%s", out)
	}
}

func testPrepareInNetns(t *testing.T) {
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("no iptables")
	}
	cfg := Config{NodeName: "self", NodeIP: net.ParseIP("10.99.0.1"), ClusterCIDR: "10.42.0.0/16"}
	for range 2 { // twice: nothing may be duplicated
		if err := Prepare(cfg, mustCIDR(t, "10.42.5.0/24")); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.TrimSpace(run(t, "cat", "/proc/sys/net/ipv4/ip_forward")); got != "1" {
		t.Errorf("ip_forward = %s", got)
	}
	if b, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables"); err == nil && strings.TrimSpace(string(b)) != "1" {
		t.Errorf("bridge-nf-call-iptables = %s", b)
	}
	wantNAT := `-N K3HA-POSTROUTING
-A K3HA-POSTROUTING -s 10.42.5.0/24 -d 10.42.0.0/16 -m comment --comment "k3ha: pod to pod keeps pod IPs" -j RETURN
-A K3HA-POSTROUTING -s 10.42.5.0/24 -m comment --comment "k3ha: pods to outside the cluster" -j MASQUERADE
`
	if got := iptablesS(t, "nat", "K3HA-POSTROUTING"); got != wantNAT {
		t.Errorf("nat chain:\n%s\nwant:\n%s", got, wantNAT)
	}
	wantFilter := `-N K3HA-FORWARD
-A K3HA-FORWARD -s 10.42.0.0/16 -m comment --comment "k3ha: forward pod traffic" -j ACCEPT
-A K3HA-FORWARD -d 10.42.0.0/16 -m comment --comment "k3ha: forward pod traffic" -j ACCEPT
`
	if got := iptablesS(t, "filter", "K3HA-FORWARD"); got != wantFilter {
		t.Errorf("filter chain:\n%s\nwant:\n%s", got, wantFilter)
	}
	if got := iptablesS(t, "nat", "POSTROUTING"); strings.Count(got, "-j K3HA-POSTROUTING") != 1 {
		t.Errorf("POSTROUTING:\n%s", got)
	}
	if got := iptablesS(t, "filter", "FORWARD"); strings.Count(got, "-j K3HA-FORWARD") != 1 {
		t.Errorf("FORWARD:\n%s", got)
	}

	// A new pod CIDR replaces the rules instead of adding to them.
	if err := Prepare(cfg, mustCIDR(t, "10.42.6.0/24")); err != nil {
		t.Fatal(err)
	}
	got := iptablesS(t, "nat", "K3HA-POSTROUTING")
	if strings.Contains(got, "10.42.5.0/24") || strings.Count(got, "10.42.6.0/24") != 2 {
		t.Errorf("nat chain after CIDR change:\n%s", got)
	}
	t.Log("\n" + run(t, "iptables-save"))
}
