package flannel

import (
	"encoding/hex"
	"encoding/json"
	"net"
	"path/filepath"
	"testing"

	"github.com/flannel-io/flannel/pkg/ip"
	"github.com/flannel-io/flannel/pkg/lease"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

func TestPeerConfig(t *testing.T) {
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := k.PublicKey()
	_, sub, _ := net.ParseCIDR("10.42.3.0/24")
	ev := func(typ lease.EventType, backendType string, data any) lease.Event {
		raw, _ := json.Marshal(data)
		return lease.Event{Type: typ, Lease: lease.Lease{Subnet: ip.FromIPNet(sub),
			Attrs: lease.LeaseAttrs{BackendType: backendType, PublicIP: ip.FromIP(net.ParseIP("192.0.2.7")), BackendData: raw}}}
	}
	hexKey := hex.EncodeToString(pub[:])
	cases := []struct {
		name string
		e    lease.Event
		want string
	}{
		{"a node added", ev(lease.EventAdded, "wireguard", wgLeaseData{PublicKey: pub.String(), Port: 51820}),
			"public_key=" + hexKey + "\nendpoint=192.0.2.7:51820\nreplace_allowed_ips=true\nallowed_ip=10.42.3.0/24\npersistent_keepalive_interval=25\n"},
		{"no port: the default", ev(lease.EventAdded, "wireguard", wgLeaseData{PublicKey: pub.String()}),
			"public_key=" + hexKey + "\nendpoint=192.0.2.7:51820\nreplace_allowed_ips=true\nallowed_ip=10.42.3.0/24\npersistent_keepalive_interval=25\n"},
		{"a node removed", ev(lease.EventRemoved, "wireguard", wgLeaseData{PublicKey: pub.String()}),
			"public_key=" + hexKey + "\nremove=true\n"},
		{"another backend's lease", ev(lease.EventAdded, "vxlan", map[string]string{"VNI": "1"}), ""},
		{"a bad key", ev(lease.EventAdded, "wireguard", wgLeaseData{PublicKey: "nope"}), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := peerConfig(c.e); got != c.want {
				t.Fatalf("got %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestWGKeyKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wireguard.key")
	a, err := wgKey(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := wgKey(path)
	if err != nil || a != b {
		t.Fatalf("second read: %v, same key %v", err, a == b)
	}
}
