package datastore

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Client connects k3ha's own etcd v3 client to the datastore (kine or etcd).
func (e Endpoint) Client(logger *zap.Logger) (*clientv3.Client, error) {
	cfg := clientv3.Config{Endpoints: e.Servers, DialTimeout: 10 * time.Second, Logger: logger}
	if e.CertFile != "" || e.CAFile != "" {
		t := &tls.Config{MinVersion: tls.VersionTLS12}
		if e.CertFile != "" {
			pair, err := tls.LoadX509KeyPair(e.CertFile, e.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("datastore client certificate: %w", err)
			}
			t.Certificates = []tls.Certificate{pair}
		}
		if e.CAFile != "" {
			pem, err := os.ReadFile(e.CAFile)
			if err != nil {
				return nil, fmt.Errorf("datastore CA: %w", err)
			}
			t.RootCAs = x509.NewCertPool()
			if !t.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("datastore CA %s holds no certificate", e.CAFile)
			}
		}
		cfg.TLS = t
	}
	c, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to datastore %v: %w", e.Servers, err)
	}
	return c, nil
}
