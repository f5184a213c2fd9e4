// Package registries reads a node's registries.yaml (K3s's format: mirrors
// and per-host auth and TLS) and turns it into containerd's registry
// configuration: a hosts.toml per registry under certs.d, and the
// credentials, which hosts.toml cannot hold, for containerd's CRI config.
package registries

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// Registries is registries.yaml.
type Registries struct {
	// Mirrors by registry name ("docker.io", or "*" for every registry
	// without an entry of its own).
	Mirrors map[string]Mirror `json:"mirrors"`
	// Configs by host[:port] of a registry or mirror endpoint ("*" for any).
	Configs map[string]Config `json:"configs"`
}

// Mirror lists the endpoints tried, in order, before the registry itself.
type Mirror struct {
	Endpoints []string `json:"endpoint"`
	// Rewrite maps repository patterns to replacements in K3s's format.
	// containerd as k3ha ships it cannot apply them (K3s patches it): they
	// are accepted and reported as ignored.
	Rewrite map[string]string `json:"rewrite"`
}

// Config is how to talk to one host.
type Config struct {
	Auth *Auth `json:"auth"`
	TLS  *TLS  `json:"tls"`
}

// Auth is a host's credentials.
type Auth struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"`
	IdentityToken string `json:"identity_token"`
}

// TLS is a host's certificates.
type TLS struct {
	CAFile             string `json:"ca_file"`
	CertFile           string `json:"cert_file"`
	KeyFile            string `json:"key_file"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify"`
}

// Load reads path; a missing file is no registries. An unknown key, a bad
// endpoint or a missing certificate file is an error naming it.
func Load(path string) (*Registries, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Registries{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--private-registry: %w", err)
	}
	var r Registries
	if err := yaml.UnmarshalStrict(data, &r); err != nil {
		if _, key, ok := strings.Cut(err.Error(), "json: unknown field "); ok {
			return nil, fmt.Errorf("--private-registry %s: unknown key %s; the keys are mirrors.<registry>.{endpoint,rewrite} and configs.<host>.{auth.{username,password,auth,identity_token},tls.{ca_file,cert_file,key_file,insecure_skip_verify}}", path, key)
		}
		return nil, fmt.Errorf("--private-registry %s: %w", path, err)
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("--private-registry %s: %w", path, err)
	}
	return &r, nil
}

func (r *Registries) validate() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(r.Mirrors)) {
		m := r.Mirrors[name]
		for i, e := range m.Endpoints {
			if _, err := endpointURL(e); err != nil {
				errs = append(errs, fmt.Errorf("mirrors.%q.endpoint[%d]: %w", name, i, err))
			}
		}
		if len(m.Rewrite) > 0 {
			slog.Warn("registries.yaml: rewrite is not supported by k3ha's containerd and is ignored; mirrors get the original repository names",
				"mirror", name)
		}
	}
	for _, host := range slices.Sorted(maps.Keys(r.Configs)) {
		c := r.Configs[host]
		if strings.Contains(host, "/") {
			errs = append(errs, fmt.Errorf("configs.%q: the key is a host[:port], without a scheme or path", host))
		}
		if c.TLS == nil {
			continue
		}
		for key, file := range map[string]string{"ca_file": c.TLS.CAFile, "cert_file": c.TLS.CertFile, "key_file": c.TLS.KeyFile} {
			if file == "" {
				continue
			}
			if _, err := os.Stat(file); err != nil {
				errs = append(errs, fmt.Errorf("configs.%q.tls.%s: %w", host, key, err))
			}
		}
		if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
			errs = append(errs, fmt.Errorf("configs.%q.tls: cert_file and key_file go together", host))
		}
	}
	return errors.Join(errs...)
}

// endpointURL parses an endpoint as K3s does: https:// unless a scheme is
// given, and the API root /v2 unless another path is.
func endpointURL(e string) (*url.URL, error) {
	if !strings.Contains(e, "://") {
		e = "https://" + e
	}
	u, err := url.Parse(e)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: only http and https endpoints", e)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q has no host", e)
	}
	return u, nil
}
