// Package leader runs work only while this process holds a lease in
// kube-system, campaigning again whenever the lease is lost, so that one
// server of several acts and the others stand by.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Term is one period of leading: it runs until ctx ends (the lease is lost
// or the process stops). An error ends the term early: the lease is given
// up and the campaign goes on after a pause, as the kubelet restarts a
// crashed static pod, because a component that could not start while the
// datastore was away (the controller-manager's discovery, say) starts
// once it is back. Only an error marked Fatal ends the campaign.
type Term func(ctx context.Context) error

// Fatal marks a term's error that another term would meet again (a
// component's flags that do not parse): it ends the campaign with err.
func Fatal(err error) error { return fatalError{err} }

type fatalError struct{ error }

func (e fatalError) Unwrap() error { return e.error }

// retryAfterFailure spaces the terms that fail in a row.
var retryAfterFailure = wait.Backoff{Duration: time.Second, Factor: 2, Steps: 6, Cap: 30 * time.Second}

// Campaign leads the lease name whenever it can until ctx ends, running
// term while it leads. A term that returns gives up the lease. On shutdown
// the lease is released at once, so another server takes over without
// waiting for it to expire.
func Campaign(ctx context.Context, client kubernetes.Interface, name, identity string, term Term) error {
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, "kube-system", name,
		client.CoreV1(), client.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: identity + "_" + string(uuid.NewUUID())})
	if err != nil {
		return fmt.Errorf("%s lease: %w", name, err)
	}
	pause := retryAfterFailure
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
			Name:            name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(leadCtx context.Context) {
					started = true
					defer close(termDone)
					defer endTerm() // a term that ends by itself gives up the lease
					slog.Info("leading", "component", name)
					if err := term(leadCtx); err != nil && leadCtx.Err() == nil {
						termErr = err
					}
				},
				OnStoppedLeading: func() {},
			},
		})
		if err != nil {
			endTerm()
			return fmt.Errorf("%s leader election: %w", name, err)
		}
		le.Run(termCtx)
		endTerm()
		if started {
			<-termDone
		}
		var fatal fatalError
		switch {
		case errors.As(termErr, &fatal):
			return fatal.error
		case termErr != nil:
			retryIn := pause.Step()
			slog.Warn("failed while leading; gave up the lease, campaigning again", "component", name, "err", termErr, "retry-in", retryIn)
			select {
			case <-ctx.Done():
			case <-time.After(retryIn):
			}
		case ctx.Err() == nil:
			pause = retryAfterFailure
			slog.Warn("lost the lease; campaigning again", "component", name)
		}
	}
	return nil
}
