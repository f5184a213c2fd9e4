package podnet

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func mustCIDR(t *testing.T, s string) *net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCNIConfigContent(t *testing.T) {
	data, err := renderCNIConfig(Config{}, mustCIDR(t, "10.42.3.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, data)
	}
	want := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "k3ha",
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      "cni0",
				"isGateway":   true,
				"ipMasq":      false,
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": []any{[]any{map[string]any{"subnet": "10.42.3.0/24", "gateway": "10.42.3.1"}}},
					"routes": []any{map[string]any{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{
				"type":         "portmap",
				"capabilities": map[string]any{"portMappings": true},
				"snat":         true,
			},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config:\n%s", data)
	}
}

func TestCNIConfigOptions(t *testing.T) {
	data, err := renderCNIConfig(Config{BridgeName: "br-pods", IPAMDataDir: "/run/k3ha/ipam"}, mustCIDR(t, "10.42.0.128/25"))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Plugins []struct {
			Bridge string
			IPAM   struct {
				DataDir string
				Ranges  [][]struct{ Subnet, Gateway string }
			}
		}
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	b := got.Plugins[0]
	if b.Bridge != "br-pods" || b.IPAM.DataDir != "/run/k3ha/ipam" ||
		b.IPAM.Ranges[0][0].Subnet != "10.42.0.128/25" || b.IPAM.Ranges[0][0].Gateway != "10.42.0.129" {
		t.Errorf("config:\n%s", data)
	}
}

func TestCNIConfigRejects(t *testing.T) {
	for _, c := range []string{"10.42.0.4/31", "fd00::/64"} {
		if _, err := renderCNIConfig(Config{}, mustCIDR(t, c)); err == nil {
			t.Errorf("%s accepted", c)
		}
	}
}

func TestWriteCNIConfigOnlyWhenChanged(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net.d")
	cfg := Config{CNIConfDir: dir}
	if err := WriteCNIConfig(cfg, mustCIDR(t, "10.42.1.0/24")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, CNIConfigFile)
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	if err := WriteCNIConfig(cfg, mustCIDR(t, "10.42.1.0/24")); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); !st.ModTime().Equal(old) {
		t.Error("unchanged config was rewritten")
	}
	if err := WriteCNIConfig(cfg, mustCIDR(t, "10.42.2.0/24")); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	var got struct {
		Plugins []struct {
			IPAM struct{ Ranges [][]struct{ Subnet string } }
		}
	}
	if err := json.Unmarshal(data, &got); err != nil || got.Plugins[0].IPAM.Ranges[0][0].Subnet != "10.42.2.0/24" {
		t.Errorf("changed config not written (%v):\n%s", err, data)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}
}
