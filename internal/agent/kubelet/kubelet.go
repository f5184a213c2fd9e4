// Package kubelet runs the real kubelet inside the k3ha process, configured
// through its own options and Run path (not its command, which would install
// a second signal handler and its own logging).
package kubelet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/kubernetes/cmd/kubelet/app"
	"k8s.io/kubernetes/cmd/kubelet/app/options"
	kubeletconfigvalidation "k8s.io/kubernetes/pkg/kubelet/apis/config/validation"

	"github.com/k3ha/k3ha/internal/component"
)

// Config is what k3ha decides for its kubelet.
type Config struct {
	NodeName       string
	NodeIP         string
	RootDir        string // kubelet's own state
	CertDir        string
	PodLogsDir     string
	StaticPodDir   string
	Kubeconfig     string // client certificate of system:node:<name>, through the agent's load balancer
	ClientCAFile   string // the kubelet accepts API clients (the apiserver) signed by this
	ServingCert    string
	ServingKey     string
	RuntimeEnpoint string // CRI socket, unix://...
	ClusterDNS     string
	ClusterDomain  string
	ResolvConf     string // upstream resolvers of pods with dnsPolicy Default
	CgroupRoot     string // a cgroup of its own per node, so several nodes can share a machine
	NodeLabels     map[string]string
	ExtraArgs      []string // --kubelet-arg key=value, applied last
	// ExternalAddresses: k3ha, not the kubelet, sets the Node's addresses
	// (it has an ExternalIP, which the kubelet alone cannot publish).
	ExternalAddresses bool
}

// Kubelet is the running kubelet.
type Kubelet struct {
	cfg Config
	component.Runner
}

// New prepares the kubelet; nothing runs until Start.
func New(cfg Config) *Kubelet { return &Kubelet{cfg: cfg} }

func (k *Kubelet) Name() string { return "kubelet" }

// Start builds the kubelet's server options and runs it until Stop.
func (k *Kubelet) Start(ctx context.Context) error {
	for _, d := range []string{k.cfg.RootDir, k.cfg.CertDir, k.cfg.PodLogsDir, k.cfg.StaticPodDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("kubelet dir: %w", err)
		}
	}
	if err := ensureCgroupRoot(k.cfg.CgroupRoot); err != nil {
		return err
	}
	server, err := k.server()
	if err != nil {
		return err
	}
	deps, err := app.UnsecuredDependencies(ctx, server, utilfeature.DefaultFeatureGate)
	if err != nil {
		return fmt.Errorf("kubelet dependencies: %w", err)
	}
	k.Run(k.Context(ctx), func(ctx context.Context) error {
		return app.Run(ctx, server, deps, utilfeature.DefaultFeatureGate)
	})
	return nil
}

// server is the kubelet's configuration: k3ha's choices, then the user's
// --kubelet-arg values through the kubelet's own flags.
func (k *Kubelet) server() (*options.KubeletServer, error) {
	c := k.cfg
	flags := options.NewKubeletFlags()
	kc, err := options.NewKubeletConfiguration()
	if err != nil {
		return nil, fmt.Errorf("kubelet configuration: %w", err)
	}
	flags.KubeConfig = c.Kubeconfig
	flags.HostnameOverride = c.NodeName
	flags.NodeIP = c.NodeIP
	if c.ExternalAddresses {
		// The kubelet then leaves the Node's addresses to k3ha (and taints
		// the Node until they are set).
		flags.CloudProvider = "external"
	}
	flags.CertDirectory = c.CertDir
	flags.RootDirectory = c.RootDir
	flags.NodeLabels = c.NodeLabels

	kc.ContainerRuntimeEndpoint = c.RuntimeEnpoint
	kc.Address = c.NodeIP
	kc.ReadOnlyPort = 0
	kc.HealthzBindAddress = "127.0.0.1"
	kc.StaticPodPath = c.StaticPodDir
	kc.PodLogsDir = c.PodLogsDir
	kc.VolumePluginDir = filepath.Join(c.RootDir, "volumeplugins")
	kc.TLSCertFile, kc.TLSPrivateKeyFile = c.ServingCert, c.ServingKey
	kc.Authentication.X509.ClientCAFile = c.ClientCAFile
	kc.Authentication.Anonymous.Enabled = false
	kc.Authentication.Webhook.Enabled = true
	kc.Authorization.Mode = "Webhook"
	kc.ClusterDNS = []string{c.ClusterDNS}
	kc.ClusterDomain = c.ClusterDomain
	kc.ResolverConfig = c.ResolvConf
	kc.CgroupDriver = "cgroupfs"
	kc.CgroupRoot = c.CgroupRoot
	// Hosts on cgroup v1 (as many small machines still are) are supported.
	kc.FailCgroupV1 = false
	kc.FailSwapOn = false
	kc.SerializeImagePulls = false
	kc.RuntimeRequestTimeout = metav1.Duration{Duration: 15 * time.Minute}
	kc.EvictionHard = map[string]string{"memory.available": "5%", "nodefs.available": "5%", "imagefs.available": "5%"}

	if len(c.ExtraArgs) > 0 {
		fs := pflag.NewFlagSet("kubelet", pflag.ContinueOnError)
		flags.AddFlags(fs)
		options.AddKubeletConfigFlags(fs, kc)
		args := make([]string, 0, len(c.ExtraArgs))
		for _, a := range c.ExtraArgs {
			args = append(args, "--"+strings.TrimLeft(a, "-"))
		}
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("--kubelet-arg: %w", err)
		}
	}
	if err := options.ValidateKubeletFlags(flags); err != nil {
		return nil, fmt.Errorf("kubelet flags: %w", err)
	}
	if err := kubeletconfigvalidation.ValidateKubeletConfiguration(kc, utilfeature.DefaultFeatureGate); err != nil {
		return nil, fmt.Errorf("kubelet configuration: %w", err)
	}
	return &options.KubeletServer{KubeletFlags: *flags, KubeletConfiguration: *kc}, nil
}

// Stop cancels the kubelet; it leaves the pods running, as a restarted
// kubelet takes them over.
func (k *Kubelet) Stop() error { return k.StopWithin(5 * time.Second) }
