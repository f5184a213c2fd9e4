package server

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/k3ha/k3ha/internal/addons"
	"github.com/k3ha/k3ha/internal/component"
	"github.com/k3ha/k3ha/internal/events"
	"github.com/k3ha/k3ha/internal/helm"
	"github.com/k3ha/k3ha/internal/leader"
	"github.com/k3ha/k3ha/internal/nodehosts"
	"github.com/k3ha/k3ha/internal/packaged"
	"github.com/k3ha/k3ha/internal/servicelb"
	"github.com/k3ha/k3ha/internal/snapshot"
)

// leaseName is the lease of k3ha's own controllers: one server of several
// runs them at a time.
const leaseName = "k3ha"

// controllers runs k3ha's own cluster controllers on the lease holder: the
// deploy controller (Addons), the Helm controller, the cluster DNS's node
// hosts and servicelb.
type controllers struct {
	restConfig *rest.Config
	identity   string
	enabled    []string // packaged components deployed
	disabled   []string // packaged components removed
	registry   string   // --system-default-registry
	// charts fetches charts for the Helm controller; nil with
	// --disable-helm-controller.
	charts *helm.Fetcher
	component.Runner
}

func (c *controllers) Name() string { return "k3ha controllers" }

func (c *controllers) Start(ctx context.Context) error {
	client, err := kubernetes.NewForConfig(c.restConfig)
	if err != nil {
		return err
	}
	recorder, stopRecorder, err := events.NewRecorder(c.restConfig, "k3ha-deploy")
	if err != nil {
		return err
	}
	deploy, err := addons.NewController(c.restConfig, recorder, c.disabled)
	if err != nil {
		stopRecorder()
		return err
	}
	var charts *helm.Controller
	if c.charts != nil {
		dyn, err := dynamic.NewForConfig(c.restConfig)
		if err != nil {
			stopRecorder()
			return err
		}
		charts = &helm.Controller{Client: dyn, Releases: &helm.Releases{Config: c.restConfig}, Fetcher: c.charts, Recorder: recorder}
	}
	runCtx := c.Context(ctx)
	c.Run(runCtx, func(ctx context.Context) error {
		defer stopRecorder()
		return leader.Campaign(ctx, client, leaseName, c.identity, func(ctx context.Context) error {
			g, ctx := errgroup.WithContext(ctx)
			g.Go(func() error { return deploy.Run(ctx) })
			if charts != nil {
				g.Go(func() error { return charts.Run(ctx) })
			}
			if slices.Contains(c.enabled, "coredns") {
				g.Go(func() error { return (&nodehosts.Controller{Client: client}).Run(ctx) })
			}
			if slices.Contains(c.enabled, "servicelb") {
				lb := &servicelb.Controller{Client: client, Image: packaged.ImageByName("svclb").RefIn(c.registry)}
				g.Go(func() error { return lb.Run(ctx) })
			} else {
				g.Go(func() error {
					// Retried, never fatal: the API may be busy a moment.
					_ = wait.PollUntilContextCancel(ctx, 5*time.Second, true, func(ctx context.Context) (bool, error) {
						err := servicelb.RemoveAll(ctx, client)
						if err != nil {
							slog.Warn("servicelb is disabled but its forwarders could not be removed; retrying", "err", err)
						}
						return err == nil, nil
					})
					return nil
				})
			}
			return g.Wait()
		})
	})
	return nil
}

func (c *controllers) Stop() error { return c.StopWithin(0) }

// manifestScanner records this server's manifests as Addons.
type manifestScanner struct {
	scanner *addons.Scanner
	component.Runner
}

func newManifestScanner(cfg *rest.Config, dir, server string) (*manifestScanner, error) {
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &manifestScanner{scanner: &addons.Scanner{Dir: dir, Server: server, Client: client}}, nil
}

func (s *manifestScanner) Name() string { return "manifest scanner" }

func (s *manifestScanner) Start(ctx context.Context) error {
	s.Run(s.Context(ctx), func(ctx context.Context) error {
		s.scanner.Run(ctx)
		return nil
	})
	return nil
}

func (s *manifestScanner) Stop() error { return s.StopWithin(0) }

// snapshotScheduler takes the scheduled snapshots.
type snapshotScheduler struct {
	m    *snapshot.Manager
	stop func() // flushes the snapshots' Events
	component.Runner
}

func (s *snapshotScheduler) Name() string { return "snapshots" }

func (s *snapshotScheduler) Start(ctx context.Context) error {
	s.Run(s.Context(ctx), func(ctx context.Context) error {
		defer s.stop()
		return s.m.Run(ctx)
	})
	return nil
}

func (s *snapshotScheduler) Stop() error { return s.StopWithin(0) }
