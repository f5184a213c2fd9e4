package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// runTimeout bounds Host.Run so a hung command fails the test instead of
// hanging it until go test's global timeout.
const runTimeout = 2 * time.Minute

// killWait is how long killing waits for processes to disappear.
const killWait = 10 * time.Second

var hostNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9-]*$`)

// Host is one machine of a Network: a network namespace whose eth0 is
// plugged into the network's bridge.
type Host struct {
	Name     string
	NS       string
	IP       net.IP
	RootVeth string

	net *Network

	mu    sync.Mutex
	procs []*Process
}

// AddHost creates a host with address .N/24, N = 10 + its index in the
// network (the first host is .10), and a default route via the gateway.
func (n *Network) AddHost(t testing.TB, name string) *Host {
	t.Helper()
	ns := nsPrefix + n.id + "-" + name
	if !hostNameRE.MatchString(name) || len(ns) > maxNSName {
		t.Fatalf("harness: invalid host name %q: want letters, digits and '-', at most %d characters", name, maxNSName-len(nsPrefix+n.id+"-"))
	}

	// The lock keeps a concurrent sweep from seeing the netns before its
	// eth0 carries our owner tag.
	unlock, err := lockHarness()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	defer unlock()

	n.mu.Lock()
	idx := len(n.hosts)
	dup := slices.ContainsFunc(n.hosts, func(h *Host) bool { return h.Name == name })
	n.mu.Unlock()
	if dup {
		t.Fatalf("harness: host %q already exists in network %s", name, n.Bridge)
	}
	if firstHostOctet+idx > 254 {
		t.Fatalf("harness: network %s is full", n.Bridge)
	}
	h := &Host{
		Name:     name,
		NS:       ns,
		IP:       hostIP(n.Subnet, firstHostOctet+idx),
		RootVeth: fmt.Sprintf("v%s%d", n.id, idx),
		net:      n,
	}

	if _, err := runIP("netns", "add", ns); err != nil {
		t.Fatalf("harness: add host %s: %v", name, err)
	}
	// Tracked from here on so the network cleanup removes partial hosts too.
	n.mu.Lock()
	n.hosts = append(n.hosts, h)
	n.mu.Unlock()

	ones, _ := n.Subnet.Mask.Size()
	steps := [][]string{
		// Creating the peer directly inside the netns avoids a clash with the
		// root namespace's own eth0.
		{"link", "add", "name", h.RootVeth, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"link", "set", "dev", h.RootVeth, "alias", n.owner},
		{"-n", ns, "link", "set", "dev", "eth0", "alias", n.owner},
		{"link", "set", "dev", h.RootVeth, "master", n.Bridge},
		{"link", "set", "dev", h.RootVeth, "up"},
		{"-n", ns, "addr", "add", fmt.Sprintf("%s/%d", h.IP, ones), "dev", "eth0"},
		{"-n", ns, "link", "set", "dev", "lo", "up"},
		{"-n", ns, "link", "set", "dev", "eth0", "up"},
		{"-n", ns, "route", "add", "default", "via", n.Gateway.String()},
	}
	for _, args := range steps {
		if _, err := runIP(args...); err != nil {
			t.Fatalf("harness: add host %s: %v", name, err)
		}
	}
	t.Logf("harness: host %s: netns %s, %s, veth %s", name, ns, h.IP, h.RootVeth)
	return h
}

// Command returns a command that runs inside the host's netns. nsenter
// enters only the network namespace and execs the program in place, so the
// PID is the program's own. (ip netns exec would also give it a mount
// namespace with a fresh /sys, which hides the cgroup filesystems a kubelet
// needs.)
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", h.nsenterArgs(name, args)...)
}

func (h *Host) nsenterArgs(name string, args []string) []string {
	return append([]string{"--net=/var/run/netns/" + h.NS, "--", name}, args...)
}

// Run runs a command inside the host and returns its combined output. It is
// killed (with its process group) after two minutes. The timeout is not tied
// to t.Context, which is already cancelled when cleanups run, so Run also
// works for collecting diagnostics in a cleanup.
func (h *Host) Run(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", h.nsenterArgs(name, args)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Children that inherited the output pipe must not keep Run waiting.
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("run %s in host %s: %w", name, h.Name, err)
	}
	return string(out), nil
}

// Start starts a long-running program inside the host. stdout and stderr are
// appended to logPath; env is added to the test's environment (later entries
// win). The process gets its own process group so that it and everything it
// spawns can be killed together; a cleanup on t kills the group and waits.
func (h *Host) Start(t testing.TB, logPath string, env []string, name string, args ...string) *Process {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		t.Fatalf("harness: start %s in host %s: %v", name, h.Name, err)
	}
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("harness: start %s in host %s: open log: %v", name, h.Name, err)
	}
	// The child holds its own copy of the descriptor.
	defer f.Close()

	cmd := h.Command(name, args...)
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// Safety net if the test binary dies without running cleanups (e.g.
		// go test's timeout panic): the program itself is killed.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("harness: start %s in host %s: %v", name, h.Name, err)
	}
	p := newProcess(cmd, logPath, name+" in host "+h.Name)
	h.mu.Lock()
	h.procs = append(h.procs, p)
	h.mu.Unlock()
	t.Cleanup(func() { p.cleanup(t) })
	return p
}

// Partition cuts the host off the LAN by taking its bridge port down; the
// host keeps its address and routes, like a machine with a pulled cable.
func (h *Host) Partition(t testing.TB) {
	t.Helper()
	if _, err := runIP("link", "set", "dev", h.RootVeth, "down"); err != nil {
		t.Fatalf("harness: partition host %s: %v", h.Name, err)
	}
}

// Heal reconnects a partitioned host.
func (h *Host) Heal(t testing.TB) {
	t.Helper()
	if _, err := runIP("link", "set", "dev", h.RootVeth, "up"); err != nil {
		t.Fatalf("harness: heal host %s: %v", h.Name, err)
	}
}

// killAll kills the host's tracked processes and then anything else still
// running in its netns (e.g. started via Command), since a netns with
// processes outlives "ip netns del" together with its veth.
func (h *Host) killAll(t testing.TB) {
	h.mu.Lock()
	procs := slices.Clone(h.procs)
	h.mu.Unlock()
	for _, p := range procs {
		if err := p.Kill(); err != nil {
			t.Logf("harness: cleanup host %s: %v", h.Name, err)
		}
	}

	deadline := time.Now().Add(killWait)
	for {
		pids, err := netnsPIDs(h.NS)
		if err != nil {
			// Typically the netns does not exist (any more): nothing to kill.
			return
		}
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Logf("harness: cleanup host %s: processes %v survive SIGKILL", h.Name, pids)
			return
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				t.Logf("harness: cleanup host %s: kill %d: %v", h.Name, pid, err)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ChangeIP gives the host another address on its network, as DHCP or a
// moved VM would: eth0's address and default route are replaced, by a
// spare address (see spareIP).
func (h *Host) ChangeIP(t testing.TB) {
	t.Helper()
	n := h.net
	ip := n.spareIP()
	ones, _ := n.Subnet.Mask.Size()
	steps := [][]string{
		{"-n", h.NS, "addr", "flush", "dev", "eth0"},
		{"-n", h.NS, "addr", "add", fmt.Sprintf("%s/%d", ip, ones), "dev", "eth0"},
		{"-n", h.NS, "route", "replace", "default", "via", n.Gateway.String()},
	}
	for _, args := range steps {
		if _, err := runIP(args...); err != nil {
			t.Fatalf("harness: change the address of host %s: %v", h.Name, err)
		}
	}
	t.Logf("harness: host %s moved from %s to %s", h.Name, h.IP, ip)
	h.IP = ip
}

// AddAddress gives the host a second address on eth0 (from the same spare
// range as ChangeIP), as a node with a public address beside its private
// one has, and returns it.
func (h *Host) AddAddress(t testing.TB) net.IP {
	t.Helper()
	ip := h.net.spareIP()
	ones, _ := h.net.Subnet.Mask.Size()
	if _, err := runIP("-n", h.NS, "addr", "add", fmt.Sprintf("%s/%d", ip, ones), "dev", "eth0"); err != nil {
		t.Fatalf("harness: add an address to host %s: %v", h.Name, err)
	}
	t.Logf("harness: host %s also has %s", h.Name, ip)
	return ip
}

// spareIP hands out .200, .201, ...: clear of the addresses AddHost uses.
func (n *Network) spareIP() net.IP {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.spare++
	return hostIP(n.Subnet, 199+n.spare)
}
