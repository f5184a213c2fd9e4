package podnet

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	utiliptables "k8s.io/kubernetes/pkg/util/iptables"
)

// Our own chains, so our rules can be rewritten as a whole without
// touching anyone else's.
const (
	natChain    utiliptables.Chain = "K3HA-POSTROUTING"
	filterChain utiliptables.Chain = "K3HA-FORWARD"
)

// procSys is where sysctls live; a variable for tests.
var procSys = "/proc/sys"

// Prepare readies the node for pod traffic: IP forwarding, bridged
// traffic through iptables (kube-proxy's Service NAT must see pod-to-pod
// packets on the bridge), masquerading of traffic from this node's pods to
// destinations outside the cluster CIDR, and forwarding of pod traffic on
// hosts whose FORWARD policy is DROP. Safe to call again.
func Prepare(cfg Config, podCIDR *net.IPNet) error {
	cluster, err := ClusterCIDRv4(cfg.ClusterCIDR)
	if err != nil {
		return err
	}
	if podCIDR == nil || podCIDR.IP.To4() == nil || !within(podCIDR, cluster) {
		return fmt.Errorf("pod CIDR %v is not an IPv4 range inside cluster CIDR %s", podCIDR, cluster)
	}
	var errs []error
	if err := setSysctl("net/ipv4/ip_forward", "1"); err != nil {
		errs = append(errs, err)
	}
	bridgeNetfilter()
	if err := ensureIPTables(utiliptables.New(utiliptables.ProtocolIPv4), cluster, podCIDR); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// setSysctl writes value to the sysctl at name (slash-separated) unless it
// already has it, so a read-only /proc/sys with the right values is fine.
func setSysctl(name, value string) error {
	path := filepath.Join(procSys, name)
	cur, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("sysctl %s: %w", name, err)
	}
	if strings.TrimSpace(string(cur)) == value {
		return nil
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", name, value, err)
	}
	slog.Info("set sysctl", "name", strings.ReplaceAll(name, "/", "."), "value", value)
	return nil
}

// bridgeNetfilter makes bridged traffic pass iptables. Without it a pod
// reaching a Service backed by a pod on the same node gets the reply
// straight over the bridge, un-NATed, and drops it. Warnings only: the
// rest of the pod network works without it.
func bridgeNetfilter() {
	const name = "net/bridge/bridge-nf-call-iptables"
	if _, err := os.Stat(filepath.Join(procSys, name)); errors.Is(err, os.ErrNotExist) {
		// The sysctl appears once the br_netfilter module is loaded.
		if out, err := exec.Command("modprobe", "br_netfilter").CombinedOutput(); err != nil {
			slog.Warn("cannot load br_netfilter; Services may not answer pods on the node of their backend",
				"err", fmt.Errorf("modprobe br_netfilter: %w: %s", err, strings.TrimSpace(string(out))))
			return
		}
	}
	if err := setSysctl(name, "1"); err != nil {
		slog.Warn("bridged traffic bypasses iptables; Services may not answer pods on the node of their backend", "err", err)
	}
}

// iptablesRules is the content of our chains, in iptables-restore format.
// Declaring a chain with --noflush empties it first, so the restore
// replaces stale rules (an old pod CIDR) in one atomic step.
//
// The FORWARD rules matter on hosts where something (Docker, a firewall)
// sets the policy to DROP; they are appended after other chains, so a
// network policy controller's rules earlier in FORWARD still apply.
func iptablesRules(cluster, podCIDR *net.IPNet) []byte {
	c, p := cluster.String(), podCIDR.String()
	lines := []string{
		"*nat",
		fmt.Sprintf(":%s - [0:0]", natChain),
		fmt.Sprintf(`-A %s -s %s -d %s -m comment --comment "k3ha: pod to pod keeps pod IPs" -j RETURN`, natChain, p, c),
		fmt.Sprintf(`-A %s -s %s -m comment --comment "k3ha: pods to outside the cluster" -j MASQUERADE`, natChain, p),
		"COMMIT",
		"*filter",
		fmt.Sprintf(":%s - [0:0]", filterChain),
		fmt.Sprintf(`-A %s -s %s -m comment --comment "k3ha: forward pod traffic" -j ACCEPT`, filterChain, c),
		fmt.Sprintf(`-A %s -d %s -m comment --comment "k3ha: forward pod traffic" -j ACCEPT`, filterChain, c),
		"COMMIT",
		"",
	}
	return []byte(strings.Join(lines, "\n"))
}

// jumps are the rules in the built-in chains that lead to ours.
var jumps = []struct {
	table       utiliptables.Table
	chain, to   utiliptables.Chain
	description string
}{
	{utiliptables.TableNAT, utiliptables.ChainPostrouting, natChain, "k3ha pod masquerade"},
	{utiliptables.TableFilter, utiliptables.ChainForward, filterChain, "k3ha pod forwarding"},
}

// ensureIPTables installs our chains and the jumps to them.
func ensureIPTables(ipt utiliptables.Interface, cluster, podCIDR *net.IPNet) error {
	if err := ipt.RestoreAll(iptablesRules(cluster, podCIDR), utiliptables.NoFlushTables, utiliptables.NoRestoreCounters); err != nil {
		return fmt.Errorf("iptables-restore of %s and %s: %w", natChain, filterChain, err)
	}
	added := []string{}
	for _, j := range jumps {
		existed, err := ipt.EnsureRule(utiliptables.Append, j.table, j.chain,
			"-m", "comment", "--comment", j.description, "-j", string(j.to))
		if err != nil {
			return fmt.Errorf("iptables jump %s -> %s: %w", j.chain, j.to, err)
		}
		if !existed {
			added = append(added, fmt.Sprintf("%s/%s", j.table, j.chain))
		}
	}
	slog.Info("pod iptables rules in place", "masquerade-from", podCIDR.String(), "except-to", cluster.String(),
		"chains", natChain+","+filterChain, "new-jumps", strings.Join(added, ","))
	return nil
}
