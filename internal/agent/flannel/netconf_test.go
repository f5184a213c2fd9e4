package flannel

import (
	"net"
	"testing"

	"github.com/flannel-io/flannel/pkg/subnet"

	"github.com/k3ha/k3ha/internal/config"
)

// The configuration k3ha writes is one flannel itself parses into the
// backend asked for.
func TestNetConfParsesAsFlannel(t *testing.T) {
	_, cluster, _ := net.ParseCIDR("10.42.0.0/16")
	for backend, want := range map[string]string{
		config.FlannelVXLAN: "vxlan", config.FlannelHostGW: "host-gw", config.FlannelWireGuard: "wireguard",
	} {
		data, err := renderNetConf(cluster, backend)
		if err != nil {
			t.Fatalf("%s: %v", backend, err)
		}
		cfg, err := subnet.ParseConfig(string(data))
		if err != nil {
			t.Fatalf("%s: flannel refuses %s: %v", backend, data, err)
		}
		if cfg.BackendType != want || cfg.Network.String() != "10.42.0.0/16" || !cfg.EnableIPv4 {
			t.Errorf("%s: parsed as backend %q network %s ipv4 %v", backend, cfg.BackendType, cfg.Network, cfg.EnableIPv4)
		}
	}
	if _, err := renderNetConf(cluster, config.FlannelNone); err == nil {
		t.Error("none: a flannel network was rendered")
	}
}

func TestPickAddr(t *testing.T) {
	addrs := []net.Addr{
		&net.IPNet{IP: net.ParseIP("fd00::1"), Mask: net.CIDRMask(64, 128)},
		&net.IPNet{IP: net.ParseIP("192.168.1.5").To4(), Mask: net.CIDRMask(24, 32)},
		&net.IPNet{IP: net.ParseIP("10.0.0.7").To4(), Mask: net.CIDRMask(24, 32)},
	}
	cases := []struct {
		name   string
		nodeIP string
		anyV4  bool
		want   string
	}{
		{"the node IP", "10.0.0.7", false, "10.0.0.7"},
		{"an interface without the node IP", "10.9.9.9", false, "<nil>"},
		{"a named interface: its first IPv4", "10.9.9.9", true, "192.168.1.5"},
	}
	for _, c := range cases {
		if got := pickAddr(addrs, net.ParseIP(c.nodeIP), c.anyV4).String(); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}
