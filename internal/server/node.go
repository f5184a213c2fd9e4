package server

import (
	"fmt"
	"net"
	"os"
	"strings"

	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/k3ha/k3ha/internal/config"
)

// node is who this server is on the network.
type node struct {
	name      string
	ip        net.IP // --node-ip, else the default route's address
	advertise net.IP // what others use to reach the API (--advertise-address, else ip)
}

func resolveNode(cfg *config.Server) (node, error) {
	var n node
	var err error
	if n.name = cfg.NodeName; n.name == "" {
		h, err := os.Hostname()
		if err != nil {
			return n, fmt.Errorf("cannot read the host name (%w); give one with --node-name", err)
		}
		n.name = strings.ToLower(h)
	}
	if cfg.NodeIP != "" {
		n.ip = net.ParseIP(cfg.NodeIP)
	} else if n.ip, err = utilnet.ChooseHostInterface(); err != nil {
		return n, fmt.Errorf("cannot find this node's IP from the default route (%w); give it with --node-ip", err)
	}
	n.advertise = n.ip
	if cfg.AdvertiseAddress != "" {
		n.advertise = net.ParseIP(cfg.AdvertiseAddress)
	}
	if n.advertise.IsLoopback() {
		return n, fmt.Errorf("the node IP %s is a loopback address; other servers and agents could not reach it: give a reachable one with --node-ip", n.advertise)
	}
	return n, nil
}

// checkLocal makes sure ip belongs to this machine: etcd binds its peer
// port to it, and peers dial it.
func checkLocal(ip net.IP) error {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return fmt.Errorf("list interface addresses: %w", err)
	}
	var have []string
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if n.IP.Equal(ip) {
				return nil
			}
			if !n.IP.IsLoopback() {
				have = append(have, n.IP.String())
			}
		}
	}
	return fmt.Errorf("--node-ip %s is not an address of this machine (it has %s); give one of them, the address other servers reach this one at", ip, strings.Join(have, ", "))
}
