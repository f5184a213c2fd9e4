// Package datastore decides which store a server's apiserver talks to and
// describes how to reach it.
package datastore

// Endpoint is how the apiserver reaches the datastore (etcd v3 API).
type Endpoint struct {
	Servers  []string // etcd client URLs, e.g. unix:///var/lib/k3ha/server/kine.sock
	CAFile   string
	CertFile string
	KeyFile  string
}
