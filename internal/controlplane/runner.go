package controlplane

import (
	"context"
	"errors"
)

// runner owns the lifetime of a component whose Run blocks until its context
// ends. The component gets a context of its own, not the caller's, so that
// shutdown happens in the order Stop is called, not all at once on a signal.
type runner struct {
	cancel context.CancelFunc
	detach func() bool
	done   chan struct{}
	err    error
}

// context returns the component's own context; call once, before run.
// Until run, the parent's end still cancels it, so that a signal during
// start-up aborts a start that would otherwise wait forever.
func (r *runner) context(parent context.Context) context.Context {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	r.cancel = cancel
	r.detach = context.AfterFunc(parent, cancel)
	return ctx
}

func (r *runner) run(ctx context.Context, fn func(context.Context) error) {
	r.detach()
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		r.err = fn(ctx)
	}()
}

// abort releases the context when start failed before run.
func (r *runner) abort() {
	if r.cancel != nil {
		r.cancel()
		r.cancel = nil
	}
}

// Done is closed when the component has stopped.
func (r *runner) Done() <-chan struct{} { return r.done }

// Err is why it stopped; valid after Done.
func (r *runner) Err() error { return r.err }

func (r *runner) stop() error {
	if r.cancel == nil || r.done == nil {
		r.abort()
		return nil
	}
	r.cancel()
	<-r.done
	if r.err != nil && !errors.Is(r.err, context.Canceled) {
		return r.err
	}
	return nil
}
