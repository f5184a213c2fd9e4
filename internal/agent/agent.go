// Package agent runs a k3ha node: a local load balancer to the servers, the
// node's certificates, containerd, the kubelet, pod networking and
// kube-proxy. `k3ha agent` runs it alone; `k3ha server` runs it in-process
// unless --disable-agent.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/k3ha/k3ha/internal/agent/containerd"
	"github.com/k3ha/k3ha/internal/agent/flannel"
	"github.com/k3ha/k3ha/internal/agent/images"
	"github.com/k3ha/k3ha/internal/agent/kubelet"
	"github.com/k3ha/k3ha/internal/agent/kubeproxy"
	"github.com/k3ha/k3ha/internal/agent/loadbalancer"
	"github.com/k3ha/k3ha/internal/agent/netpol"
	"github.com/k3ha/k3ha/internal/agent/nodeaddr"
	"github.com/k3ha/k3ha/internal/agent/podnet"
	"github.com/k3ha/k3ha/internal/agent/registries"
	"github.com/k3ha/k3ha/internal/component"
	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/kubeconfig"
	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/packaged"
	"github.com/k3ha/k3ha/internal/payload"
	"github.com/k3ha/k3ha/internal/pki"
	"github.com/k3ha/k3ha/internal/supervisor"
	"github.com/k3ha/k3ha/internal/token"
)

// Options say which node to run and which cluster to join.
type Options struct {
	DataDir   string
	ServerURL string
	Token     token.Token
	NodeName  string
	NodeIP    net.IP
	Node      config.Node
}

// Start brings the node up, adding each part to mgr (which stops them in
// reverse). It returns once the kubelet runs; the node turns Ready when the
// kubelet has registered it and pod networking is configured.
func Start(ctx context.Context, mgr *component.Manager, o Options) error {
	l := layout.NewAgent(o.DataDir)
	if err := os.MkdirAll(l.Root, 0o700); err != nil {
		return fmt.Errorf("agent dir: %w", err)
	}
	// A wrong registries.yaml stops the node before it joins.
	reg, err := registries.Load(o.Node.PrivateRegistry)
	if err != nil {
		return err
	}
	// Everything goes through the load balancer, even the first contact: a
	// restarted agent then reaches the cluster from the server list it kept,
	// though the server it first joined may be gone.
	lb, err := startLoadBalancer(ctx, mgr, l, o)
	if err != nil {
		return err
	}
	sup, err := supervisor.Dial(ctx, lb.URL(), o.Token, token.RoleNode)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if err := mgr.Start(ctx, &serverList{lb: lb, sup: sup}); err != nil {
		return err
	}
	cluster, err := sup.Config(ctx)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if err := fetchCertificates(ctx, l, o, sup, lb.URL()); err != nil {
		return err
	}
	slog.Info("node certificates ready", "node", o.NodeName, "dir", l.CertDir())

	pl, err := unpackPayload(o.DataDir)
	if err != nil {
		return err
	}
	endpoint := o.Node.ContainerRuntimeEndpoint
	if endpoint == "" {
		paths := containerd.Paths{
			Root: l.ContainerdRoot(), State: l.ContainerdState(), CNIConfDir: l.CNIConfDir(), RuncRoot: l.RuncRoot(),
			// Without a payload (a plain `go build`), the distribution's plugins.
			CNIBinDirs: []string{"/usr/lib/cni", "/opt/cni/bin"},
		}
		if pl != nil {
			// runc, the shim and the CNI plugins k3ha carries; plugins an
			// admin installs for another pod network in the usual place.
			paths.BinDir, paths.CNIBinDirs = pl.Bin(), []string{pl.Bin(), "/opt/cni/bin"}
		}
		if err := reg.WriteHosts(l.RegistryHostsDir()); err != nil {
			return fmt.Errorf("registry hosts: %w", err)
		}
		ctr := containerd.New(containerd.Settings{Paths: paths, SandboxImage: images.PauseRef,
			RegistryHostsDir: l.RegistryHostsDir(), RegistryAuths: reg.Auths()}, l.ContainerdLog())
		if err := mgr.Start(ctx, ctr); err != nil {
			return err
		}
		if err := importImages(ctx, ctr, l, pl); err != nil {
			return err
		}
		endpoint = ctr.Endpoint()
	}

	externalIP := net.ParseIP(o.Node.NodeExternalIP) // validated with the flags
	labels, err := parseLabels(o.Node.NodeLabels)
	if err != nil {
		return err
	}
	resolv, err := resolvConf(o.Node.ResolvConf, l.EtcDir())
	if err != nil {
		return err
	}
	kl := kubelet.New(kubelet.Config{
		NodeName: o.NodeName, NodeIP: o.NodeIP.String(),
		RootDir: l.KubeletDir(), CertDir: l.CertDir(), PodLogsDir: l.PodLogsDir(), StaticPodDir: l.PodManifestsDir(),
		Kubeconfig: l.Kubeconfig("kubelet"), ClientCAFile: l.Cert(layout.ClientCABundle),
		ServingCert: l.Cert(layout.KubeletServing), ServingKey: l.Key(layout.KubeletServing),
		RuntimeEnpoint: endpoint, ClusterDNS: cluster.ClusterDNS, ClusterDomain: cluster.ClusterDomain, ResolvConf: resolv,
		CgroupRoot: "/k3ha/" + o.NodeName, NodeLabels: labels, ExtraArgs: o.Node.KubeletArgs,
		ExternalAddresses: externalIP != nil,
	})
	if err := mgr.Start(ctx, kl); err != nil {
		return err
	}
	slog.Info("kubelet started", "node", o.NodeName, "runtime", endpoint)
	// k3ha's own node-side controllers (node addresses, network policy).
	controllerClient, err := clientFor(l.Kubeconfig("k3ha-controller"))
	if err != nil {
		return err
	}
	if externalIP != nil {
		if err := mgr.Start(ctx, nodeaddr.New(o.NodeName, nodeaddr.Wanted(o.NodeName, o.NodeIP, externalIP), controllerClient)); err != nil {
			return err
		}
	}

	// The kubelet's own identity may read only its own Node; kube-proxy's
	// (system:node-proxier) may watch all of them, which routing needs.
	nodeClient, err := clientFor(l.Kubeconfig("kube-proxy"))
	if err != nil {
		return err
	}
	podCluster, err := podnet.ClusterCIDRv4(cluster.ClusterCIDR)
	if err != nil {
		return err
	}
	if err := mgr.Start(ctx, &network{cfg: podnet.Config{NodeName: o.NodeName, NodeIP: o.NodeIP,
		ClusterCIDR: cluster.ClusterCIDR, CNIConfDir: l.CNIConfDir(), IPAMDataDir: l.IPAMDir()},
		flannel: flannel.Config{NodeName: o.NodeName, NodeIP: o.NodeIP, Iface: o.Node.FlannelIface, ClusterCIDR: podCluster,
			ExternalIP: flannelEndpoint(o.NodeName, externalIP, cluster.FlannelExternalIP),
			Backend:    cluster.Flannel(), Kubeconfig: l.Kubeconfig("k3ha-controller"), Dir: l.FlannelDir()},
		client: nodeClient}); err != nil {
		return err
	}
	if err := startNetworkPolicy(ctx, mgr, o.NodeName, controllerClient, cluster.DisableNetworkPolicy); err != nil {
		return err
	}
	if !cluster.DisableKubeProxy {
		if err := mgr.Start(ctx, kubeproxy.New(kubeproxy.Config{NodeName: o.NodeName, Kubeconfig: l.Kubeconfig("kube-proxy"),
			ClusterCIDR: cluster.ClusterCIDR, ExtraArgs: o.Node.KubeProxyArgs, Client: nodeClient, NodeIP: o.NodeIP})); err != nil {
			return err
		}
	}
	if pl != nil {
		pl.RemoveOthers()
	}
	return nil
}

// flannelEndpoint is the address other nodes send this node's pod traffic
// to, if not the node IP: with --flannel-external-ip, the node's external
// IP. A node without one is still reached, at its node IP, as in K3s.
func flannelEndpoint(node string, externalIP net.IP, useExternal bool) net.IP {
	if !useExternal {
		return nil
	}
	if externalIP == nil {
		slog.Warn("--flannel-external-ip: this node has no --node-external-ip; other nodes send its pods' traffic to its node IP", "node", node)
	}
	return externalIP
}

// startNetworkPolicy enforces NetworkPolicy on this node's pods, or, with
// --disable-network-policy, removes what an earlier run enforced.
func startNetworkPolicy(ctx context.Context, mgr *component.Manager, node string, client kubernetes.Interface, disabled bool) error {
	if disabled {
		slog.Info("--disable-network-policy: NetworkPolicy objects are not enforced on this node", "node", node)
		return netpol.RemoveRules()
	}
	return mgr.Start(ctx, netpol.New(node, client))
}

// startLoadBalancer starts the local port every client on this node uses
// to reach the API, spread over all servers: --server at first, with the
// list kept from earlier runs; the list is refreshed from the cluster.
func startLoadBalancer(ctx context.Context, mgr *component.Manager, l layout.Agent, o Options) (*loadbalancer.LoadBalancer, error) {
	u, err := url.Parse(o.ServerURL)
	if err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	lb, err := loadbalancer.New(o.Node.LBServerPort, l.LBStateFile(), []string{u.Host})
	if err != nil {
		return nil, fmt.Errorf("agent load balancer: %w", err)
	}
	if err := mgr.Start(ctx, &lbComponent{lb: lb}); err != nil {
		return nil, err
	}
	slog.Info("load balancer ready", "address", lb.Addr(), "servers", strings.Join(lb.Servers(), ","))
	return lb, nil
}

// fetchCertificates asks the server for this node's certificates, proving
// with the node password that this host owns the node name, and writes
// them with the kubeconfigs of the kubelet and kube-proxy.
func fetchCertificates(ctx context.Context, l layout.Agent, o Options, sup *supervisor.Client, api string) error {
	password, err := nodePassword(l.NodePasswordFile())
	if err != nil {
		return err
	}
	certs, err := sup.NodeCerts(ctx, supervisor.NodeCertsRequest{NodeName: o.NodeName, NodeIP: o.NodeIP.String(), Password: password})
	if err != nil {
		return fmt.Errorf("agent: node certificates: %w", err)
	}
	files := []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{l.Cert(layout.ServerCABundle), certs.ServerCA, 0o644},
		{l.Cert(layout.ClientCABundle), certs.ClientCA, 0o644},
		{l.Key(layout.KubeletClient), certs.KubeletClientKey, 0o600},
		{l.Cert(layout.KubeletClient), certs.KubeletClientCert, 0o644},
		{l.Key(layout.KubeletServing), certs.KubeletServingKey, 0o600},
		{l.Cert(layout.KubeletServing), certs.KubeletServingCert, 0o644},
		{l.Key(layout.KubeProxy), certs.KubeProxyKey, 0o600},
		{l.Cert(layout.KubeProxy), certs.KubeProxyCert, 0o644},
		{l.Key(layout.Controller), certs.ControllerKey, 0o600},
		{l.Cert(layout.Controller), certs.ControllerCert, 0o644},
	}
	for _, f := range files {
		if err := pki.WriteFileAtomic(f.path, f.data, f.mode); err != nil {
			return err
		}
	}
	for name, cert := range map[string]string{"kubelet": layout.KubeletClient, "kube-proxy": layout.KubeProxy, "k3ha-controller": layout.Controller} {
		kc := kubeconfig.ClientCert{Server: api, CAFile: l.Cert(layout.ServerCABundle), CertFile: l.Cert(cert), KeyFile: l.Key(cert)}
		if err := kc.Write(l.Kubeconfig(name), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// nodePassword is this host's secret for its node name, made once.
func nodePassword(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(data)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("node password: %w", err)
	}
	secret, err := token.GenerateSecret()
	if err != nil {
		return "", err
	}
	if err := pki.WriteFileAtomic(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("node password: %w", err)
	}
	return secret, nil
}

// importImages loads the pause image, the packaged components' images
// and the air-gap tarballs.
func importImages(ctx context.Context, ctr *containerd.Containerd, l layout.Agent, pl *payload.Dir) error {
	c, err := ctr.Client()
	if err != nil {
		return fmt.Errorf("containerd client: %w", err)
	}
	defer c.Close()
	if err := images.EnsurePause(ctx, c, runtime.GOARCH); err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	if pl != nil {
		for _, img := range packaged.Images {
			if err := images.EnsurePacked(ctx, c, pl.File("images/"+img.Name+".tar")); err != nil {
				return fmt.Errorf("packaged image %s: %w", img.Name, err)
			}
		}
	}
	if err := os.MkdirAll(l.ImagesDir(), 0o755); err != nil {
		return err
	}
	begin := time.Now()
	n, err := images.ImportDir(ctx, c, l.ImagesDir())
	if err != nil {
		return err
	}
	if n > 0 {
		slog.Info("images imported", "dir", l.ImagesDir(), "files", n, "took", time.Since(begin).Round(time.Millisecond))
	}
	return nil
}

// unpackPayload unpacks what this k3ha binary carries into the data dir;
// nil when it carries nothing (a plain `go build`): the shim is then looked
// for beside k3ha and no packaged images are imported.
func unpackPayload(dataDir string) (*payload.Dir, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own binary: %w", err)
	}
	p, err := payload.Open(self)
	if errors.Is(err, payload.ErrNone) {
		slog.Warn("this k3ha binary carries no payload: the packaged components' images are missing and the runc shim must be on PATH; build with `make build`")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	d, err := p.Unpack(dataDir)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func parseLabels(list []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--node-label %q must look like key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

func clientFor(kubeconfigPath string) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfigPath)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfigPath, err)
	}
	return kubernetes.NewForConfig(cfg)
}
