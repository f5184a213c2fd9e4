package layout

import "path/filepath"

// Agent is the layout of <data-dir>/agent: one node's kubelet, containerd
// and their credentials.
type Agent struct{ Root string }

// NewAgent returns the agent layout under dataDir.
func NewAgent(dataDir string) Agent { return Agent{Root: filepath.Join(dataDir, "agent")} }

func (a Agent) CertDir() string               { return filepath.Join(a.Root, "certs") }
func (a Agent) Cert(name string) string       { return filepath.Join(a.CertDir(), name+".crt") }
func (a Agent) Key(name string) string        { return filepath.Join(a.CertDir(), name+".key") }
func (a Agent) Kubeconfig(name string) string { return filepath.Join(a.Root, name+".kubeconfig") }
func (a Agent) NodePasswordFile() string      { return filepath.Join(a.Root, "node-password") }
func (a Agent) LBStateFile() string           { return filepath.Join(a.Root, "lb-servers.json") }
func (a Agent) ImagesDir() string             { return filepath.Join(a.Root, "images") }
func (a Agent) ContainerdRoot() string        { return filepath.Join(a.Root, "containerd") }
func (a Agent) ContainerdLog() string         { return filepath.Join(a.Root, "containerd", "containerd.log") }
func (a Agent) RunDir() string                { return filepath.Join(a.Root, "run") }
func (a Agent) ContainerdState() string       { return filepath.Join(a.RunDir(), "containerd") }
func (a Agent) ContainerdSocket() string {
	return filepath.Join(a.ContainerdState(), "containerd.sock")
}
func (a Agent) RuncRoot() string         { return filepath.Join(a.RunDir(), "runc") }
func (a Agent) EtcDir() string           { return filepath.Join(a.Root, "etc") }
func (a Agent) RegistryHostsDir() string { return filepath.Join(a.EtcDir(), "containerd", "certs.d") }
func (a Agent) CNIConfDir() string       { return filepath.Join(a.EtcDir(), "cni", "net.d") }
func (a Agent) IPAMDir() string          { return filepath.Join(a.Root, "cni", "ipam") }
func (a Agent) FlannelDir() string       { return filepath.Join(a.EtcDir(), "flannel") }
func (a Agent) KubeletDir() string       { return filepath.Join(a.Root, "kubelet") }
func (a Agent) PodLogsDir() string       { return filepath.Join(a.Root, "pod-logs") }
func (a Agent) PodManifestsDir() string  { return filepath.Join(a.Root, "pod-manifests") }

// Names of the node's certificates under agent/certs.
const (
	ServerCABundle = "server-ca"
	ClientCABundle = "client-ca"
	KubeletClient  = "client-kubelet"
	KubeletServing = "serving-kubelet"
	KubeProxy      = "client-kube-proxy"
	Controller     = "client-k3ha-controller"
)
