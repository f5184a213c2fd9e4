package config

import (
	"github.com/spf13/pflag"
)

// DefaultRegistriesFile is where a node's registries.yaml is looked for.
const DefaultRegistriesFile = "/etc/k3ha/registries.yaml"

// DefaultLBPort is the agent's local load-balancer port to the API (K3s uses the same).
const DefaultLBPort = 6444

// Node holds the settings of the node part: the kubelet, containerd and
// kube-proxy. `k3ha agent` has only these; `k3ha server` has them too, for
// the agent it runs unless --disable-agent.
type Node struct {
	NodeLabels               []string
	KubeletArgs              []string
	KubeProxyArgs            []string
	ContainerRuntimeEndpoint string
	LBServerPort             int
	ResolvConf               string
	PrivateRegistry          string
	FlannelIface             string
	NodeExternalIP           string
}

// AddNodeFlags registers the node flags.
func (n *Node) AddNodeFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&n.NodeLabels, "node-label", nil, "Label to register the node with, key=value (repeatable)")
	fs.StringArrayVar(&n.KubeletArgs, "kubelet-arg", nil, "Extra kubelet flag as key=value (repeatable)")
	fs.StringArrayVar(&n.KubeProxyArgs, "kube-proxy-arg", nil, "Extra kube-proxy flag as key=value (repeatable)")
	fs.StringVar(&n.ContainerRuntimeEndpoint, "container-runtime-endpoint", "", "Use this CRI socket (e.g. unix:///run/containerd/containerd.sock) instead of k3ha's own containerd")
	fs.IntVar(&n.LBServerPort, "lb-server-port", DefaultLBPort, "Local port of the agent's load balancer to the servers")
	fs.StringVar(&n.PrivateRegistry, "private-registry", DefaultRegistriesFile, "Registry mirrors, credentials and TLS for this node's containerd (K3s's registries.yaml format)")
	fs.StringVar(&n.FlannelIface, "flannel-iface", "", "Interface pod traffic to other nodes leaves by (default: the one holding the node IP)")
	fs.StringVar(&n.NodeExternalIP, "node-external-ip", "", "This node's external IP: the Node's ExternalIP address, and flannel's endpoint with --flannel-external-ip")
	fs.StringVar(&n.ResolvConf, "resolv-conf", "", "The kubelet's resolv.conf: the upstream resolvers of pods and of the cluster DNS (default: the host's, if usable)")
}

// Agent is the whole configuration of `k3ha agent`.
type Agent struct {
	ConfigFile string
	Debug      bool
	DataDir    string
	ServerURL  string
	Token      string
	TokenFile  string
	NodeName   string
	NodeIP     string
	Node
}

// AddFlags registers every agent flag, named as in K3s.
func (a *Agent) AddFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&a.ConfigFile, "config", "c", DefaultConfigFile, "Load flags from this YAML file (keys named like the flags)")
	fs.BoolVar(&a.Debug, "debug", false, "Log what the embedded Kubernetes components report at info level too")
	fs.StringVarP(&a.DataDir, "data-dir", "d", defaultDataDir(), "Directory holding this node's certificates, containerd and kubelet state")
	fs.StringVarP(&a.ServerURL, "server", "s", "", "A server of the cluster, e.g. https://10.0.0.1:6443 (required)")
	fs.StringVarP(&a.Token, "token", "t", "", "The cluster's token (agent or server token)")
	fs.StringVar(&a.TokenFile, "token-file", "", "File holding the token")
	fs.StringVar(&a.NodeName, "node-name", "", "This node's name (default: the host name)")
	fs.StringVarP(&a.NodeIP, "node-ip", "i", "", "This node's IP (default: the address of the default route's interface)")
	a.AddNodeFlags(fs)
}

// AgentEnv maps environment variables onto agent flags.
var AgentEnv = []EnvBinding{
	{Flag: "config", Vars: []string{"K3HA_CONFIG_FILE", "K3S_CONFIG_FILE"}},
	{Flag: "token", Vars: []string{"K3HA_TOKEN", "K3S_TOKEN"}},
	{Flag: "token-file", Vars: []string{"K3HA_TOKEN_FILE", "K3S_TOKEN_FILE"}},
	{Flag: "server", Vars: []string{"K3HA_URL", "K3S_URL"}},
	{Flag: "node-name", Vars: []string{"K3HA_NODE_NAME", "K3S_NODE_NAME"}},
	{Flag: "resolv-conf", Vars: []string{"K3HA_RESOLV_CONF", "K3S_RESOLV_CONF"}},
}
