// Package keyloop is the work loop of k3ha's own controllers: informers
// queue object keys, one worker syncs them one at a time, and a key whose
// sync fails is retried with exponential backoff.
package keyloop

import (
	"context"
	"time"

	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Loop queues keys and syncs them.
type Loop struct {
	queue workqueue.TypedRateLimitingInterface[string]
	sync  func(ctx context.Context, key string) error
}

// New returns a loop named name (its queue's metrics name) that retries a
// failed key after base, doubling up to max.
func New(name string, base, max time.Duration, sync func(ctx context.Context, key string) error) *Loop {
	return &Loop{
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](base, max),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name}),
		sync: sync,
	}
}

// Enqueue queues the key of an informer's object (or of its tombstone).
func (l *Loop) Enqueue(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		l.queue.Add(key)
	}
}

// Handler queues the key of every object added, updated or deleted.
func (l *Loop) Handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{AddFunc: l.Enqueue, UpdateFunc: func(_, obj any) { l.Enqueue(obj) }, DeleteFunc: l.Enqueue}
}

// Run waits until the informers have synced, then syncs keys until ctx
// ends, or returns at once if ctx ends while they sync.
func (l *Loop) Run(ctx context.Context, synced ...cache.InformerSynced) {
	defer l.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return
	}
	go func() {
		<-ctx.Done()
		l.queue.ShutDown()
	}()
	for l.next(ctx) {
	}
}

func (l *Loop) next(ctx context.Context) bool {
	key, quit := l.queue.Get()
	if quit {
		return false
	}
	defer l.queue.Done(key)
	if err := l.sync(ctx, key); err != nil {
		if ctx.Err() == nil {
			l.queue.AddRateLimited(key)
		}
		return true
	}
	l.queue.Forget(key)
	return true
}
