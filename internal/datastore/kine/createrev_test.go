package kine

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/k3s-io/kine/pkg/drivers"
	"github.com/k3s-io/kine/pkg/server"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// A key created again after its deletion is answered with its own row's
// revision even while other keys are written at the same time: by k3ha's
// SQLite backend itself, and by kine's stock one (as on PostgreSQL and
// MySQL) once answerWrites has checked it.
func TestRecreateAnswersItsOwnRevision(t *testing.T) {
	for name, open := range map[string]opener{"exact backend": openBackend, "kine's backend checked by a read": stockBackend} {
		t.Run(name, func(t *testing.T) { recreateAnswersItsOwnRevision(t, open) })
	}
}

type opener = func(context.Context, *sync.WaitGroup, *drivers.Config) (server.Backend, error)

func recreateAnswersItsOwnRevision(t *testing.T, open opener) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	c := openKine(t, ctx, dir, "kine", open)

	// Other servers on the same database keep the store's revision moving:
	// one server's write gate lets its own writes through one at a time.
	_, stop := churn(t, ctx, []*clientv3.Client{sharedKine(t, ctx, dir, "b"), sharedKine(t, ctx, dir, "c")}, "/other")
	defer stop()
	// A read that sees a newer revision wakes kine's poll loop: reads
	// through this server keep its counter moving while it writes.
	stopReads := reads(t, ctx, c, "/other/0")
	defer stopReads()

	const key = "/registry/k"
	for i := range 300 {
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
	var stops []func()
	for n, c := range clients {
		key := fmt.Sprintf("%s/%d", prefix, n)
		i := 0
		stops = append(stops, repeat(t, func() error {
			i++
			rev, err := create(ctx, c, key, fmt.Sprint(i))
			if err == nil {
				err = remove(ctx, c, key, rev)
			}
			if err == nil {
				writes.Add(1)
			}
			return err
		}))
	}
	return writes, func() {
		for _, stop := range stops {
			stop()
		}
	}
}

// reads gets key through c without pause until stop, which waits.
func reads(t *testing.T, ctx context.Context, c *clientv3.Client, key string) (stop func()) {
	return repeat(t, func() error {
		_, err := c.Get(ctx, key)
		return err
	})
}

// repeat runs do in a goroutine of its own until it fails or stop, which
// waits for it, is called.
func repeat(t *testing.T, do func() error) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := do(); err != nil {
				t.Error(err)
				return
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// sharedKine starts a kine on dir's SQLite file with a socket of its own.
func sharedKine(t *testing.T, ctx context.Context, dir, name string) *clientv3.Client {
	t.Helper()
	return openKine(t, ctx, dir, name, openBackend)
}

// openKine is sharedKine with the backend open makes.
func openKine(t *testing.T, ctx context.Context, dir, name string, open opener) *clientv3.Client {
	t.Helper()
	k := New(Config{DSN: SQLiteDSN(filepath.Join(dir, "state.db")), Socket: filepath.Join(dir, name+".sock")})
	k.open = open
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
