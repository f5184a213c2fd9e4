// Package component starts a process's parts in order and stops them in
// reverse, and notices when one of them dies on its own.
package component

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Component is one part of a k3ha process (datastore, apiserver, ...).
type Component interface {
	Name() string
	// Start returns once the component runs (or failed to start).
	Start(ctx context.Context) error
	// Stop ends the component and waits for it.
	Stop() error
}

// Readier components need time after Start before the next component may
// rely on them; the manager waits for WaitReady after starting them.
type Readier interface {
	WaitReady(ctx context.Context) error
}

// Watched components can end on their own; the manager reports it.
type Watched interface {
	Done() <-chan struct{}
	Err() error
}

// Manager keeps the started components.
type Manager struct {
	started []Component
	failed  chan error
	stopped chan struct{}
}

// NewManager returns an empty manager.
func NewManager() *Manager {
	return &Manager{failed: make(chan error, 1), stopped: make(chan struct{})}
}

// Start starts c, remembers it for Stop, and when c is a Readier waits
// until it is ready or a started component dies.
func (m *Manager) Start(ctx context.Context, c Component) error {
	begin := time.Now()
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("start %s: %w", c.Name(), err)
	}
	m.started = append(m.started, c)
	if w, ok := c.(Watched); ok {
		go m.watch(c.Name(), w)
	}
	if r, ok := c.(Readier); ok {
		if err := m.WaitOrFail(ctx, r.WaitReady); err != nil {
			return fmt.Errorf("%s not ready: %w", c.Name(), err)
		}
	}
	slog.Debug("component started", "component", c.Name(), "took", time.Since(begin).Round(time.Millisecond))
	return nil
}

// WaitOrFail runs a wait unless a started component dies first; then it
// returns that component's failure.
func (m *Manager) WaitOrFail(ctx context.Context, wait func(context.Context) error) error {
	waitCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case err := <-m.failed:
			select { // keep it for Failed
			case m.failed <- err:
			default:
			}
			cancel(err)
		case <-waitCtx.Done():
		}
	}()
	if err := wait(waitCtx); err != nil {
		if cause := context.Cause(waitCtx); cause != nil && !errors.Is(cause, context.Canceled) {
			return cause
		}
		return err
	}
	return nil
}

func (m *Manager) watch(name string, w Watched) {
	select {
	case <-m.stopped:
		return
	case <-w.Done():
	}
	select {
	case <-m.stopped: // it ended because Stop asked it to
		return
	default:
	}
	err := w.Err()
	if err == nil {
		err = errors.New("exited")
	}
	select {
	case m.failed <- fmt.Errorf("%s stopped unexpectedly: %w", name, err):
	default:
	}
}

// Failed yields the first component that ended without being asked to.
func (m *Manager) Failed() <-chan error { return m.failed }

// The shutdown budget of a k3ha process: one component may take
// StopEach, all together StopAll, so that a SIGTERM ends the process
// within ten seconds even when a component hangs (an apiserver whose etcd
// lost quorum waits on requests).
const (
	StopEach = 4 * time.Second
	StopAll  = 9 * time.Second
)

// Stop stops the components in reverse start order. A component that does not
// stop within perComponent is left behind with a log line so that the
// others, and the datastore last, still get their turn; all together get
// at most total.
func (m *Manager) Stop(perComponent, total time.Duration) {
	close(m.stopped)
	deadline := time.Now().Add(total)
	for i := len(m.started) - 1; i >= 0; i-- {
		c := m.started[i]
		begin := time.Now()
		wait := min(perComponent, time.Until(deadline))
		if wait <= 0 {
			slog.Warn("shutdown budget used up; not waiting for the remaining components", "budget", total, "left", i+1)
			break
		}
		done := make(chan error, 1)
		go func() { done <- c.Stop() }()
		select {
		case err := <-done:
			if err != nil {
				slog.Warn("component stopped with an error", "component", c.Name(), "err", err)
			} else {
				slog.Info("stopped", "component", c.Name(), "took", time.Since(begin).Round(time.Millisecond))
			}
		case <-time.After(wait):
			slog.Warn("component did not stop in time; going on without it", "component", c.Name(), "waited", wait)
		}
	}
	m.started = nil
}
