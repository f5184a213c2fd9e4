package supervisor

// Paths of the supervisor API on the API port.
const (
	PathCACerts         = "/cacerts"
	PathPing            = "/ping"
	PathReadyz          = "/v1-k3ha/readyz"
	PathConfig          = "/v1-k3ha/config"
	PathServerBootstrap = "/v1-k3ha/server-bootstrap"
	PathAPIServers      = "/v1-k3ha/apiservers"
	PathDBInfo          = "/db/info"
)

// Member is one etcd member as /db/info reports it.
type Member struct {
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	IsLearner  bool     `json:"isLearner"`
}

// DBInfo is the body of /db/info.
type DBInfo struct {
	Members []Member `json:"members"`
}

// BootstrapFiles is the body of /v1-k3ha/server-bootstrap: the cluster's
// shared secret files, by path relative to <data-dir>/server.
type BootstrapFiles struct {
	Files map[string][]byte `json:"files"`
}
