// Package kubeproxy runs the real kube-proxy (iptables mode) inside the
// k3ha process, through its options and Run path.
package kubeproxy

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubernetes/cmd/kube-proxy/app"

	"github.com/k3ha/k3ha/internal/agent/nodewait"
	"github.com/k3ha/k3ha/internal/component"
	"github.com/k3ha/k3ha/internal/flagargs"
)

// Config is what k3ha decides for kube-proxy.
type Config struct {
	NodeName    string
	Kubeconfig  string
	ClusterCIDR string
	ExtraArgs   []string // --kube-proxy-arg key=value, replacing k3ha's value for that key
	// Client reads this node's Node object before kube-proxy starts.
	Client kubernetes.Interface
	// NodeIP is the address the kubelet registers; kube-proxy starts once
	// the Node shows it.
	NodeIP net.IP
}

// KubeProxy is the running kube-proxy.
type KubeProxy struct {
	cfg Config
	component.Runner
}

func New(cfg Config) *KubeProxy { return &KubeProxy{cfg: cfg} }

func (k *KubeProxy) Name() string { return "kube-proxy" }

// args is kube-proxy's command line. Conntrack limits are left alone (0):
// they are machine-wide and not writable from a network namespace or a
// container, and the kernel's defaults serve small nodes well.
func (k *KubeProxy) args() []string {
	a := flagargs.Args{
		"kubeconfig":                        k.cfg.Kubeconfig,
		"hostname-override":                 k.cfg.NodeName,
		"cluster-cidr":                      k.cfg.ClusterCIDR,
		"proxy-mode":                        "iptables",
		"conntrack-max-per-core":            "0",
		"conntrack-tcp-timeout-established": "0",
		"conntrack-tcp-timeout-close-wait":  "0",
		"healthz-bind-address":              "127.0.0.1:10256",
		"metrics-bind-address":              "127.0.0.1:10249",
	}
	a.Merge(k.cfg.ExtraArgs)
	return a.List()
}

// Start configures kube-proxy and runs it until Stop.
func (k *KubeProxy) Start(ctx context.Context) error {
	opts := app.NewOptions()
	fs := pflag.NewFlagSet("kube-proxy", pflag.ContinueOnError)
	opts.AddFlags(fs)
	if err := fs.Parse(k.args()); err != nil {
		return fmt.Errorf("kube-proxy flags (check --kube-proxy-arg): %w", err)
	}
	if err := opts.Complete(fs); err != nil {
		return fmt.Errorf("kube-proxy: %w", err)
	}
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("kube-proxy: %w", err)
	}
	k.Run(k.Context(ctx), func(ctx context.Context) error {
		if err := k.waitForNode(ctx); err != nil {
			return err
		}
		return opts.Run(ctx)
	})
	return nil
}

// waitForNode returns once the kubelet has registered the Node with this
// node's IP. kube-proxy remembers the node's IPs when it starts and calls
// os.Exit when they later differ from that, which in k3ha would end the
// whole process: started before the Node exists it remembers none, and
// started on a node whose address changed it remembers the old one until
// the kubelet updates the Node.
func (k *KubeProxy) waitForNode(ctx context.Context) error {
	_, err := nodewait.Until(ctx, k.cfg.Client, k.cfg.NodeName, "the node to be registered with its IP before kube-proxy starts",
		func(node *corev1.Node) (bool, error) { return hasAddress(node, k.cfg.NodeIP), nil })
	return err
}

// hasAddress reports whether the Node lists ip (any address when ip is nil).
func hasAddress(node *corev1.Node, ip net.IP) bool {
	for _, a := range node.Status.Addresses {
		if ip == nil || net.ParseIP(a.Address).Equal(ip) {
			return true
		}
	}
	return false
}

// Stop cancels kube-proxy. Its run loop does not return after a clean stop,
// so this waits only briefly; the rules it made stay, as for a restart.
func (k *KubeProxy) Stop() error { return k.StopWithin(2 * time.Second) }
