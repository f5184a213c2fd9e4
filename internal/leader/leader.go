// Package leader runs work only while this process holds a lease in
// kube-system, campaigning again whenever the lease is lost, so that one
// server of several acts and the others stand by.
package leader

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Term is one period of leading: it runs until ctx ends (the lease is lost
// or the process stops) and returns an error only when it cannot run at all.
type Term func(ctx context.Context) error

// Campaign leads the lease name whenever it can until ctx ends, running
// term while it leads. A term that returns gives up the lease; a term's
// error ends the campaign with that error. On shutdown the lease is
// released at once, so another server takes over without waiting for it
// to expire.
func Campaign(ctx context.Context, client kubernetes.Interface, name, identity string, term Term) error {
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, "kube-system", name,
		client.CoreV1(), client.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: identity + "_" + string(uuid.NewUUID())})
	if err != nil {
		return fmt.Errorf("%s lease: %w", name, err)
	}
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
		if termErr != nil {
			return termErr
		}
		if ctx.Err() == nil {
			slog.Warn("lost the lease; campaigning again", "component", name)
		}
	}
	return nil
}
