package component

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Runner owns the lifetime of a component whose work blocks until its
// context ends. The component gets a context of its own, not the caller's,
// so that shutdown happens in the order the manager stops components, not
// all at once on a signal. Embed it and call Context, then Run.
type Runner struct {
	cancel context.CancelFunc
	detach func() bool
	done   chan struct{}
	err    error
}

// Context returns the component's own context; call once, before Run. Until
// Run, the parent's end still cancels it, so that a signal during start-up
// aborts a start that would otherwise wait forever.
func (r *Runner) Context(parent context.Context) context.Context {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	r.cancel = cancel
	r.detach = context.AfterFunc(parent, cancel)
	return ctx
}

// Run starts fn in its own goroutine.
func (r *Runner) Run(ctx context.Context, fn func(context.Context) error) {
	if r.detach != nil {
		r.detach()
	}
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		r.err = fn(ctx)
	}()
}

// Abort releases the context when start failed before Run.
func (r *Runner) Abort() {
	if r.cancel != nil {
		r.cancel()
		r.cancel = nil
	}
}

// Done is closed when the component has stopped.
func (r *Runner) Done() <-chan struct{} { return r.done }

// Err is why it stopped; valid after Done.
func (r *Runner) Err() error {
	if r.err == nil {
		return errors.New("exited")
	}
	return r.err
}

// StopWithin cancels the component and waits for it, at most wait (0: no
// limit). Components that leave work behind on purpose (a kubelet leaves
// its pods) use a limit; the rest wait until done.
func (r *Runner) StopWithin(wait time.Duration) error {
	if r.cancel == nil || r.done == nil {
		r.Abort()
		return nil
	}
	select {
	case <-r.done:
		// It had ended on its own: whatever it said is a real failure.
		if r.err != nil && !errors.Is(r.err, context.Canceled) {
			return r.err
		}
		return nil
	default:
	}
	r.cancel()
	if wait > 0 {
		select {
		case <-r.done:
		case <-time.After(wait):
			return nil
		}
	} else {
		<-r.done
	}
	// Components stopped mid-start report why they could not finish (e.g.
	// kube-proxy's "timed out waiting for node to exist"); that is the
	// stop working, not a failure.
	if r.err != nil && !errors.Is(r.err, context.Canceled) {
		slog.Debug("component returned an error once stopped", "err", r.err)
	}
	return nil
}

// Periodic runs Tick every Every until stopped: for parts that only look
// at something now and then.
type Periodic struct {
	Label string
	Every time.Duration
	// Setup, if set, runs once at Start and returns what runs each tick
	// and what to release at the end.
	Setup func() (tick func(context.Context), release func(), err error)
	Tick  func(context.Context)
	Runner
}

func (p *Periodic) Name() string { return p.Label }

func (p *Periodic) Start(ctx context.Context) error {
	tick, release := p.Tick, func() {}
	if p.Setup != nil {
		var err error
		if tick, release, err = p.Setup(); err != nil {
			return err
		}
	}
	p.Run(p.Context(ctx), func(ctx context.Context) error {
		defer release()
		t := time.NewTicker(p.Every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				tick(ctx)
			}
		}
	})
	return nil
}

func (p *Periodic) Stop() error { return p.StopWithin(0) }
