package containerd

import (
	"context"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/k3ha/k3ha/internal/agent/registries"
)

// The rendered config is TOML containerd reads, with the registry
// settings at the CRI image service's paths.
func TestRenderRegistries(t *testing.T) {
	s := Settings{
		Paths:            Paths{Root: "/d/containerd", State: "/d/run", CNIConfDir: "/d/cni", CNIBinDirs: []string{"/d/bin"}, RuncRoot: "/d/runc", BinDir: "/d/bin"},
		SandboxImage:     "k3ha.invalid/pause:1",
		RegistryHostsDir: "/d/certs.d",
		RegistryAuths:    map[string]registries.Auth{"10.0.0.5:5000": {Username: "u", Password: `p"w`}},
	}
	data, err := Render(s)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Plugins map[string]map[string]any `toml:"plugins"`
	}
	if err := toml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	reg := cfg.Plugins["io.containerd.cri.v1.images"]["registry"].(map[string]any)
	if reg["config_path"] != "/d/certs.d" {
		t.Errorf("config_path %v", reg["config_path"])
	}
	auth := reg["configs"].(map[string]any)["10.0.0.5:5000"].(map[string]any)["auth"].(map[string]any)
	if auth["username"] != "u" || auth["password"] != `p"w` {
		t.Errorf("auth %v", auth)
	}
	if cfg.Plugins["io.containerd.cri.v1.runtime"]["ignore_deprecation_warnings"] == nil {
		t.Error("deprecation of registry configs not silenced")
	}
	s.RegistryAuths = nil
	data, _ = Render(s)
	if err := toml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
}

// A data dir too deep for containerd's socket paths is refused with what to do.
func TestSocketPathTooLong(t *testing.T) {
	state := "/tmp/" + strings.Repeat("d", 100) + "/run/containerd"
	err := New(Settings{Paths: Paths{State: state}}, "/dev/null").Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "use a shorter --data-dir") {
		t.Fatalf("got %v", err)
	}
}
