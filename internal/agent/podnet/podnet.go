// Package podnet puts a node's pods on the network: the standard CNI
// bridge plugin puts them on a Linux bridge addressed from the node's pod
// CIDR; flannel (internal/agent/flannel) carries their traffic to the other
// nodes' pods. Pods talk to each other with their own IPs; traffic leaving
// the cluster is masqueraded to the node IP.
//
// Only IPv4 is handled; a dual-stack cluster's IPv6 ranges are ignored.
package podnet

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/k3ha/k3ha/internal/agent/nodewait"
)

// Config is one node's pod network setup.
type Config struct {
	NodeName    string
	NodeIP      net.IP
	ClusterCIDR string // all pods, e.g. 10.42.0.0/16 (a comma-separated list may also hold an IPv6 range, which is ignored)
	CNIConfDir  string // per node, e.g. <data-dir>/agent/etc/cni/net.d (containerd's CRI reads CNI config from here)
	BridgeName  string // default "cni0"
	// IPAMDataDir is where host-local records the addresses it handed out.
	// Empty means host-local's machine-wide /var/lib/cni/networks; set it
	// per node when several nodes share one filesystem (tests).
	IPAMDataDir string
	// MTU of the pods' interfaces; 0 leaves the plugin's default.
	MTU int
}

// DefaultBridgeName is the bridge the pods of a node hang off.
const DefaultBridgeName = "cni0"

func (c Config) bridge() string {
	if c.BridgeName == "" {
		return DefaultBridgeName
	}
	return c.BridgeName
}

// WaitPodCIDR waits until the Node object has a pod CIDR and returns it
// (the IPv4 one when the node has several).
func WaitPodCIDR(ctx context.Context, client kubernetes.Interface, nodeName string) (*net.IPNet, error) {
	var cidr *net.IPNet
	_, err := nodewait.Until(ctx, client, nodeName, "the node's pod CIDR", func(node *corev1.Node) (bool, error) {
		var err error
		cidr, err = nodePodCIDR(node)
		return cidr != nil, err
	})
	if err != nil {
		return nil, err
	}
	slog.Info("node has its pod CIDR", "node", nodeName, "pod-cidr", cidr.String())
	return cidr, nil
}

// nodePodCIDR returns the node's IPv4 pod CIDR, nil if it has none yet.
func nodePodCIDR(node *corev1.Node) (*net.IPNet, error) {
	cidrs := node.Spec.PodCIDRs
	if len(cidrs) == 0 && node.Spec.PodCIDR != "" {
		cidrs = []string{node.Spec.PodCIDR}
	}
	for _, s := range cidrs {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("pod CIDR %q: %w", s, err)
		}
		if n.IP.To4() != nil {
			return n, nil
		}
	}
	if len(cidrs) > 0 {
		return nil, fmt.Errorf("no IPv4 pod CIDR in %v (IPv6 pod networks are not supported)", cidrs)
	}
	return nil, nil
}

// ClusterCIDRv4 returns the IPv4 range of --cluster-cidr.
func ClusterCIDRv4(s string) (*net.IPNet, error) {
	for _, part := range strings.Split(s, ",") {
		_, n, err := net.ParseCIDR(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("cluster CIDR %q: %w", s, err)
		}
		if n.IP.To4() != nil {
			return n, nil
		}
	}
	return nil, fmt.Errorf("cluster CIDR %q has no IPv4 range", s)
}

// within reports whether inner lies entirely inside outer.
func within(inner, outer *net.IPNet) bool {
	io, _ := inner.Mask.Size()
	oo, _ := outer.Mask.Size()
	return io >= oo && outer.Contains(inner.IP)
}
