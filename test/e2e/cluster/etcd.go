package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/k3ha/k3ha/internal/layout"
)

// EtcdURL is a server's etcd client URL.
func EtcdURL(s *Server) string { return "https://" + net.JoinHostPort(s.Host.IP.String(), "2379") }

// EtcdTLS is the client side of etcd's mutual TLS, from a server's data
// dir: the etcd client certificate (the one the apiserver uses) and the
// etcd server CA, which all members share.
func EtcdTLS(t testing.TB, s *Server) *tls.Config {
	t.Helper()
	l := layout.NewServer(s.DataDir())
	pair, err := tls.LoadX509KeyPair(l.Cert(layout.EtcdClient), l.Key(layout.EtcdClient))
	if err != nil {
		t.Fatalf("etcd client certificate of %s: %v", s.Name, err)
	}
	caPEM, err := os.ReadFile(l.Cert(layout.EtcdServerCA))
	if err != nil {
		t.Fatalf("etcd server CA of %s: %v", s.Name, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("no certificate in %s", l.Cert(layout.EtcdServerCA))
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: roots, MinVersion: tls.VersionTLS12}
}

// EtcdClient is a client of one member only, so that it keeps one connection.
func EtcdClient(t testing.TB, cfg *tls.Config, s *Server) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{EtcdURL(s)},
		TLS:         cfg.Clone(),
		DialTimeout: 10 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcd client for %s: %v", s.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
