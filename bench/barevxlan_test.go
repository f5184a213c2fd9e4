//go:build bench

package bench

// A VXLAN built by hand with ip(8), no k3ha: the kernel's own cost of the
// path a pod's traffic takes (veth, bridge, routing, VXLAN on both ends),
// without conntrack, iptables or anything else a cluster adds. It tells
// what part of the gap to host-to-host throughput is the kernel's.

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/k3ha/k3ha/test/e2e/harness"
)

// barePod is a network namespace wired like a pod on a host: a veth into
// the host's bridge cni0, 10.244.<i>.2/24, MTU 1450 as under flannel.
type barePod struct{ ns string }

// bareVXLAN wires hosts a and b (indexes 1 and 2) as flannel's VXLAN
// backend would, each with one pod, and returns the pods.
func bareVXLAN(t *testing.T, hosts [2]*harness.Host) [2]barePod {
	t.Helper()
	var pods [2]barePod
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	// ipIn runs ip(8) in network namespace ns.
	ipIn := func(ns string) func(...string) {
		return func(a ...string) { run(append([]string{"ip", "-n", ns}, a...)...) }
	}
	for i, h := range hosts {
		n := i + 1
		pods[i] = barePod{ns: h.NS + "p"}
		run("ip", "netns", "add", pods[i].ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", pods[i].ns).Run() })
		hip, pip := ipIn(h.NS), ipIn(pods[i].ns)
		run("ip", "netns", "exec", h.NS, "sysctl", "-qw", "net.ipv4.ip_forward=1")
		hip("link", "add", "cni0", "type", "bridge")
		hip("addr", "add", fmt.Sprintf("10.244.%d.1/24", n), "dev", "cni0")
		hip("link", "set", "cni0", "up")
		hip("link", "add", "vethpod", "type", "veth", "peer", "name", "eth0", "netns", pods[i].ns)
		hip("link", "set", "vethpod", "master", "cni0", "up")
		pip("addr", "add", fmt.Sprintf("10.244.%d.2/24", n), "dev", "eth0")
		pip("link", "set", "eth0", "mtu", "1450", "up")
		pip("link", "set", "lo", "up")
		pip("route", "add", "default", "via", fmt.Sprintf("10.244.%d.1", n))
		hip("link", "add", "flannel.1", "type", "vxlan", "id", "1", "dev", "eth0", "local", h.IP.String(), "dstport", "8472", "nolearning")
		hip("link", "set", "flannel.1", "address", fmt.Sprintf("02:00:00:00:00:0%d", n), "mtu", "1450", "up")
		hip("addr", "add", fmt.Sprintf("10.244.%d.0/32", n), "dev", "flannel.1")
	}
	for i, h := range hosts {
		other, m := hosts[1-i], 2-i
		hip := ipIn(h.NS)
		hip("route", "add", fmt.Sprintf("10.244.%d.0/24", m), "via", fmt.Sprintf("10.244.%d.0", m), "dev", "flannel.1", "onlink")
		hip("neigh", "add", fmt.Sprintf("10.244.%d.0", m), "lladdr", fmt.Sprintf("02:00:00:00:00:0%d", m), "dev", "flannel.1", "nud", "permanent")
		run("ip", "netns", "exec", h.NS, "bridge", "fdb", "append", fmt.Sprintf("02:00:00:00:00:0%d", m), "dev", "flannel.1", "dst", other.IP.String())
	}
	return pods
}

// command runs name in the pod.
func (p barePod) command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", p.ns, name}, args...)...)
}
