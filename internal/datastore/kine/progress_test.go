package kine

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/k3s-io/kine/pkg/server"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Servers share one database. A server that writes while the others write
// too must still report the store's revision in watch progress: the
// apiserver's watch cache waits for it before it serves a consistent read,
// and a server whose progress stops at its own last write never becomes
// ready (an external MariaDB once left a second server so for minutes).
//
// Whether a round leaves kine's own counter behind is up to timing (about
// one round in eight here); without the fix most runs fail.
func TestProgressFollowsOtherServersWrites(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	a := sharedKine(t, ctx, dir, "a")
	var others []*clientv3.Client
	for _, name := range []string{"b", "c"} {
		others = append(others, sharedKine(t, ctx, dir, name))
	}

	for round := range 10 {
		// The others write without pause while a writes once.
		writes, stop := churn(t, ctx, others, fmt.Sprintf("/other/%d", round))
		waitWrites(t, writes, 1)
		if _, err := create(ctx, a, fmt.Sprintf("/a/%d", round), "v"); err != nil {
			t.Fatal(err)
		}
		waitWrites(t, writes, writes.Load()+2)
		stop()
		if t.Failed() {
			return
		}
		latest, err := others[0].Get(ctx, "/none")
		if err != nil {
			t.Fatal(err)
		}
		waitProgress(t, ctx, a, latest.Header.Revision)
	}
}

func waitWrites(t *testing.T, writes *atomic.Int64, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for writes.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the other servers made %d writes, want %d", writes.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitProgress asks c's watch for progress until it reports rev.
func waitProgress(t *testing.T, ctx context.Context, c *clientv3.Client, rev int64) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	wch := c.Watch(wctx, "/progress", clientv3.WithRev(rev+1), clientv3.WithProgressNotify())
	ask := time.NewTicker(200 * time.Millisecond)
	defer ask.Stop()
	var seen int64
	for {
		select {
		case resp, ok := <-wch:
			if !ok {
				t.Fatalf("watch progress stayed at revision %d; the store is at %d", seen, rev)
			}
			if resp.IsProgressNotify() {
				seen = max(seen, resp.Header.Revision)
			}
			if seen >= rev {
				return
			}
		case <-ask.C:
			_ = c.RequestProgress(wctx)
		}
	}
}

// stuckCounter is a backend whose own current revision never moves while
// its poll loop hands out batches.
type stuckCounter struct {
	server.Backend
	batches chan server.EventBatch
}

func (s stuckCounter) CurrentRevision(context.Context) (int64, error) { return 7, nil }

func (s stuckCounter) Watch(ctx context.Context, _ int64) server.WatchResult {
	out := make(chan server.EventBatch)
	go func() {
		defer close(out)
		out <- server.EventBatch{CurrentRev: 7}
		for {
			select {
			case b, ok := <-s.batches:
				if !ok {
					return
				}
				out <- b
			case <-ctx.Done():
				return
			}
		}
	}()
	return server.WatchResult{Eventc: out}
}

// The current revision is the newest polled one once that is ahead of
// kine's own counter, and never goes back.
func TestPolledRevision(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	batches := make(chan server.EventBatch)
	p := followPolls(ctx, stuckCounter{batches: batches})
	current := func() int64 {
		rev, err := p.CurrentRevision(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	if rev := current(); rev != 7 {
		t.Fatalf("before any poll: %d, want kine's 7", rev)
	}
	batches <- server.EventBatch{CurrentRev: 12}
	batches <- server.EventBatch{CurrentRev: 9}
	// Taken only once the follower took the one before, so 12 has been seen.
	batches <- server.EventBatch{CurrentRev: 9}
	if rev := current(); rev != 12 {
		t.Fatalf("after polls up to 12: %d", rev)
	}
}
