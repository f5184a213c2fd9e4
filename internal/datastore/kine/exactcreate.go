package kine

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/k3s-io/kine/pkg/drivers"
	"github.com/k3s-io/kine/pkg/drivers/sqlite"
	"github.com/k3s-io/kine/pkg/logstructured"
	"github.com/k3s-io/kine/pkg/logstructured/sqllog"
	"github.com/k3s-io/kine/pkg/server"
	"github.com/k3s-io/kine/pkg/util"
)

// openBackend opens the datastore cfg names: on SQLite an exactCreates
// backend; elsewhere kine's stock one, whose creates answerWrites checks
// with a read.
func openBackend(ctx context.Context, wg *sync.WaitGroup, cfg *drivers.Config) (server.Backend, error) {
	if isSQLite(cfg.Endpoint) {
		return newSQLiteBackend(ctx, wg, cfg)
	}
	return stockBackend(ctx, wg, cfg)
}

// stockBackend is kine's own backend for cfg, as kine builds it (nil for
// an etcd endpoint, which kine only passes through).
func stockBackend(ctx context.Context, wg *sync.WaitGroup, cfg *drivers.Config) (server.Backend, error) {
	_, b, err := drivers.New(ctx, wg, cfg)
	return b, err
}

// newSQLiteBackend is kine's SQLite backend assembled from its parts, with
// the log's appends recorded so that a create is answered with the row it
// inserted. Only SQLite's driver hands out the parts; the others build
// their backend whole.
func newSQLiteBackend(ctx context.Context, wg *sync.WaitGroup, cfg *drivers.Config) (server.Backend, error) {
	cfg.Scheme, cfg.DataSourceName = util.SchemeAndAddress(cfg.Endpoint)
	// The backend it returns is dropped unstarted; its log only holds the
	// dialect, which the new one shares.
	_, dialect, err := sqlite.NewVariant(ctx, wg, "sqlite3", cfg)
	if err != nil {
		return nil, err
	}
	return exactCreates{logstructured.New(recordedAppends{sqllog.New(dialect, wg, cfg)})}, nil
}

// exactCreates answers a create with the revision of the row it inserted.
// When a key is created again after its deletion, kine (v0.17.5) inserts
// the row on a second try and answers with its counter of the store's
// revision instead: under concurrent writes an older or a newer one.
type exactCreates struct{ server.Backend }

func (b exactCreates) Create(ctx context.Context, key string, value []byte, lease int64) (int64, error) {
	appended := new(atomic.Int64)
	rev, err := b.Backend.Create(context.WithValue(ctx, appendedKey{}, appended), key, value, lease)
	if err == nil {
		if row := appended.Load(); row != 0 {
			rev = row
		}
	}
	return rev, err
}

type appendedKey struct{}

// recordedAppends stores the revision of each row appended into the
// caller's record, if its context carries one.
type recordedAppends struct{ logstructured.Log }

func (l recordedAppends) Append(ctx context.Context, event *server.Event) (int64, error) {
	rev, err := l.Log.Append(ctx, event)
	if appended, ok := ctx.Value(appendedKey{}).(*atomic.Int64); ok && err == nil && rev != 0 {
		appended.Store(rev)
	}
	return rev, err
}
