package agent

import (
	"context"
	"time"

	"github.com/k3ha/k3ha/internal/agent/loadbalancer"
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
