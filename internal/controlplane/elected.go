package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/component-base/configz"

	"github.com/k3ha/k3ha/internal/component"
)

// term builds a fresh instance of a component and returns its blocking Run.
type term func(ctx context.Context) (run func(context.Context) error, err error)

// elected runs a component only while this server holds its lease. k3ha runs
// the election itself, rather than the component's own, because the
// upstream scheduler and controller-manager exit the whole process when they
// stop leading; here a shutdown releases the lease at once (another server
// takes over without waiting for it to expire) and a lost lease just means
// campaigning again.
type elected struct {
	name       string // lease name in kube-system, as upstream uses
	configz    string // the component's configz name, registered anew each term
	kubeconfig string
	identity   string
	newTerm    term
	component.Runner
}

func (e *elected) Name() string { return e.name }

func (e *elected) Start(ctx context.Context) error {
	restConfig, err := clientcmd.BuildConfigFromFlags("", e.kubeconfig)
	if err != nil {
		return fmt.Errorf("%s kubeconfig: %w", e.name, err)
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("%s client: %w", e.name, err)
	}
	if e.identity == "" {
		host, _ := os.Hostname()
		e.identity = host
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, "kube-system", e.name,
		client.CoreV1(), client.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: e.identity + "_" + string(uuid.NewUUID())})
	if err != nil {
		return fmt.Errorf("%s lease: %w", e.name, err)
	}
	runCtx := e.Context(ctx)
	e.Run(runCtx, func(ctx context.Context) error { return e.campaign(ctx, lock) })
	return nil
}

// campaign leads whenever it can until ctx ends; it fails only if the
// component cannot be built at all.
func (e *elected) campaign(ctx context.Context, lock resourcelock.Interface) error {
	for ctx.Err() == nil {
		termCtx, endTerm := context.WithCancel(ctx)
		var termErr error
		termDone := make(chan struct{})
		started := false
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   15 * time.Second,
			RenewDeadline:   10 * time.Second,
			RetryPeriod:     2 * time.Second,
			ReleaseOnCancel: true,
			Name:            e.name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(leadCtx context.Context) {
					started = true
					defer close(termDone)
					defer endTerm() // a term that ends by itself gives up the lease
					slog.Info("leading", "component", e.name)
					configz.Delete(e.configz)
					run, err := e.newTerm(leadCtx)
					if err != nil {
						termErr = err
						return
					}
					if err := run(leadCtx); err != nil && leadCtx.Err() == nil {
						termErr = err
					}
				},
				OnStoppedLeading: func() {},
			},
		})
		if err != nil {
			endTerm()
			return fmt.Errorf("%s leader election: %w", e.name, err)
		}
		le.Run(termCtx)
		endTerm()
		if started {
			<-termDone
		}
		if termErr != nil {
			return termErr
		}
		if ctx.Err() == nil {
			slog.Warn("lost the lease; campaigning again", "component", e.name)
		}
	}
	return nil
}

func (e *elected) Stop() error {
	err := e.StopWithin(0)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
