package controlplane

import (
	"fmt"
	"net"

	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/pki"
)

// Identity is what the apiserver serving certificate must be valid for.
type Identity struct {
	NodeName      string
	IPs           []net.IP // node IP, advertise address, first service IP, loopback
	DNSNames      []string // --tls-san names and the in-cluster names
	ClusterDomain string
}

// EnsureCAs creates the cluster's certificate authorities and the
// service-account key where they are missing. A joining server receives them
// from the cluster instead, before this runs, so nothing is created then.
func EnsureCAs(l layout.Server) (created bool, err error) {
	for _, ca := range []struct{ name, cn string }{
		{layout.ServerCA, "k3ha-server-ca"},
		{layout.ClientCA, "k3ha-client-ca"},
		{layout.RequestHeaderCA, "k3ha-request-header-ca"},
		{layout.EtcdServerCA, "k3ha-etcd-server-ca"},
		{layout.EtcdPeerCA, "k3ha-etcd-peer-ca"},
	} {
		_, made, err := pki.LoadOrCreateCA(l.TLSDir(), ca.name, ca.cn)
		if err != nil {
			return false, fmt.Errorf("certificate authority %s: %w", ca.name, err)
		}
		created = created || made
	}
	made, err := pki.EnsureKey(l.Key(layout.ServiceAccount), l.ServiceAccountPublicKey())
	if err != nil {
		return false, fmt.Errorf("service-account key: %w", err)
	}
	return created || made, nil
}

// EnsureLeafCertificates makes this server's own certificates from the CAs:
// they are per node, so every server has its own and keeps them on restart.
func EnsureLeafCertificates(l layout.Server, id Identity) (issued int, err error) {
	serverCA, err := pki.LoadCA(l.TLSDir(), layout.ServerCA)
	if err != nil {
		return 0, err
	}
	clientCA, err := pki.LoadCA(l.TLSDir(), layout.ClientCA)
	if err != nil {
		return 0, err
	}
	requestHeaderCA, err := pki.LoadCA(l.TLSDir(), layout.RequestHeaderCA)
	if err != nil {
		return 0, err
	}
	dns := append([]string{"localhost", id.NodeName, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc." + id.ClusterDomain}, id.DNSNames...)
	leaves := []struct {
		ca   *pki.CA
		name string
		spec pki.LeafSpec
	}{
		{serverCA, layout.APIServerServing, pki.LeafSpec{CommonName: "kube-apiserver", DNSNames: dedupe(dns), IPs: dedupeIPs(id.IPs), Usage: pki.ServerAuth}},
		{clientCA, layout.AdminClient, pki.LeafSpec{CommonName: "system:admin", Organization: []string{"system:masters"}, Usage: pki.ClientAuth}},
		{clientCA, layout.ControllerClient, pki.LeafSpec{CommonName: "system:kube-controller-manager", Usage: pki.ClientAuth}},
		{clientCA, layout.SchedulerClient, pki.LeafSpec{CommonName: "system:kube-scheduler", Usage: pki.ClientAuth}},
		{clientCA, layout.APIServerClient, pki.LeafSpec{CommonName: "system:kube-apiserver", Organization: []string{"system:masters"}, Usage: pki.ClientAuth}},
		{requestHeaderCA, layout.AuthProxyClient, pki.LeafSpec{CommonName: authProxyUser, Usage: pki.ClientAuth}},
	}
	for _, leaf := range leaves {
		made, err := leaf.ca.EnsureLeaf(l.Cert(leaf.name), l.Key(leaf.name), leaf.spec)
		if err != nil {
			return issued, fmt.Errorf("certificate %s: %w", leaf.name, err)
		}
		if made {
			issued++
		}
	}
	return issued, nil
}

const authProxyUser = "system:auth-proxy"

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func dedupeIPs(in []net.IP) []net.IP {
	seen := map[string]bool{}
	var out []net.IP
	for _, ip := range in {
		if ip != nil && !seen[ip.String()] {
			seen[ip.String()] = true
			out = append(out, ip)
		}
	}
	return out
}
