package podnet

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
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
