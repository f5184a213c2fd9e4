package config

import (
	"fmt"
	"strings"
)

// The --flannel-backend values, named as in K3s: how pod traffic travels
// between nodes. It is a cluster-wide setting.
const (
	FlannelVXLAN     = "vxlan"            // encapsulated in UDP; nodes on any routed network
	FlannelHostGW    = "host-gw"          // plain routes; all nodes on one L2 network
	FlannelWireGuard = "wireguard-native" // encrypted; needs WireGuard in the kernel
	FlannelNone      = "none"             // no pod network from k3ha: bring your own CNI
)

// FlannelBackends lists the accepted --flannel-backend values.
var FlannelBackends = []string{FlannelVXLAN, FlannelHostGW, FlannelWireGuard, FlannelNone}

// checkFlannelBackend says what to use instead of a value k3ha has no
// backend for.
func checkFlannelBackend(b string) error {
	switch b {
	case FlannelVXLAN, FlannelHostGW, FlannelWireGuard, FlannelNone:
		return nil
	case "wireguard", "ipsec":
		return fmt.Errorf("%q is no longer supported (as in K3s); use %s", b, FlannelWireGuard)
	}
	return fmt.Errorf("%q is unknown; use one of %s", b, strings.Join(FlannelBackends, ", "))
}
