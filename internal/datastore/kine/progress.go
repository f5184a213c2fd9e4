package kine

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/k3s-io/kine/pkg/server"
)

// polledRevision is kine's backend with one answer changed: its current
// revision is at least the newest one its poll loop has handed to the
// watchers.
//
// Kine (v0.17.5) keeps its current revision in one counter that this
// server's writes and its poll loop both move by compare-and-swap. When a
// write of this server lands while the loop is behind, and the loop then
// passes it in one step because another server wrote right after, neither
// moves the counter again until this server's next write. Watch progress
// then reports that old revision while the store goes on, and an apiserver
// whose watch cache waits for the store's revision (each consistent read,
// each informer's start) waits until this server writes again; a server
// still starting writes nothing until its informers are ready, so it never
// does. Servers on an external database see it: there another server's
// writes, or this server's own running at once, can slip in between. On
// SQLite the write gate lets one write through at a time, so the counter
// ends at the newest.
//
// Progress stays as safe as kine makes it: a watch is told a revision only
// once it has been sent every batch up to it.
type polledRevision struct {
	server.Backend
	polled atomic.Int64
}

// followPolls wraps b and follows its poll loop until ctx ends.
func followPolls(ctx context.Context, b server.Backend) *polledRevision {
	p := &polledRevision{Backend: b}
	go p.follow(ctx)
	return p
}

func (p *polledRevision) CurrentRevision(ctx context.Context) (int64, error) {
	rev, err := p.Backend.CurrentRevision(ctx)
	if err != nil {
		return rev, err
	}
	return max(rev, p.polled.Load()), nil
}

func (p *polledRevision) follow(ctx context.Context) {
	for ctx.Err() == nil {
		batches := p.Backend.Watch(ctx, 0).Eventc
		// The first batch is the counter itself, not a poll.
		<-batches
		for batch := range batches {
			p.saw(batch.CurrentRev)
		}
		// Kine drops a watcher that falls behind by closing it: watch again.
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (p *polledRevision) saw(rev int64) {
	for {
		old := p.polled.Load()
		if rev <= old || p.polled.CompareAndSwap(old, rev) {
			return
		}
	}
}
