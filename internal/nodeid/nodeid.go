// Package nodeid works out who this node is: its name and its IP.
package nodeid

import (
	"fmt"
	"net"
	"os"
	"strings"

	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// Name is the flag's value, else the host name in lower case.
func Name(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("cannot read the host name (%w); give one with --node-name", err)
	}
	return strings.ToLower(h), nil
}

// IP is the flag's value, else the address of the default route's interface.
func IP(flag string) (net.IP, error) {
	if flag != "" {
		return net.ParseIP(flag), nil
	}
	ip, err := utilnet.ChooseHostInterface()
	if err != nil {
		return nil, fmt.Errorf("cannot find this node's IP from the default route (%w); give it with --node-ip", err)
	}
	return ip, nil
}

// CheckLocal makes sure ip belongs to this machine: services bind to it and
// peers dial it.
func CheckLocal(ip net.IP) error {
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
	return fmt.Errorf("--node-ip %s is not an address of this machine (it has %s); give one of them, the address other nodes reach this one at", ip, strings.Join(have, ", "))
}
