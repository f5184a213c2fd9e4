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
	PathNodeCerts       = "/v1-k3ha/node-certs"
	PathOperation       = "/v1-k3ha/op/"
	PathStatic          = "/static/"
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

// NodeCertsRequest asks for a node's certificates. Password is the node's
// own secret: the first request for a name binds the name to it, so another
// host cannot later take that node name over.
type NodeCertsRequest struct {
	NodeName string `json:"nodeName"`
	NodeIP   string `json:"nodeIP"`
	Password string `json:"password"`
}

// NodeCerts are a node's certificates, all PEM.
type NodeCerts struct {
	ServerCA           []byte `json:"serverCA"` // trust for the API and for kubelets' serving certificates
	ClientCA           []byte `json:"clientCA"` // the kubelet trusts API clients signed by it
	KubeletClientCert  []byte `json:"kubeletClientCert"`
	KubeletClientKey   []byte `json:"kubeletClientKey"`
	KubeletServingCert []byte `json:"kubeletServingCert"`
	KubeletServingKey  []byte `json:"kubeletServingKey"`
	KubeProxyCert      []byte `json:"kubeProxyCert"`
	KubeProxyKey       []byte `json:"kubeProxyKey"`
	// Controller is system:k3ha-controller, for the node's flannel,
	// network policy and node addresses.
	ControllerCert []byte `json:"controllerCert"`
	ControllerKey  []byte `json:"controllerKey"`
}
