package registries

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/k3ha/k3ha/internal/pki"
)

// header marks the hosts.toml files k3ha writes, so that it removes only
// its own when registries.yaml changes.
const header = "# Written by k3ha from registries.yaml at every start: do not edit.\n"

// hostsDirFor is the certs.d dir name of a registry: "_default" for "*".
func hostsDirFor(registry string) string {
	if registry == "*" {
		return "_default"
	}
	return registry
}

// upstream is the registry's own endpoint, tried after its mirrors.
func upstream(registry string) string {
	if registry == "docker.io" {
		return "https://registry-1.docker.io"
	}
	return "https://" + registry
}

// HostFiles renders a hosts.toml per registry that has mirrors or TLS
// settings of its own, by certs.d dir name.
func (r *Registries) HostFiles() map[string]string {
	out := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(r.Mirrors)) {
		var b strings.Builder
		b.WriteString(header)
		if name != "*" {
			// Without a mirror that answers, the registry itself.
			fmt.Fprintf(&b, "server = %q\n", upstream(name))
			r.writeTLS(&b, name, "")
		}
		for _, e := range r.Mirrors[name].Endpoints {
			u, _ := endpointURL(e)
			fmt.Fprintf(&b, "\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", u.String())
			if u.Path != "" && u.Path != "/" && u.Path != "/v2" {
				b.WriteString("  override_path = true\n")
			}
			r.writeTLS(&b, u.Host, "  ")
		}
		out[hostsDirFor(name)] = b.String()
	}
	// A host with TLS settings but no mirrors entry: its own file.
	for _, host := range slices.Sorted(maps.Keys(r.Configs)) {
		if _, done := out[hostsDirFor(host)]; done || r.Configs[host].TLS == nil {
			continue
		}
		var b strings.Builder
		b.WriteString(header)
		if host != "*" {
			fmt.Fprintf(&b, "server = %q\n", upstream(host))
		}
		r.writeTLS(&b, host, "")
		out[hostsDirFor(host)] = b.String()
	}
	return out
}

// writeTLS writes the TLS settings configs holds for host, or for "*".
func (r *Registries) writeTLS(b *strings.Builder, host, indent string) {
	c, ok := r.Configs[host]
	if !ok {
		c = r.Configs["*"]
	}
	if c.TLS == nil {
		return
	}
	if c.TLS.CAFile != "" {
		fmt.Fprintf(b, "%sca = %q\n", indent, c.TLS.CAFile)
	}
	if c.TLS.CertFile != "" {
		fmt.Fprintf(b, "%sclient = [[%q, %q]]\n", indent, c.TLS.CertFile, c.TLS.KeyFile)
	}
	if c.TLS.InsecureSkipVerify {
		fmt.Fprintf(b, "%sskip_verify = true\n", indent)
	}
}

// Auths are the credentials by host[:port], for containerd's CRI config.
func (r *Registries) Auths() map[string]Auth {
	out := map[string]Auth{}
	for host, c := range r.Configs {
		if c.Auth != nil && host != "*" {
			out[host] = *c.Auth
		}
	}
	return out
}

// WriteHosts replaces the hosts.toml files k3ha wrote earlier under dir
// with those of r, leaving files an admin put there alone.
func (r *Registries) WriteHosts(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name(), "hosts.toml")
		if data, err := os.ReadFile(path); err == nil && strings.HasPrefix(string(data), header) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	for name, content := range r.HostFiles() {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			return err
		}
		if err := pki.WriteFileAtomic(filepath.Join(dir, name, "hosts.toml"), []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}
