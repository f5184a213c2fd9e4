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

// Start starts c and remembers it for Stop.
func (m *Manager) Start(ctx context.Context, c Component) error {
	begin := time.Now()
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("start %s: %w", c.Name(), err)
	}
	m.started = append(m.started, c)
	slog.Debug("component started", "component", c.Name(), "took", time.Since(begin).Round(time.Millisecond))
	if w, ok := c.(Watched); ok {
		go m.watch(c.Name(), w)
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
