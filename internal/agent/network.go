package agent

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/k3ha/k3ha/internal/agent/flannel"
	"github.com/k3ha/k3ha/internal/agent/podnet"
	"github.com/k3ha/k3ha/internal/component"
	"github.com/k3ha/k3ha/internal/config"
)

// network puts the node's pods on the network once the node has its pod
// CIDR: masquerading and the CNI config here, flannel for the traffic to
// the other nodes' pods.
type network struct {
	cfg     podnet.Config
	flannel flannel.Config
	client  kubernetes.Interface
	component.Runner
}

func (n *network) Name() string { return "pod network" }

// Start returns at once: the pod CIDR exists only after the kubelet has
// registered the node and the controller-manager has given it one. A
// failure is logged and leaves the node NotReady (the kubelet reports the
// missing network); it does not take the rest of the process down.
func (n *network) Start(ctx context.Context) error {
	n.Run(n.Context(ctx), func(ctx context.Context) error {
		if err := n.run(ctx); err != nil && ctx.Err() == nil {
			slog.Error("pod network", "node", n.cfg.NodeName, "err", err)
		}
		<-ctx.Done()
		return nil
	})
	return nil
}

func (n *network) run(ctx context.Context) error {
	if n.flannel.Backend == config.FlannelNone {
		slog.Info("--flannel-backend=none: k3ha sets up no pod network; the node stays NotReady until a CNI plugin is installed",
			"cni-conf-dir", n.cfg.CNIConfDir)
		return nil
	}
	cidr, err := podnet.WaitPodCIDR(ctx, n.client, n.cfg.NodeName)
	if err != nil {
		return fmt.Errorf("no pod CIDR: %w", err)
	}
	if err := podnet.Prepare(n.cfg, cidr); err != nil {
		slog.Error("pod network: preparing the node failed; pods may not reach other nodes", "err", err)
	}
	fn, err := registerFlannel(ctx, n.flannel)
	if err != nil {
		return err
	}
	n.cfg.MTU = fn.MTU()
	if err := podnet.WriteCNIConfig(n.cfg, cidr); err != nil {
		return fmt.Errorf("CNI config: %w", err)
	}
	slog.Info("pod network configured", "node", n.cfg.NodeName, "pod-cidr", cidr.String(), "backend", n.flannel.Backend)
	fn.Run(ctx)
	return nil
}

// registerFlannel retries: most failures are only early (the rolebindings
// not yet applied, the API briefly away); one the user must fix (a wrong
// --flannel-iface) is logged at each attempt.
func registerFlannel(ctx context.Context, cfg flannel.Config) (*flannel.Network, error) {
	wait := time.Second
	for {
		attempt, cancel := context.WithCancel(ctx)
		fn, err := flannel.Register(attempt, cfg)
		if err == nil {
			context.AfterFunc(ctx, cancel)
			return fn, nil
		}
		cancel()
		if ctx.Err() != nil {
			return nil, err
		}
		slog.Warn("flannel: retrying", "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

func (n *network) Stop() error { return n.StopWithin(0) }
