// Package kubeproxy runs the real kube-proxy (iptables mode) inside the
// k3ha process, through its options and Run path.
package kubeproxy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/kubernetes/cmd/kube-proxy/app"
)

// Config is what k3ha decides for kube-proxy.
type Config struct {
	NodeName    string
	Kubeconfig  string
	ClusterCIDR string
	ExtraArgs   []string // --kube-proxy-arg key=value, replacing k3ha's value for that key
}

// KubeProxy is the running kube-proxy.
type KubeProxy struct {
	cfg    Config
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func New(cfg Config) *KubeProxy { return &KubeProxy{cfg: cfg} }

func (k *KubeProxy) Name() string { return "kube-proxy" }

// args is kube-proxy's command line. Conntrack limits are left alone (0):
// they are machine-wide and not writable from a network namespace or a
// container, and the kernel's defaults serve small nodes well.
func (k *KubeProxy) args() []string {
	a := map[string]string{
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
	for _, o := range k.cfg.ExtraArgs {
		key, v, _ := strings.Cut(o, "=")
		a[strings.TrimLeft(key, "-")] = v
	}
	keys := make([]string, 0, len(a))
	for key := range a {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, key := range keys {
		out = append(out, fmt.Sprintf("--%s=%s", key, a[key]))
	}
	return out
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
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	k.cancel, k.done = cancel, make(chan struct{})
	go func() {
		defer close(k.done)
		k.err = opts.Run(runCtx)
	}()
	return nil
}

func (k *KubeProxy) Done() <-chan struct{} { return k.done }

func (k *KubeProxy) Err() error {
	if k.err == nil {
		return errors.New("kube-proxy exited")
	}
	return k.err
}

// Stop cancels kube-proxy. Its run loop does not return after a clean stop,
// so this waits only briefly; the rules it made stay, as for a restart.
func (k *KubeProxy) Stop() error {
	if k.cancel == nil {
		return nil
	}
	k.cancel()
	select {
	case <-k.done:
	case <-time.After(2 * time.Second):
	}
	return nil
}
