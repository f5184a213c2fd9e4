// Package containerd runs k3ha's own containerd as a child process, with its
// config, sockets and state under the node's data dir, as K3s does.
package containerd

import (
	"bytes"
	"fmt"
	"path/filepath"
	"text/template"

	"github.com/k3ha/k3ha/internal/agent/registries"
	"github.com/k3ha/k3ha/internal/pki"
)

// Paths are where one node's containerd keeps everything.
type Paths struct {
	Root       string // persistent state: images, snapshots
	State      string // runtime state: sockets, task dirs, pod network namespaces
	CNIConfDir string
	CNIBinDirs []string
	RuncRoot   string // runc's own state, per node (two nodes on one machine must not share it)
	// BinDir holds the programs containerd runs (the runc shim), first on
	// its PATH; empty: next to k3ha, then PATH.
	BinDir string
}

// Socket is containerd's gRPC socket.
func (p Paths) Socket() string { return filepath.Join(p.State, "containerd.sock") }

// ConfigFile is the rendered config.
func (p Paths) ConfigFile() string { return filepath.Join(p.Root, "config.toml") }

// Settings are the choices the config makes besides the paths.
type Settings struct {
	Paths
	SandboxImage string
	// RegistryHostsDir holds a hosts.toml per registry (registries.yaml's
	// mirrors and TLS); RegistryAuths the credentials by host[:port],
	// which hosts.toml cannot hold.
	RegistryHostsDir string
	RegistryAuths    map[string]registries.Auth
}

// configTemplate is a containerd 2.x (config version 3) configuration.
// Notes on the choices:
//   - restrict_oom_score_adj: without CAP_SYS_RESOURCE (containers, some
//     VMs) a negative oom_score_adj fails pod creation.
//   - netns_mounts_under_state_dir: pod network namespaces live under this
//     node's state dir, not the machine-wide /var/run/netns.
//   - NRI is off: its socket is machine-wide.
const configTemplate = `version = 3
root = {{ printf "%q" .Root }}
state = {{ printf "%q" .State }}
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = {{ printf "%q" .Socket }}

[plugins.'io.containerd.internal.v1.opt']
  path = {{ printf "%q" (join .Root "opt") }}

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = {{ printf "%q" .SandboxImage }}
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = {{ printf "%q" .RegistryHostsDir }}
{{- range $host, $a := .RegistryAuths }}
  [plugins.'io.containerd.cri.v1.images'.registry.configs.{{ printf "%q" $host }}.auth]
    username = {{ printf "%q" $a.Username }}
    password = {{ printf "%q" $a.Password }}
    auth = {{ printf "%q" $a.Auth }}
    identitytoken = {{ printf "%q" $a.IdentityToken }}
{{- end }}

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  {{- if .RegistryAuths }}
  # Registry credentials still live in the CRI config (deprecated there,
  # with no replacement in hosts.toml yet).
  ignore_deprecation_warnings = ["io.containerd.deprecation/cri-registry-configs"]
  {{- end }}
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [{{ range $i, $d := .CNIBinDirs }}{{ if $i }}, {{ end }}{{ printf "%q" $d }}{{ end }}]
    conf_dir = {{ printf "%q" .CNIConfDir }}
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = {{ printf "%q" .RuncRoot }}
`

var tmpl = template.Must(template.New("config").Funcs(template.FuncMap{"join": filepath.Join}).Parse(configTemplate))

// Render returns the config file's text.
func Render(s Settings) ([]byte, error) {
	var b bytes.Buffer
	if err := tmpl.Execute(&b, s); err != nil {
		return nil, fmt.Errorf("containerd config: %w", err)
	}
	return b.Bytes(), nil
}

// WriteConfig renders and writes the config.
func WriteConfig(s Settings) error {
	data, err := Render(s)
	if err != nil {
		return err
	}
	return pki.WriteFileAtomic(s.ConfigFile(), data, 0o600)
}
