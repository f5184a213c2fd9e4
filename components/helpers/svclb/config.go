package main

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

type config struct {
	proto     string // "tcp" or "udp"
	srcPort   int
	destPort  int
	destIPs   []netip.Addr
	srcRanges []netip.Prefix
}

func fromEnv(getenv func(string) string) (config, error) {
	var c config
	var err error
	switch p := strings.ToUpper(getenv("DEST_PROTO")); p {
	case "", "TCP":
		c.proto = "tcp"
	case "UDP":
		c.proto = "udp"
	default:
		return c, fmt.Errorf("DEST_PROTO %q: only TCP and UDP are supported", p)
	}
	if c.srcPort, err = port("SRC_PORT", getenv("SRC_PORT")); err != nil {
		return c, err
	}
	if c.destPort, err = port("DEST_PORT", getenv("DEST_PORT")); err != nil {
		return c, err
	}
	for _, s := range split(getenv("DEST_IPS")) {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return c, fmt.Errorf("DEST_IPS: %q is not an IP address", s)
		}
		c.destIPs = append(c.destIPs, ip)
	}
	if len(c.destIPs) == 0 {
		return c, fmt.Errorf("DEST_IPS is empty")
	}
	ranges := split(getenv("SRC_RANGES"))
	if len(ranges) == 0 {
		ranges = []string{"0.0.0.0/0", "::/0"}
	}
	for _, s := range ranges {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return c, fmt.Errorf("SRC_RANGES: %q is not a CIDR", s)
		}
		c.srcRanges = append(c.srcRanges, p.Masked())
	}
	return c, nil
}

func port(name, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%s %q is not a port", name, v)
	}
	return n, nil
}

func split(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// allowed tells whether a client may use the balancer (loadBalancerSourceRanges).
func (c config) allowed(addr net.Addr) bool {
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.UDPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	}
	ip = ip.Unmap()
	for _, p := range c.srcRanges {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// targets are the destinations in the order they are tried.
func (c config) targets() []string {
	out := make([]string, 0, len(c.destIPs))
	for _, ip := range c.destIPs {
		out = append(out, net.JoinHostPort(ip.String(), strconv.Itoa(c.destPort)))
	}
	return out
}
