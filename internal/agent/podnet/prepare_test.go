package podnet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIPTablesRules(t *testing.T) {
	got := string(iptablesRules(mustCIDR(t, "10.42.0.0/16"), mustCIDR(t, "10.42.5.0/24")))
	want := `*nat
:K3HA-POSTROUTING - [0:0]
-A K3HA-POSTROUTING -s 10.42.5.0/24 -d 10.42.0.0/16 -m comment --comment "k3ha: pod to pod keeps pod IPs" -j RETURN
-A K3HA-POSTROUTING -s 10.42.5.0/24 -m comment --comment "k3ha: pods to outside the cluster" -j MASQUERADE
COMMIT
*filter
:K3HA-FORWARD - [0:0]
-A K3HA-FORWARD -s 10.42.0.0/16 -m comment --comment "k3ha: forward pod traffic" -j ACCEPT
-A K3HA-FORWARD -d 10.42.0.0/16 -m comment --comment "k3ha: forward pod traffic" -j ACCEPT
COMMIT
`
	if got != want {
		t.Errorf("rules:\n%s\nwant:\n%s", got, want)
	}
}

func TestSetSysctl(t *testing.T) {
	old := procSys
	procSys = t.TempDir()
	t.Cleanup(func() { procSys = old })
	path := filepath.Join(procSys, "net", "ipv4", "ip_forward")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := setSysctl("net/ipv4/ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); strings.TrimSpace(string(b)) != "1" {
		t.Errorf("ip_forward = %q", b)
	}
	// Already right: no write, so a read-only /proc/sys with good values is fine.
	past := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, past, past); err != nil {
		t.Fatal(err)
	}
	if err := setSysctl("net/ipv4/ip_forward", "1"); err != nil {
		t.Error(err)
	}
	if st, _ := os.Stat(path); !st.ModTime().Equal(past) {
		t.Error("sysctl with the right value was written")
	}
	if err := setSysctl("net/ipv4/missing", "1"); err == nil {
		t.Error("missing sysctl accepted")
	}
}

func TestPrepareRejectsForeignCIDR(t *testing.T) {
	err := Prepare(Config{ClusterCIDR: "10.42.0.0/16"}, mustCIDR(t, "192.168.0.0/24"))
	if err == nil || !strings.Contains(err.Error(), "inside cluster CIDR") {
		t.Errorf("err = %v", err)
	}
}
