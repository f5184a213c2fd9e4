// Package config holds what a k3ha command is told: its flags, the environment
// variables and the config file that can stand in for them, and their checks.
package config

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
)

// Default addresses and ranges, as K3s users know them.
const (
	DefaultHTTPSPort     = 6443
	DefaultClusterCIDR   = "10.42.0.0/16"
	DefaultServiceCIDR   = "10.43.0.0/16"
	DefaultClusterDomain = "cluster.local"
	DefaultConfigFile    = "/etc/k3ha/config.yaml"
	DefaultKubeconfig    = "/etc/k3ha/k3ha.yaml"
	DefaultDataDir       = "/var/lib/k3ha"
)

// Server is the whole configuration of `k3ha server`.
type Server struct {
	ConfigFile string
	Debug      bool

	DataDir        string
	Token          string
	TokenFile      string
	AgentToken     string
	AgentTokenFile string

	ClusterInit bool
	ServerURL   string

	BindAddress      string
	AdvertiseAddress string
	NodeIP           string
	NodeName         string
	HTTPSPort        int
	TLSSANs          []string

	DatastoreEndpoint string
	DatastoreCAFile   string
	DatastoreCertFile string
	DatastoreKeyFile  string

	ClusterCIDR           string
	ServiceCIDR           string
	ClusterDNS            string
	ClusterDomain         string
	Disable               []string
	DisableHelmController bool
	DisableKubeProxy      bool
	DisableNetworkPolicy  bool
	SecretsEncryption     bool
	FlannelBackend        string
	FlannelExternalIP     bool

	WriteKubeconfig     string
	WriteKubeconfigMode string
	DisableAgent        bool

	EtcdArgs                  []string
	KubeAPIServerArgs         []string
	KubeControllerManagerArgs []string
	KubeSchedulerArgs         []string

	ClusterReset            bool
	ClusterResetRestorePath string

	SystemDefaultRegistry   string
	DefaultLocalStoragePath string

	Snapshots Snapshots

	Node
}

// AddFlags registers every server flag, named as in K3s, on fs.
func (s *Server) AddFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&s.ConfigFile, "config", "c", DefaultConfigFile, "Load flags from this YAML file (keys named like the flags)")
	fs.BoolVar(&s.Debug, "debug", false, "Log what the embedded Kubernetes components report at info level too")

	fs.StringVarP(&s.DataDir, "data-dir", "d", defaultDataDir(), "Directory holding certificates, tokens and the datastore")
	fs.StringVarP(&s.Token, "token", "t", "", "Shared secret (or full K10 token) that servers and agents use to join")
	fs.StringVar(&s.TokenFile, "token-file", "", "File holding the token")
	fs.StringVar(&s.AgentToken, "agent-token", "", "Secret for agents only (defaults to --token); never unlocks server bootstrap data")
	fs.StringVar(&s.AgentTokenFile, "agent-token-file", "", "File holding the agent token")

	fs.BoolVar(&s.ClusterInit, "cluster-init", false, "Start a new cluster on embedded etcd (or move this server's SQLite data into etcd)")
	fs.StringVarP(&s.ServerURL, "server", "s", "", "Join the cluster of this server, e.g. https://10.0.0.1:6443")

	fs.StringVar(&s.BindAddress, "bind-address", "0.0.0.0", "Address the API and supervisor port listens on")
	fs.StringVar(&s.AdvertiseAddress, "advertise-address", "", "Address advertised to the cluster (default: the node IP)")
	fs.StringVarP(&s.NodeIP, "node-ip", "i", "", "This node's IP (default: the address of the default route's interface)")
	fs.StringVar(&s.NodeName, "node-name", "", "This node's name (default: the host name)")
	fs.IntVar(&s.HTTPSPort, "https-listen-port", DefaultHTTPSPort, "Port of the API and supervisor")
	fs.StringSliceVar(&s.TLSSANs, "tls-san", nil, "Extra host names or IPs for the serving certificate")

	fs.StringVar(&s.DatastoreEndpoint, "datastore-endpoint", "", "External datastore: sqlite://, postgres://, mysql:// or https:// (etcd)")
	fs.StringVar(&s.DatastoreCAFile, "datastore-cafile", "", "CA file for the external datastore")
	fs.StringVar(&s.DatastoreCertFile, "datastore-certfile", "", "Client certificate for the external datastore")
	fs.StringVar(&s.DatastoreKeyFile, "datastore-keyfile", "", "Client key for the external datastore")

	fs.StringVar(&s.ClusterCIDR, "cluster-cidr", DefaultClusterCIDR, "Pod IP range")
	fs.StringVar(&s.ServiceCIDR, "service-cidr", DefaultServiceCIDR, "Service IP range")
	fs.StringVar(&s.ClusterDNS, "cluster-dns", "", "Cluster DNS service IP, inside --service-cidr (default: its 10th address, 10.43.0.10)")
	fs.StringVar(&s.ClusterDomain, "cluster-domain", DefaultClusterDomain, "Cluster domain")
	fs.StringSliceVar(&s.Disable, "disable", nil, "Packaged components not to deploy ("+joinKnown()+")")
	fs.BoolVar(&s.DisableHelmController, "disable-helm-controller", false, "Do not run the Helm controller")
	fs.BoolVar(&s.DisableKubeProxy, "disable-kube-proxy", false, "Do not run kube-proxy")
	fs.BoolVar(&s.DisableNetworkPolicy, "disable-network-policy", false, "Do not run the network policy controller")
	fs.BoolVar(&s.SecretsEncryption, "secrets-encryption", false, "Encrypt Secrets at rest in the datastore")
	fs.StringVar(&s.FlannelBackend, "flannel-backend", FlannelVXLAN, "How pod traffic travels between nodes: "+strings.Join(FlannelBackends, ", ")+" (cluster-wide)")
	fs.BoolVar(&s.FlannelExternalIP, "flannel-external-ip", false, "Send pod traffic between nodes to their --node-external-ip addresses (cluster-wide)")

	fs.StringVarP(&s.WriteKubeconfig, "write-kubeconfig", "o", defaultKubeconfig(), "Write the admin kubeconfig here")
	fs.StringVar(&s.WriteKubeconfigMode, "write-kubeconfig-mode", "0600", "File mode of the admin kubeconfig, octal")
	fs.BoolVar(&s.DisableAgent, "disable-agent", false, "Run the control plane only, without a kubelet")

	fs.StringArrayVar(&s.EtcdArgs, "etcd-arg", nil, "Extra etcd setting as key=value (repeatable)")
	fs.StringArrayVar(&s.KubeAPIServerArgs, "kube-apiserver-arg", nil, "Extra kube-apiserver flag as key=value (repeatable)")
	fs.StringArrayVar(&s.KubeControllerManagerArgs, "kube-controller-manager-arg", nil, "Extra kube-controller-manager flag as key=value (repeatable)")
	fs.StringArrayVar(&s.KubeSchedulerArgs, "kube-scheduler-arg", nil, "Extra kube-scheduler flag as key=value (repeatable)")

	fs.BoolVar(&s.ClusterReset, "cluster-reset", false, "Make this server the only member of a new etcd cluster, keeping its data")
	fs.StringVar(&s.ClusterResetRestorePath, "cluster-reset-restore-path", "", "Snapshot file to restore with --cluster-reset")

	fs.StringVar(&s.SystemDefaultRegistry, "system-default-registry", "", "Registry the packaged components' images are named under (for a mirror of them); default: the images k3ha carries")
	fs.StringVar(&s.DefaultLocalStoragePath, "default-local-storage-path", "", "Where local-path volumes live on every node (default: <data-dir>/storage)")
	s.Snapshots.AddFlags(fs)
	s.AddNodeFlags(fs)
}

// StoragePath is where local-path volumes live on the nodes.
func (s *Server) StoragePath() string {
	if s.DefaultLocalStoragePath != "" {
		return s.DefaultLocalStoragePath
	}
	return filepath.Join(s.DataDir, "storage")
}

// ServerEnv maps environment variables onto server flags. The K3HA_ name wins
// over the K3S_ one, which is there for people following K3s instructions.
var ServerEnv = []EnvBinding{
	{Flag: "config", Vars: []string{"K3HA_CONFIG_FILE", "K3S_CONFIG_FILE"}},
	{Flag: "token", Vars: []string{"K3HA_TOKEN", "K3S_TOKEN"}},
	{Flag: "token-file", Vars: []string{"K3HA_TOKEN_FILE", "K3S_TOKEN_FILE"}},
	{Flag: "agent-token", Vars: []string{"K3HA_AGENT_TOKEN", "K3S_AGENT_TOKEN"}},
	{Flag: "agent-token-file", Vars: []string{"K3HA_AGENT_TOKEN_FILE", "K3S_AGENT_TOKEN_FILE"}},
	{Flag: "server", Vars: []string{"K3HA_URL", "K3S_URL"}},
	{Flag: "datastore-endpoint", Vars: []string{"K3HA_DATASTORE_ENDPOINT", "K3S_DATASTORE_ENDPOINT"}},
	{Flag: "cluster-init", Vars: []string{"K3HA_CLUSTER_INIT", "K3S_CLUSTER_INIT"}},
	{Flag: "node-name", Vars: []string{"K3HA_NODE_NAME", "K3S_NODE_NAME"}},
	{Flag: "write-kubeconfig", Vars: []string{"K3HA_KUBECONFIG_OUTPUT", "K3S_KUBECONFIG_OUTPUT"}},
	{Flag: "write-kubeconfig-mode", Vars: []string{"K3HA_KUBECONFIG_MODE", "K3S_KUBECONFIG_MODE"}},
	{Flag: "resolv-conf", Vars: []string{"K3HA_RESOLV_CONF", "K3S_RESOLV_CONF"}},
}

// DefaultDataDirPath is the data dir when --data-dir is not given: the
// system's for root, else one in the home directory.
func DefaultDataDirPath() string { return defaultDataDir() }

func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return DefaultDataDir
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".k3ha")
	}
	return DefaultDataDir
}

func defaultKubeconfig() string {
	if os.Geteuid() == 0 {
		return DefaultKubeconfig
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".kube", "k3ha.yaml")
	}
	return DefaultKubeconfig
}
