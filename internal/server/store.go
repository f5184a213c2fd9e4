package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/k3ha/k3ha/internal/bootstrap"
	"github.com/k3ha/k3ha/internal/component"
	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/datastore"
	"github.com/k3ha/k3ha/internal/datastore/kine"
	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/logging"
	"github.com/k3ha/k3ha/internal/token"
)

// store is a running datastore backend.
type store interface {
	component.Component
	Endpoint() datastore.Endpoint
}

// startKine starts kine over the embedded SQLite file or the external endpoint.
func startKine(ctx context.Context, mgr *component.Manager, cfg *config.Server, l layout.Server, kind datastore.Kind) (store, error) {
	kc := kine.Config{Socket: l.KineSocket()}
	desc := "sqlite " + l.SQLiteFile()
	if kind == datastore.External {
		kc.DSN, kc.CAFile, kc.CertFile, kc.KeyFile = cfg.DatastoreEndpoint, cfg.DatastoreCAFile, cfg.DatastoreCertFile, cfg.DatastoreKeyFile
		desc = "external"
		// Nothing starts before the database answers; kine's own retries
		// keep a fixed pace and give up after five minutes.
		if err := datastore.WaitReachable(ctx, datastore.Addresses(cfg.DatastoreEndpoint), datastore.DefaultBackoff); err != nil {
			return nil, err
		}
	} else {
		if err := os.MkdirAll(l.DBDir(), 0o700); err != nil {
			return nil, fmt.Errorf("datastore dir: %w", err)
		}
		kc.DSN = kine.SQLiteDSN(l.SQLiteFile())
	}
	k := kine.New(kc)
	if err := mgr.Start(ctx, k); err != nil {
		return nil, err
	}
	if kind == datastore.External {
		if err := waitAnswers(ctx, k.Endpoint(), datastore.DefaultBackoff); err != nil {
			return nil, err
		}
	}
	slog.Info("datastore ready", "kind", kind.String(), "store", desc)
	return k, nil
}

// withKV runs fn with a short-lived etcd client to the datastore.
func withKV(ep datastore.Endpoint, fn func(kv clientv3.KV) error) error {
	c, err := ep.Client(logging.Zap("etcd-client"))
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

// secretOf is the token secret before the token files are written: the
// given one, else the stored one.
func secretOf(l layout.Server, given token.Token) string {
	if given.Password != "" {
		return given.Password
	}
	if stored, err := readToken(l.TokenFile()); err == nil {
		return stored.Password
	}
	return ""
}

// waitAnswers reads from the datastore until a read succeeds, with backoff
// and a log line per failure: an external etcd that accepts connections
// may still refuse this server's certificate or have no quorum, and a
// client would otherwise wait silently.
func waitAnswers(ctx context.Context, ep datastore.Endpoint, b datastore.Backoff) error {
	c, err := ep.Client(logging.Zap("etcd-client"))
	if err != nil {
		return err
	}
	defer c.Close()
	wait := b.First
	for attempt := 1; ; attempt++ {
		callCtx, cancel := context.WithTimeout(ctx, answerTimeout)
		_, err := c.Get(callCtx, bootstrap.Key)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("waiting for the datastore to answer: %w", context.Cause(ctx))
		}
		slog.Warn("datastore does not answer; retrying", "attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the datastore to answer: %w", context.Cause(ctx))
		case <-time.After(wait):
		}
		wait = min(2*wait, b.Max)
	}
}

// answerTimeout bounds one read of waitAnswers.
const answerTimeout = 10 * time.Second
