package kine

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// A key created again after its deletion is answered with its own row's
// revision even while other keys are written at the same time.
func TestRecreateAnswersItsOwnRevision(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := sharedKine(t, ctx, t.TempDir(), "kine")

	// Other writers keep the store's revision moving.
	_, stop := churn(t, ctx, []*clientv3.Client{c, c, c, c}, "/other")
	defer stop()

	const key = "/registry/k"
	for i := range 100 {
		answered, err := create(ctx, c, key, fmt.Sprintf("v%d", i))
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Get(ctx, key)
		if err != nil || len(got.Kvs) != 1 {
			t.Fatalf("get %d: %v", i, err)
		}
		if row := got.Kvs[0].ModRevision; row != answered {
			t.Fatalf("create %d answered revision %d, its row is %d", i, answered, row)
		}
		if err := remove(ctx, c, key, answered); err != nil {
			t.Fatal(err)
		}
	}
}

// create and remove are writes as the apiserver sends them, the shapes kine serves.
func create(ctx context.Context, c *clientv3.Client, key, value string) (int64, error) {
	resp, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).Then(clientv3.OpPut(key, value)).Commit()
	if err == nil && !resp.Succeeded {
		err = fmt.Errorf("exists")
	}
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", key, err)
	}
	return resp.Header.Revision, nil
}

func remove(ctx context.Context, c *clientv3.Client, key string, rev int64) error {
	resp, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpDelete(key)).Else(clientv3.OpGet(key)).Commit()
	if err == nil && !resp.Succeeded {
		err = fmt.Errorf("revision %d is not the current one", rev)
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// churn has each client create and delete a key of its own under prefix
// without pause until stop, which waits for them; writes counts the rounds.
func churn(t *testing.T, ctx context.Context, clients []*clientv3.Client, prefix string) (writes *atomic.Int64, stop func()) {
	writes = new(atomic.Int64)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for n, c := range clients {
		wg.Go(func() {
			key := fmt.Sprintf("%s/%d", prefix, n)
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				rev, err := create(ctx, c, key, fmt.Sprint(i))
				if err == nil {
					err = remove(ctx, c, key, rev)
				}
				if err != nil {
					t.Error(err)
					return
				}
				writes.Add(1)
			}
		})
	}
	return writes, func() { close(done); wg.Wait() }
}

// sharedKine starts a kine on dir's SQLite file with a socket of its own.
func sharedKine(t *testing.T, ctx context.Context, dir, name string) *clientv3.Client {
	t.Helper()
	k := New(Config{DSN: SQLiteDSN(filepath.Join(dir, "state.db")), Socket: filepath.Join(dir, name+".sock")})
	if err := k.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Stop() })
	c, err := k.Endpoint().Client(zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
