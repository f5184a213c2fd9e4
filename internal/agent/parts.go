package agent

import (
	"context"
	"log/slog"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/k3ha/k3ha/internal/agent/loadbalancer"
	"github.com/k3ha/k3ha/internal/agent/podnet"
	"github.com/k3ha/k3ha/internal/supervisor"
	"github.com/k3ha/k3ha/internal/token"
)

// lbComponent runs the load balancer and keeps its server list current.
type lbComponent struct {
	lb     *loadbalancer.LoadBalancer
	token  token.Token
	cancel context.CancelFunc
	done   chan struct{}
}

func (c *lbComponent) Name() string { return "load balancer" }

func (c *lbComponent) Start(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel, c.done = cancel, make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		// The list is refreshed through the load balancer itself, so it
		// keeps working when the server the agent first joined is gone.
		sup, err := supervisor.Dial(runCtx, c.lb.URL(), c.token, token.RoleNode)
		if err != nil {
			return
		}
		c.lb.Watch(runCtx, 15*time.Second, sup.APIServers)
	}()
	go func() {
		defer close(c.done)
		c.lb.Run(runCtx)
		<-watched
	}()
	return nil
}

func (c *lbComponent) Stop() error {
	c.cancel()
	<-c.done
	return nil
}

// network configures pod networking once the node has its pod CIDR, then
// keeps the routes to the other nodes' pods.
type network struct {
	cfg    podnet.Config
	client kubernetes.Interface
	cancel context.CancelFunc
	done   chan struct{}
}

func (n *network) Name() string { return "pod network" }

// Start returns at once: the pod CIDR exists only after the kubelet has
// registered the node and the controller-manager has given it one.
func (n *network) Start(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel, n.done = cancel, make(chan struct{})
	go func() {
		defer close(n.done)
		cidr, err := podnet.WaitPodCIDR(runCtx, n.client, n.cfg.NodeName)
		if err != nil {
			if runCtx.Err() == nil {
				slog.Error("pod network: no pod CIDR", "err", err)
			}
			return
		}
		if err := podnet.Prepare(n.cfg, cidr); err != nil {
			slog.Error("pod network: prepare", "err", err)
		}
		if err := podnet.WriteCNIConfig(n.cfg, cidr); err != nil {
			slog.Error("pod network: CNI config", "err", err)
			return
		}
		slog.Info("pod network configured", "node", n.cfg.NodeName, "pod-cidr", cidr.String())
		if err := podnet.Routes(runCtx, n.cfg, n.client); err != nil && runCtx.Err() == nil {
			slog.Error("pod network: routes", "err", err)
		}
	}()
	return nil
}

func (n *network) Stop() error {
	n.cancel()
	<-n.done
	return nil
}
