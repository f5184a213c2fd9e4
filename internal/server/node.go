package server

import (
	"fmt"
	"net"
	"os"
	"strings"

	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// nodeIP is --node-ip, else the address of the default route's interface.
func nodeIP(flag string) (net.IP, error) {
	if flag != "" {
		return net.ParseIP(flag), nil
	}
	ip, err := utilnet.ChooseHostInterface()
	if err != nil {
		return nil, fmt.Errorf("cannot find this node's IP from the default route (%w); give it with --node-ip", err)
	}
	return ip, nil
}

// nodeName is --node-name, else the host name in lower case.
func nodeName(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("cannot read the host name (%w); give one with --node-name", err)
	}
	return strings.ToLower(h), nil
}
