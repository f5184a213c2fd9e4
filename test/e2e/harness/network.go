// Package harness builds throwaway multi-host test networks for k3ha's
// end-to-end tests. Every test "host" is a Linux network namespace with its
// own IP address on a private bridge, so servers see each other exactly as
// separate machines on one LAN would.
//
// Naming (the sweep of crashed runs relies on it; <id> is four random
// characters chosen per Network):
//
//	bridge      k3e<id>              root namespace, owns <subnet>.1/24
//	netns       k3e-<id>-<hostname>  one per host
//	root veth   v<id><index>         bridge port of a host; its peer is eth0 in the netns
//
// Bridges, root veths and each host's eth0 carry the interface alias
// "k3e-owner:<pid>:<starttime>" naming the test process that created them, so
// a later run can tell leftovers of a dead run from a concurrently running one.
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	bridgePrefix = "k3e"
	nsPrefix     = "k3e-"
	ownerPrefix  = "k3e-owner:"

	// maxNSName keeps netns names short enough for log lines and for the
	// file names ip(8) creates under /run/netns.
	maxNSName = 32

	// firstHostOctet is the last octet of the first host; .1 is the bridge.
	firstHostOctet = 10

	// lockPath serialises sweeping, subnet selection and object creation
	// between concurrently running test binaries (go test runs packages in
	// parallel). flock is released by the kernel if the holder dies.
	lockPath = "/run/k3e-e2e.lock"

	// ipTimeout bounds a single ip(8) invocation; they normally take
	// milliseconds, so hitting it means the system is wedged.
	ipTimeout = 30 * time.Second
)

// Network is a private test LAN: one Linux bridge in the root namespace plus
// hosts in their own network namespaces.
type Network struct {
	Bridge  string
	Subnet  *net.IPNet
	Gateway net.IP // bridge address, .1

	id    string
	owner string

	mu    sync.Mutex
	hosts []*Host
	spare int // addresses handed out by Host.ChangeIP and Host.AddAddress

	// iptablesRule is the FORWARD rule NewNetwork inserted (nil if none);
	// see allowBridgedTraffic.
	iptablesRule []string
}

// NewNetwork creates a bridge on a free /24 of 10.213.0.0/16 and registers a
// cleanup that removes it together with all hosts added later. It first
// removes leftovers of earlier crashed runs.
func NewNetwork(t testing.TB) *Network {
	t.Helper()
	checkPrerequisites(t)

	owner, err := selfOwnerTag()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}

	unlock, err := lockHarness()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	defer unlock()

	sweepLeftovers(t)

	id, err := pickID()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	subnet, err := pickSubnet()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	gw := hostIP(subnet, 1)
	n := &Network{
		Bridge:  bridgePrefix + id,
		Subnet:  subnet,
		Gateway: gw,
		id:      id,
		owner:   owner,
	}

	// A fixed MAC stops the bridge from adopting the lowest port MAC, which
	// would change as hosts come and go and leave stale ARP entries for the
	// gateway in the hosts.
	mac := net.HardwareAddr{0x02, 0x6b, 0x33, byte(rand.IntN(256)), byte(rand.IntN(256)), byte(rand.IntN(256))}
	if _, err := runIP("link", "add", "name", n.Bridge, "address", mac.String(), "type", "bridge"); err != nil {
		t.Fatalf("harness: create bridge: %v", err)
	}
	// Registered right after creation so that a failure below still removes
	// what exists so far.
	t.Cleanup(func() { n.cleanup(t) })

	ones, _ := subnet.Mask.Size()
	steps := [][]string{
		// The kernel ignores an alias given to "ip link add", so set it separately
		// (under the lock, so no sweep sees the bridge untagged).
		{"link", "set", "dev", n.Bridge, "alias", owner},
		{"addr", "add", fmt.Sprintf("%s/%d", gw, ones), "dev", n.Bridge},
		{"link", "set", "dev", n.Bridge, "up"},
	}
	for _, args := range steps {
		if _, err := runIP(args...); err != nil {
			t.Fatalf("harness: set up bridge %s: %v", n.Bridge, err)
		}
	}

	if err := n.allowBridgedTraffic(t); err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Logf("harness: network %s on %s", n.Bridge, subnet)
	return n
}

// checkPrerequisites fails (never skips: a skipped e2e test would count as
// passing) when the harness cannot work at all.
func checkPrerequisites(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("harness: e2e tests must run as root (they create network namespaces and bridges); euid is %d", os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("harness: iproute2 'ip' command is required: %v", err)
	}
}

// runIP runs ip(8) in the root namespace and returns its combined output.
func runIP(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// lockHarness takes the cross-process harness lock.
func lockHarness() (func(), error) {
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	return func() {
		// Closing the file releases the flock.
		f.Close()
	}, nil
}

const idChars = "abcdefghijklmnopqrstuvwxyz0123456789"

func randID() string {
	b := make([]byte, 4)
	for i := range b {
		b[i] = idChars[rand.IntN(len(idChars))]
	}
	return string(b)
}

// pickID returns an id no existing bridge or netns uses. Called under the lock.
func pickID() (string, error) {
	nss, err := listNetns()
	if err != nil {
		return "", err
	}
	for range 100 {
		id := randID()
		if linkExists(bridgePrefix + id) {
			continue
		}
		if slices.ContainsFunc(nss, func(ns string) bool { return strings.HasPrefix(ns, nsPrefix+id+"-") }) {
			continue
		}
		return id, nil
	}
	return "", errors.New("no free network id found")
}

// pickSubnet returns a random 10.213.X.0/24 that overlaps no address
// configured on any root-namespace interface. Called under the lock, and the
// chosen subnet is configured on the bridge before the lock is released, so
// concurrent runs cannot pick the same one.
func pickSubnet() (*net.IPNet, error) {
	out, err := runIP("-o", "-4", "addr", "show")
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var used []*net.IPNet
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] != "inet" {
				continue
			}
			if _, ipn, err := net.ParseCIDR(f[i+1]); err == nil {
				used = append(used, ipn)
			}
		}
	}
	for _, x := range rand.Perm(254) {
		cand := &net.IPNet{IP: net.IPv4(10, 213, byte(x+1), 0).To4(), Mask: net.CIDRMask(24, 32)}
		if !slices.ContainsFunc(used, func(u *net.IPNet) bool {
			return u.Contains(cand.IP) || cand.Contains(u.IP)
		}) {
			return cand, nil
		}
	}
	return nil, errors.New("no free /24 left in 10.213.0.0/16")
}

// hostIP returns the address with last octet n inside a /24.
func hostIP(subnet *net.IPNet, n int) net.IP {
	ip := slices.Clone(subnet.IP.To4())
	ip[3] = byte(n)
	return ip
}

func linkExists(name string) bool {
	_, err := os.Lstat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// listNetns returns the names of all named network namespaces.
func listNetns() ([]string, error) {
	out, err := runIP("netns", "list")
	if err != nil {
		return nil, fmt.Errorf("list netns: %w", err)
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		// Lines look like "name" or "name (id: 3)".
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// netnsPIDs returns the processes living in a named netns.
func netnsPIDs(ns string) ([]int, error) {
	out, err := runIP("netns", "pids", ns)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// selfOwnerTag identifies this process; the start time guards against PID reuse.
func selfOwnerTag() (string, error) {
	pid := os.Getpid()
	st, err := procStartTime(pid)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s%d:%s", ownerPrefix, pid, st), nil
}

// procStartTime returns field 22 of /proc/<pid>/stat (start time in ticks).
func procStartTime(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", fmt.Errorf("read process start time: %w", err)
	}
	// The command name (field 2) may contain spaces, so split after its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	const startTimeIdx = 22 - 3 // fields after ')' start at field 3
	if len(f) <= startTimeIdx {
		return "", fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return f[startTimeIdx], nil
}

// ownerAlive reports whether the process named by an owner tag still runs.
func ownerAlive(tag string) bool {
	rest, ok := strings.CutPrefix(tag, ownerPrefix)
	if !ok {
		return false
	}
	pidStr, start, ok := strings.Cut(rest, ":")
	if !ok {
		return false
	}
	pid, err := strconv.Atoi(pidStr)
	if err != nil {
		return false
	}
	st, err := procStartTime(pid)
	return err == nil && st == start
}

// linkAlias returns the interface alias of a root-namespace link ("" if none).
func linkAlias(name string) string {
	b, err := os.ReadFile(filepath.Join("/sys/class/net", name, "ifalias"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// nsOwner returns the owner tag on eth0 inside a netns ("" if none).
func nsOwner(ns string) string {
	out, err := runIP("-n", ns, "-o", "link", "show", "dev", "eth0")
	if err != nil {
		return ""
	}
	// One-line output ends with "\    alias <tag>" when an alias is set.
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "alias" {
			return f[i+1]
		}
	}
	return ""
}

// sweepLeftovers removes what crashed earlier runs left behind:
//   - netns "k3e-*" that contain no processes and whose owner is gone;
//   - root-namespace links tagged by a dead owner: bridges without ports
//     (no hosts left) and veths whose peer is not in another namespace
//     (a veth whose peer is in a netns disappears with that netns);
//   - untagged bridges "k3e*" without ports (a run that died between
//     creating and tagging; creation happens under the lock, so this cannot
//     be a live run's bridge).
//
// Namespaces that still hold processes are kept and reported: killing
// processes of unknown origin is left to a human.
func sweepLeftovers(t testing.TB) {
	t.Helper()
	nss, err := listNetns()
	if err != nil {
		t.Logf("harness: sweep: %v", err)
	}
	for _, ns := range nss {
		if !strings.HasPrefix(ns, nsPrefix) || ownerAlive(nsOwner(ns)) {
			continue
		}
		pids, err := netnsPIDs(ns)
		if err != nil {
			t.Logf("harness: sweep: %v", err)
			continue
		}
		if len(pids) > 0 {
			t.Logf("harness: sweep: keeping leftover netns %s: processes %v still run in it", ns, pids)
			continue
		}
		if _, err := runIP("netns", "del", ns); err != nil {
			t.Logf("harness: sweep: %v", err)
			continue
		}
		t.Logf("harness: sweep: removed leftover netns %s", ns)
	}

	entries, err := os.ReadDir("/sys/class/net")
	if err != nil {
		t.Logf("harness: sweep: list links: %v", err)
		return
	}
	for _, e := range entries {
		name := e.Name()
		alias := linkAlias(name)
		tagged := strings.HasPrefix(alias, ownerPrefix)
		isBridge := fileExists(filepath.Join("/sys/class/net", name, "bridge"))
		var remove bool
		switch {
		case tagged && ownerAlive(alias):
		case isBridge && (tagged || (alias == "" && strings.HasPrefix(name, bridgePrefix))):
			remove = !hasBridgePorts(name)
		case tagged:
			remove = !peerInOtherNetns(name)
		}
		if !remove {
			continue
		}
		if _, err := runIP("link", "del", "dev", name); err != nil {
			t.Logf("harness: sweep: %v", err)
			continue
		}
		t.Logf("harness: sweep: removed leftover link %s", name)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func hasBridgePorts(bridge string) bool {
	ports, err := os.ReadDir(filepath.Join("/sys/class/net", bridge, "brif"))
	return err != nil || len(ports) > 0 // unreadable: assume in use
}

func peerInOtherNetns(link string) bool {
	out, err := runIP("-o", "link", "show", "dev", link)
	if err != nil {
		return true // unknown: leave it alone
	}
	return strings.Contains(out, "link-netns")
}

// Host returns the host with the given name, or nil.
func (n *Network) Host(name string) *Host {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, h := range n.hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// cleanup tears the network down in dependency order: processes first (a
// netns lives on while processes use it), then namespaces, the bridge and
// finally veths that did not vanish with their namespace. Anything already
// gone is fine; anything that cannot be removed is logged, not failed.
func (n *Network) cleanup(t testing.TB) {
	n.mu.Lock()
	hosts := slices.Clone(n.hosts)
	n.mu.Unlock()

	for _, h := range hosts {
		h.killAll(t)
	}
	// Deleting under the lock keeps a concurrent sweep from racing us over
	// the same objects (and logging spurious failures).
	if unlock, err := lockHarness(); err != nil {
		t.Logf("harness: cleanup: %v", err)
	} else {
		defer unlock()
	}
	nss := mustListNetns(t)
	for _, h := range hosts {
		if !slices.Contains(nss, h.NS) {
			continue
		}
		if _, err := runIP("netns", "del", h.NS); err != nil {
			t.Logf("harness: cleanup: %v", err)
		}
	}
	if linkExists(n.Bridge) {
		if _, err := runIP("link", "del", "dev", n.Bridge); err != nil && linkExists(n.Bridge) {
			t.Logf("harness: cleanup: %v", err)
		}
	}
	for _, h := range hosts {
		// Normally the veth is destroyed with its netns; it may survive if the
		// netns could not be deleted or was never populated.
		if linkExists(h.RootVeth) {
			if _, err := runIP("link", "del", "dev", h.RootVeth); err != nil && linkExists(h.RootVeth) {
				t.Logf("harness: cleanup: %v", err)
			}
		}
	}
	if n.iptablesRule != nil {
		if err := runIPTables(append([]string{"-D"}, n.iptablesRule...)...); err != nil {
			t.Logf("harness: cleanup: %v", err)
		}
	}
}

func mustListNetns(t testing.TB) []string {
	nss, err := listNetns()
	if err != nil {
		t.Logf("harness: cleanup: %v", err)
	}
	return nss
}

// allowBridgedTraffic makes sure frames between two hosts of this network
// are not dropped by the root namespace's firewall.
//
// Background: once br_netfilter is loaded, net.bridge.bridge-nf-call-iptables
// defaults to 1 and IPv4 frames switched between two ports of a bridge pass
// through the iptables FORWARD chain of the bridge's namespace (the
// per-bridge nf_call_iptables option can only add to that, not opt out).
// ip_forward does not matter for them (they are switched, not routed), but a
// FORWARD policy of DROP as set up by Docker silently breaks host-to-host
// traffic while root-to-host traffic (INPUT/OUTPUT) still works.
//
// On the machine this was written on the sysctl is 1, yet there is neither an
// iptables nor an nft binary and no iptables table is loaded in the root
// namespace (/proc/net/ip_tables_names is empty), so nothing filters and
// bridged traffic passes. Where an iptables binary exists and FORWARD is not
// an empty ACCEPT chain, an ACCEPT rule limited to this bridge is inserted at
// the top and removed in cleanup. Changing the sysctl instead would alter
// firewalling for every bridge on the machine.
func (n *Network) allowBridgedTraffic(t testing.TB) error {
	t.Helper()
	v, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables")
	if err != nil || strings.TrimSpace(string(v)) != "1" {
		return nil // br_netfilter absent or off: bridged frames bypass iptables
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		if names, _ := os.ReadFile("/proc/net/ip_tables_names"); bytes.Contains(names, []byte("filter")) {
			t.Logf("harness: warning: bridged frames pass iptables and a filter table is loaded, but no iptables binary is available to allow them; host-to-host traffic on %s may be dropped", n.Bridge)
		}
		return nil
	}
	out, err := iptablesOutput("-S", "FORWARD")
	if err != nil {
		return fmt.Errorf("inspect FORWARD chain: %w", err)
	}
	if !forwardMayDrop(out) {
		return nil
	}
	rule := []string{"FORWARD", "-i", n.Bridge, "-o", n.Bridge, "-j", "ACCEPT"}
	if err := runIPTables(append([]string{"-I"}, rule...)...); err != nil {
		return fmt.Errorf("allow bridged traffic: %w", err)
	}
	n.iptablesRule = rule
	t.Logf("harness: FORWARD chain filters bridged traffic; inserted iptables %s", strings.Join(rule, " "))
	return nil
}

// forwardMayDrop reports whether "iptables -S FORWARD" output shows anything
// but an empty chain with policy ACCEPT; any rule could jump to a DROP.
func forwardMayDrop(out string) bool {
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		switch {
		case line == "":
		case strings.HasPrefix(line, "-P FORWARD "):
			if strings.TrimSpace(strings.TrimPrefix(line, "-P FORWARD ")) != "ACCEPT" {
				return true
			}
		default:
			return true
		}
	}
	return false
}

func iptablesOutput(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
	defer cancel()
	// -w waits for the xtables lock instead of failing when another tool holds it.
	out, err := exec.CommandContext(ctx, "iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

func runIPTables(args ...string) error {
	_, err := iptablesOutput(args...)
	return err
}
