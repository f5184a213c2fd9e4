package podnet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/k3ha/k3ha/internal/pki"
)

// CNIConfigFile is the conflist's name in Config.CNIConfDir. containerd
// uses the alphabetically first config there, so the low prefix keeps ours
// in front of anything an admin drops in later.
const CNIConfigFile = "10-k3ha.conflist"

// The structs fix the JSON's field order, so a config that did not change
// renders to the same bytes and is not rewritten.
type cniConfList struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Plugins    []any  `json:"plugins"`
}

type bridgePlugin struct {
	Type        string        `json:"type"`
	Bridge      string        `json:"bridge"`
	MTU         int           `json:"mtu,omitempty"`
	IsGateway   bool          `json:"isGateway"`
	IPMasq      bool          `json:"ipMasq"`
	HairpinMode bool          `json:"hairpinMode"`
	IPAM        hostLocalIPAM `json:"ipam"`
}

type hostLocalIPAM struct {
	Type    string        `json:"type"`
	DataDir string        `json:"dataDir,omitempty"`
	Ranges  [][]ipamRange `json:"ranges"`
	Routes  []ipamRoute   `json:"routes"`
}

type ipamRange struct {
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway"`
}

type ipamRoute struct {
	Dst string `json:"dst"`
}

type portmapPlugin struct {
	Type         string          `json:"type"`
	Capabilities map[string]bool `json:"capabilities"`
	SNAT         bool            `json:"snat"`
}

// renderCNIConfig returns the conflist for this node's pods.
//
//   - bridge with isGateway: the bridge gets the .1 address and pods route
//     through it, so pod traffic to other nodes follows flannel's routes;
//     mtu leaves room for the backend's headers.
//   - ipMasq false: Prepare's rule masquerades only traffic leaving the
//     cluster; the plugin's own rule would also hide pod IPs from pods on
//     other nodes.
//   - hairpinMode: a pod reaching itself through a Service gets its
//     packets back through its own bridge port.
//   - portmap with snat: hostPort works from the node itself too.
func renderCNIConfig(cfg Config, podCIDR *net.IPNet) ([]byte, error) {
	gw, err := gatewayIP(podCIDR)
	if err != nil {
		return nil, err
	}
	conf := cniConfList{
		CNIVersion: "1.0.0",
		Name:       "k3ha",
		Plugins: []any{
			bridgePlugin{
				Type:        "bridge",
				Bridge:      cfg.bridge(),
				MTU:         cfg.MTU,
				IsGateway:   true,
				IPMasq:      false,
				HairpinMode: true,
				IPAM: hostLocalIPAM{
					Type:    "host-local",
					DataDir: cfg.IPAMDataDir,
					Ranges:  [][]ipamRange{{{Subnet: podCIDR.String(), Gateway: gw.String()}}},
					Routes:  []ipamRoute{{Dst: "0.0.0.0/0"}},
				},
			},
			portmapPlugin{
				Type:         "portmap",
				Capabilities: map[string]bool{"portMappings": true},
				SNAT:         true,
			},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode CNI config: %w", err)
	}
	return append(data, '\n'), nil
}

// gatewayIP is the first address of an IPv4 pod CIDR, the bridge's own.
func gatewayIP(podCIDR *net.IPNet) (net.IP, error) {
	ip := podCIDR.IP.To4()
	if ip == nil {
		return nil, fmt.Errorf("pod CIDR %s is not IPv4", podCIDR)
	}
	// A /31 or /32 leaves no room for a gateway and pods.
	if ones, _ := podCIDR.Mask.Size(); ones > 30 {
		return nil, fmt.Errorf("pod CIDR %s is too small for a gateway and pods", podCIDR)
	}
	gw := make(net.IP, len(ip))
	copy(gw, ip.Mask(podCIDR.Mask))
	gw[3]++ // the network address ends in .0 on any prefix up to /30
	return gw, nil
}

// WriteCNIConfig writes this node's conflist into cfg.CNIConfDir,
// atomically (containerd may read it at any moment) and only when its
// content changed.
func WriteCNIConfig(cfg Config, podCIDR *net.IPNet) error {
	data, err := renderCNIConfig(cfg, podCIDR)
	if err != nil {
		return err
	}
	path := filepath.Join(cfg.CNIConfDir, CNIConfigFile)
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, data):
		return nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read CNI config: %w", err)
	}
	if err := pki.WriteFileAtomic(path, data, 0o644); err != nil {
		return fmt.Errorf("CNI config: %w", err)
	}
	slog.Info("wrote CNI config", "file", path, "pod-cidr", podCIDR.String(), "bridge", cfg.bridge())
	return nil
}
