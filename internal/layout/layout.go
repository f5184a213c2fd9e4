// Package layout says where a k3ha node keeps its files under the data dir.
// Every other package asks here instead of joining paths itself.
package layout

import "path/filepath"

// Names of the certificate authorities and key pairs under server/tls.
const (
	ServerCA        = "server-ca"         // signs serving certificates
	ClientCA        = "client-ca"         // signs client certificates users and components log in with
	RequestHeaderCA = "request-header-ca" // signs the front-proxy client of the aggregator

	APIServerServing = "serving-kube-apiserver"
	AdminClient      = "client-admin"
	ControllerClient = "client-controller"
	SchedulerClient  = "client-scheduler"
	APIServerClient  = "client-kube-apiserver" // apiserver → kubelet
	AuthProxyClient  = "client-auth-proxy"     // aggregator → extension apiservers
	ServiceAccount   = "service"               // service-account token signing key

	// Embedded etcd: its own CAs for clients and peers (mutual TLS on both ports).
	EtcdServerCA = "etcd/server-ca"          // signs etcd's serving and client certificates
	EtcdPeerCA   = "etcd/peer-ca"            // signs peer certificates
	EtcdServer   = "etcd/server-client"      // etcd client-port serving certificate
	EtcdPeer     = "etcd/peer-server-client" // etcd peer certificate (serves and dials)
	EtcdClient   = "etcd/client"             // the apiserver's and k3ha's etcd client certificate
)

// Server is the layout of <data-dir>/server.
type Server struct{ Root string }

// NewServer returns the server layout under dataDir.
func NewServer(dataDir string) Server { return Server{Root: filepath.Join(dataDir, "server")} }

// DataDir is the data dir the server layout lives in.
func (s Server) DataDir() string { return filepath.Dir(s.Root) }

func (s Server) TLSDir() string          { return filepath.Join(s.Root, "tls") }
func (s Server) Cert(name string) string { return filepath.Join(s.TLSDir(), name+".crt") }
func (s Server) Key(name string) string  { return filepath.Join(s.TLSDir(), name+".key") }
func (s Server) ServiceAccountPublicKey() string {
	return filepath.Join(s.TLSDir(), ServiceAccount+".pub")
}
func (s Server) CredDir() string               { return filepath.Join(s.Root, "cred") }
func (s Server) Kubeconfig(name string) string { return filepath.Join(s.CredDir(), name+".kubeconfig") }
func (s Server) EncryptionConfig() string {
	return filepath.Join(s.CredDir(), "encryption-config.json")
}
func (s Server) AuthenticationConfig() string {
	return filepath.Join(s.CredDir(), "authentication-config.yaml")
}
func (s Server) DBDir() string       { return filepath.Join(s.Root, "db") }
func (s Server) SQLiteFile() string  { return filepath.Join(s.DBDir(), "state.db") }
func (s Server) SnapshotDir() string { return filepath.Join(s.DBDir(), "snapshots") }
func (s Server) EtcdDir() string     { return filepath.Join(s.DBDir(), "etcd") }
func (s Server) KineSocket() string  { return filepath.Join(s.Root, "kine.sock") }

// ManifestsDir holds the manifests the deploy controller applies: the
// packaged components' and the users' own.
func (s Server) ManifestsDir() string { return filepath.Join(s.Root, "manifests") }

// StaticDir holds the files the supervisor serves under /static/.
func (s Server) StaticDir() string { return filepath.Join(s.Root, "static") }

// ChartsDir holds chart archives, served under /static/charts/: the
// packaged ones and any a user places there.
func (s Server) ChartsDir() string { return filepath.Join(s.StaticDir(), "charts") }

func (s Server) TokenFile() string      { return filepath.Join(s.Root, "token") }
func (s Server) AgentTokenFile() string { return filepath.Join(s.Root, "agent-token") }

// EtcdConfigFile is rewritten at every start, so it sits with the data it describes.
func (s Server) EtcdConfigFile() string { return filepath.Join(s.EtcdDir(), "config.yaml") }

// EtcdMigrateDir is where a migration from SQLite builds the etcd data
// before it becomes EtcdDir.
func (s Server) EtcdMigrateDir() string { return filepath.Join(s.DBDir(), "etcd-migrate-tmp") }
