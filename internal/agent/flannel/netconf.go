// Package flannel runs flannel's pod network in the node's process: the
// Kubernetes subnet manager (each node's lease is its Node's pod CIDR,
// published in flannel's node annotations) and one backend that carries
// pod traffic between nodes (VXLAN by default, host routes, WireGuard).
package flannel

import (
	"encoding/json"
	"fmt"
	"net"

	"github.com/k3ha/k3ha/internal/config"
)

// wgKeepalive (seconds) keeps WireGuard tunnels open through NAT between
// edge sites, in the kernel's backend and in the userspace one.
const wgKeepalive = 25

// netConf is flannel's network configuration (its net-conf.json).
type netConf struct {
	Network    string         `json:"Network"`
	EnableIPv4 bool           `json:"EnableIPv4"`
	Backend    map[string]any `json:"Backend"`
}

// renderNetConf returns flannel's network configuration for the cluster's
// IPv4 pod range and the chosen backend.
func renderNetConf(cluster *net.IPNet, backend string) ([]byte, error) {
	be := map[string]any{}
	switch backend {
	case config.FlannelVXLAN:
		be["Type"] = "vxlan"
	case config.FlannelHostGW:
		be["Type"] = "host-gw"
	case config.FlannelWireGuard:
		be["Type"], be["PersistentKeepaliveInterval"] = "wireguard", wgKeepalive
	default:
		return nil, fmt.Errorf("flannel has no network for --flannel-backend=%q", backend)
	}
	return json.Marshal(netConf{Network: cluster.String(), EnableIPv4: true, Backend: be})
}
