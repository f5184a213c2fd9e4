package server

import (
	"fmt"
	"net"

	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/nodeid"
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
	if n.name, err = nodeid.Name(cfg.NodeName); err != nil {
		return n, err
	}
	if n.ip, err = nodeid.IP(cfg.NodeIP); err != nil {
		return n, err
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
