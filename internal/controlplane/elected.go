package controlplane

import (
	"context"
	"errors"
	"fmt"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/component-base/configz"

	"github.com/k3ha/k3ha/internal/component"
	"github.com/k3ha/k3ha/internal/leader"
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
	runCtx := e.Context(ctx)
	e.Run(runCtx, func(ctx context.Context) error {
		return leader.Campaign(ctx, client, e.name, e.identity, func(leadCtx context.Context) error {
			configz.Delete(e.configz)
			run, err := e.newTerm(leadCtx)
			if err != nil {
				return leader.Fatal(err) // its flags or config: every term would fail the same way
			}
			return run(leadCtx)
		})
	})
	return nil
}

func (e *elected) Stop() error {
	err := e.StopWithin(0)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
