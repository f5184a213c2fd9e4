// Package packaged is what k3ha deploys into every cluster: the packaged
// components' manifests, written into the manifests directory at server
// start, and their images, built from Go modules by `make build`, carried
// in the k3ha binary and imported by every node, so that no node ever needs
// a registry.
package packaged

import (
	"fmt"
	"strings"
)

// Registry is the registry host of k3ha's own images. It is under .invalid
// (RFC 2606) and never resolves, so a missing image fails at once instead
// of pulling something else under that name.
const Registry = "k3ha.invalid"

// Image is one packaged image: a single program, built from Module at
// Version. These are the pinned versions; components/*/go.mod must agree
// (a unit test checks).
type Image struct {
	Name    string // the program's name, and its payload file images/<Name>.tar
	Module  string // the Go module it is built from
	Version string // that module's version, and the image tag
	Path    string // where the program sits in the image
	// Env of the image, if any.
	Env []string
}

// Images are the packaged images.
var Images = []Image{
	{Name: "coredns", Module: "github.com/coredns/coredns", Version: "v1.15.0", Path: "/coredns"},
	{Name: "metrics-server", Module: "sigs.k8s.io/metrics-server", Version: "v0.8.0", Path: "/metrics-server"},
	{Name: "local-path-provisioner", Module: "github.com/rancher/local-path-provisioner", Version: "v0.0.30",
		Path: "/usr/bin/local-path-provisioner", Env: []string{"PATH=/usr/bin:/bin"}},
	// The local path provisioner's helper pods run shell scripts: a shell
	// whose mkdir, rm and chmod are built in (components/helpers/sh).
	{Name: "local-path-helper", Module: "mvdan.cc/sh/v3", Version: "v3.14.1", Path: "/bin/sh", Env: []string{"PATH=/bin"}},
	// servicelb's per-node forwarder (components/helpers/svclb); its
	// version is k3ha's own, bumped when it changes.
	{Name: "svclb", Module: "github.com/k3ha/k3ha/components/helpers", Version: "v1", Path: "/svclb"},
	// The ingress controller, deployed by the Helm controller from the
	// chart in charts/traefik.
	{Name: "traefik", Module: "github.com/traefik/traefik/v3", Version: "v3.7.13", Path: "/traefik"},
}

// Program is one program a node runs beside k3ha, carried in bin/k3ha's
// payload under bin/.
type Program struct {
	Name    string
	Module  string
	Version string
	Dir     string // its module dir under components/, "" for k3ha's own go.mod
}

// Programs are the node's programs; the versions are pinned here and in
// the go.mod files the Makefile builds them from (a unit test checks).
var Programs = []Program{
	{Name: "runc", Module: "github.com/opencontainers/runc", Version: "v1.5.3", Dir: "runc"},
	{Name: "containerd-shim-runc-v2", Module: "github.com/containerd/containerd/v2", Version: "v2.4.2"},
	{Name: "crictl", Module: "sigs.k8s.io/cri-tools", Version: "v1.37.0", Dir: "crictl"},
	{Name: "cni plugins (bridge, host-local, loopback, portmap)", Module: "github.com/containernetworking/plugins", Version: "v1.9.1", Dir: "cni"},
}

// ImageByName returns the packaged image name.
func ImageByName(name string) Image {
	for _, img := range Images {
		if img.Name == name {
			return img
		}
	}
	panic(fmt.Sprintf("no packaged image %q", name))
}

// Repo is the image's repository path, without the registry.
func (img Image) Repo() string { return "k3ha/" + img.Name }

// Ref is the image's name as nodes import it.
func (img Image) Ref() string { return Registry + "/" + img.Repo() + ":" + img.Version }

// RepoIn is the image's repository under registry (--system-default-registry),
// or under k3ha's own when registry is empty.
func (img Image) RepoIn(registry string) string {
	if registry == "" {
		registry = Registry
	}
	return strings.TrimSuffix(registry, "/") + "/" + img.Repo()
}

// RefIn is the image's name under registry (--system-default-registry),
// or Ref when registry is empty.
func (img Image) RefIn(registry string) string {
	return img.RepoIn(registry) + ":" + img.Version
}

// Versions lists what k3ha carries, for `k3ha --version`.
func Versions() string {
	var b strings.Builder
	b.WriteString("packaged components:\n")
	for _, img := range Images {
		fmt.Fprintf(&b, "  %s %s (%s)\n", img.Name, img.Version, img.Module)
	}
	b.WriteString("node programs:\n")
	for _, p := range Programs {
		fmt.Fprintf(&b, "  %s %s (%s)\n", p.Name, p.Version, p.Module)
	}
	return b.String()
}
