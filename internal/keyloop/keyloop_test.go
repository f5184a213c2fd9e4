package keyloop

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// A key is synced once it is queued; a failed sync is retried until it
// succeeds; Run returns when its context ends.
func TestLoop(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	done := make(chan struct{})
	l := New("test", time.Millisecond, 10*time.Millisecond, func(_ context.Context, key string) error {
		mu.Lock()
		defer mu.Unlock()
		calls[key]++
		if key == "ns/flaky" && calls[key] < 3 {
			return errors.New("not yet")
		}
		if key == "ns/flaky" {
			close(done)
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		l.Run(ctx, func() bool { return true })
		close(stopped)
	}()
	l.Handler().OnAdd(&metav1.ObjectMeta{Namespace: "ns", Name: "flaky"}, false)
	l.Enqueue(cache.DeletedFinalStateUnknown{Key: "ns/gone"})
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the failing key was not retried to success: %v", calls)
	}
	cancel()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	mu.Lock()
	defer mu.Unlock()
	if calls["ns/flaky"] != 3 || calls["ns/gone"] != 1 {
		t.Fatalf("syncs: %v", calls)
	}
}
