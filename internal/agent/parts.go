package agent

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/k3ha/k3ha/internal/agent/loadbalancer"
	"github.com/k3ha/k3ha/internal/agent/podnet"
	"github.com/k3ha/k3ha/internal/component"
	"github.com/k3ha/k3ha/internal/supervisor"
)

// lbComponent runs the load balancer.
type lbComponent struct {
	lb *loadbalancer.LoadBalancer
	component.Runner
}

func (c *lbComponent) Name() string { return "load balancer" }

func (c *lbComponent) Start(ctx context.Context) error {
	c.Run(c.Context(ctx), func(ctx context.Context) error {
		c.lb.Run(ctx)
		return nil
	})
	return nil
}

func (c *lbComponent) Stop() error { return c.StopWithin(0) }

// serverList keeps the load balancer's server list current. It asks
// through the load balancer itself, so it keeps working when the server
// the agent first joined is gone.
type serverList struct {
	lb  *loadbalancer.LoadBalancer
	sup *supervisor.Client
	component.Runner
}

func (w *serverList) Name() string { return "server list" }

func (w *serverList) Start(ctx context.Context) error {
	w.Run(w.Context(ctx), func(ctx context.Context) error {
		w.lb.Watch(ctx, 15*time.Second, w.sup.APIServers)
		return nil
	})
	return nil
}

func (w *serverList) Stop() error { return w.StopWithin(0) }

// network configures pod networking once the node has its pod CIDR, then
// keeps the routes to the other nodes' pods.
type network struct {
	cfg    podnet.Config
	client kubernetes.Interface
	component.Runner
}

func (n *network) Name() string { return "pod network" }

// Start returns at once: the pod CIDR exists only after the kubelet has
// registered the node and the controller-manager has given it one. A
// failure is logged and leaves the node NotReady (the kubelet reports the
// missing network); it does not take the rest of the process down.
func (n *network) Start(ctx context.Context) error {
	n.Run(n.Context(ctx), func(ctx context.Context) error {
		if err := n.configure(ctx); err != nil && ctx.Err() == nil {
			slog.Error("pod network", "node", n.cfg.NodeName, "err", err)
		}
		<-ctx.Done()
		return nil
	})
	return nil
}

func (n *network) configure(ctx context.Context) error {
	cidr, err := podnet.WaitPodCIDR(ctx, n.client, n.cfg.NodeName)
	if err != nil {
		return fmt.Errorf("no pod CIDR: %w", err)
	}
	if err := podnet.Prepare(n.cfg, cidr); err != nil {
		slog.Error("pod network: preparing the node failed; pods may not reach other nodes", "err", err)
	}
	if err := podnet.WriteCNIConfig(n.cfg, cidr); err != nil {
		return fmt.Errorf("CNI config: %w", err)
	}
	slog.Info("pod network configured", "node", n.cfg.NodeName, "pod-cidr", cidr.String())
	return podnet.Routes(ctx, n.cfg, n.client)
}

func (n *network) Stop() error { return n.StopWithin(0) }
