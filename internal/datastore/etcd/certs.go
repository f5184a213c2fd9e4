package etcd

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/pki"
)

// HasData reports whether etcd data exists (the WAL dir <etcd>/member/wal
// holds a WAL file): then this node already initialised or joined a
// cluster, and etcd starts from that data.
func HasData(l layout.Server) bool { return hasWAL(walDir(l)) }

func hasWAL(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		// etcd itself decides by *.wal files; a stray temp file is no data.
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".wal") {
			return true
		}
	}
	return false
}

func walDir(l layout.Server) string { return filepath.Join(l.EtcdDir(), "member", "wal") }

// EnsureCertificates makes this node's etcd certificates from the etcd CAs
// on disk (layout.EtcdServerCA and layout.EtcdPeerCA must exist). Existing
// certificates that still fit are kept.
func EnsureCertificates(l layout.Server, name string, nodeIP net.IP) error {
	if name == "" || nodeIP == nil {
		return fmt.Errorf("etcd certificates: node name and node IP are required")
	}
	serverCA, err := pki.LoadCA(l.TLSDir(), layout.EtcdServerCA)
	if err != nil {
		return fmt.Errorf("etcd certificates: %w", err)
	}
	peerCA, err := pki.LoadCA(l.TLSDir(), layout.EtcdPeerCA)
	if err != nil {
		return fmt.Errorf("etcd certificates: %w", err)
	}
	loopback4, loopback6 := net.IPv4(127, 0, 0, 1), net.IPv6loopback
	leaves := []struct {
		ca   *pki.CA
		name string
		spec pki.LeafSpec
	}{
		// The client port serves the apiserver and k3ha on loopback and
		// other servers' clients on the node IP; etcd also dials it itself
		// (grpc-gateway), hence client usage too.
		{serverCA, layout.EtcdServer, pki.LeafSpec{
			CommonName: "etcd-server",
			DNSNames:   uniqueNames("localhost", name),
			IPs:        uniqueIPs(nodeIP, loopback4, loopback6),
			Usage:      pki.ServerAuth | pki.ClientAuth,
		}},
		// Peers present the same certificate when serving and dialling.
		{peerCA, layout.EtcdPeer, pki.LeafSpec{
			CommonName: "etcd-peer",
			DNSNames:   uniqueNames("localhost", name),
			IPs:        uniqueIPs(nodeIP, loopback4),
			Usage:      pki.ServerAuth | pki.ClientAuth,
		}},
		{serverCA, layout.EtcdClient, pki.LeafSpec{
			CommonName: "etcd-client",
			Usage:      pki.ClientAuth,
		}},
	}
	for _, leaf := range leaves {
		if _, err := leaf.ca.EnsureLeaf(l.Cert(leaf.name), l.Key(leaf.name), leaf.spec); err != nil {
			return fmt.Errorf("etcd certificates: %w", err)
		}
	}
	return nil
}

// ClientTLS is the TLS configuration of k3ha's own etcd clients: the
// etcd client certificate, trusting only the etcd server CA.
func ClientTLS(l layout.Server) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(l.Cert(layout.EtcdClient), l.Key(layout.EtcdClient))
	if err != nil {
		return nil, fmt.Errorf("etcd client certificate: %w", err)
	}
	roots, err := pki.LoadCertPool(l.Cert(layout.EtcdServerCA))
	if err != nil {
		return nil, fmt.Errorf("etcd server CA: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      roots,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

func uniqueIPs(ips ...net.IP) []net.IP {
	var out []net.IP
	for _, ip := range ips {
		dup := false
		for _, o := range out {
			dup = dup || o.Equal(ip)
		}
		if !dup {
			out = append(out, ip)
		}
	}
	return out
}

func uniqueNames(names ...string) []string {
	var out []string
	for _, n := range names {
		if n != "" && !containsFold(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
