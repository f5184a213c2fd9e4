package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Validate checks the agent's flags; the error names each wrong one.
func (a *Agent) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if a.DataDir == "" {
		bad("data-dir", "must not be empty")
	} else if abs, err := filepath.Abs(a.DataDir); err == nil {
		a.DataDir = abs
	}
	if a.ServerURL == "" {
		bad("server", "an agent needs a server to join: give --server https://<server>:6443 (or K3HA_URL)")
	} else if u, err := url.Parse(a.ServerURL); err != nil || u.Scheme != "https" || u.Host == "" {
		bad("server", "%q is not an https URL like https://10.0.0.1:6443", a.ServerURL)
	}
	if a.Token == "" && a.TokenFile == "" {
		bad("token", "an agent needs the cluster's token: give --token or --token-file (or K3HA_TOKEN)")
	}
	if a.Token != "" && a.TokenFile != "" {
		bad("token-file", "give either --token or --token-file, not both")
	}
	if a.NodeIP != "" && net.ParseIP(a.NodeIP) == nil {
		bad("node-ip", "%q is not an IP address", a.NodeIP)
	}
	if a.NodeName != "" {
		if msgs := validation.IsDNS1123Subdomain(a.NodeName); len(msgs) > 0 {
			bad("node-name", "%q is not a valid node name: %s", a.NodeName, strings.Join(msgs, "; "))
		}
	}
	errs = append(errs, a.Node.validate()...)
	sortErrs(errs)
	return errors.Join(errs...)
}

func (n *Node) validate() []error {
	var errs []error
	if n.LBServerPort < 1 || n.LBServerPort > 65535 {
		errs = append(errs, fmt.Errorf("--lb-server-port: %d is not a TCP port", n.LBServerPort))
	}
	for flag, args := range map[string][]string{"node-label": n.NodeLabels, "kubelet-arg": n.KubeletArgs, "kube-proxy-arg": n.KubeProxyArgs} {
		for _, a := range args {
			if k, _, ok := strings.Cut(a, "="); !ok || k == "" {
				errs = append(errs, fmt.Errorf("--%s: %q must look like key=value", flag, a))
			}
		}
	}
	if ip := net.ParseIP(n.NodeExternalIP); n.NodeExternalIP != "" && (ip == nil || ip.To4() == nil) {
		errs = append(errs, fmt.Errorf("--node-external-ip: %q is not an IPv4 address", n.NodeExternalIP))
	}
	if e := n.ContainerRuntimeEndpoint; e != "" && !strings.HasPrefix(e, "unix://") {
		errs = append(errs, fmt.Errorf("--container-runtime-endpoint: %q must be a unix:// socket", e))
	}
	return errs
}
