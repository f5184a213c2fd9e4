// Package kine runs kine, which serves the etcd v3 API on top of SQLite or an
// external SQL database, inside the k3ha process.
package kine

import (
	"context"
	"fmt"
	"github.com/k3s-io/kine/pkg/drivers/sqlite"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/k3s-io/kine/pkg/endpoint"
	kinetls "github.com/k3s-io/kine/pkg/tls"

	"github.com/k3ha/k3ha/internal/datastore"
)

// Config says which database kine fronts and where it listens.
type Config struct {
	// DSN is a kine endpoint: sqlite://<file>?..., postgres://..., mysql://...
	DSN string
	// Socket is the unix socket the apiserver connects to.
	Socket string
	// Backend TLS for external databases.
	CAFile, CertFile, KeyFile string
}

// SQLiteDSN is the DSN of the embedded default store, with the parameters
// kine itself uses for SQLite (WAL journal, busy timeout, a prepared
// statement cache per connection: without it every query is compiled
// anew).
func SQLiteDSN(file string) string {
	return "sqlite://" + file + "?" + sqlite.DefaultParams
}

// Kine is a running kine instance.
type Kine struct {
	cfg      Config
	endpoint datastore.Endpoint
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// New prepares kine; nothing runs until Start.
func New(cfg Config) *Kine { return &Kine{cfg: cfg} }

func (k *Kine) Name() string { return "datastore (kine)" }

// Endpoint is where the apiserver finds the store; valid after Start.
func (k *Kine) Endpoint() datastore.Endpoint { return k.endpoint }

// Start opens the database and serves the etcd API on the socket.
func (k *Kine) Start(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(k.cfg.Socket), 0o700); err != nil {
		return fmt.Errorf("kine socket dir: %w", err)
	}
	// Stop owns shutdown, so kine gets a context of its own rather than the caller's.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	k.cancel = cancel
	// A signal while the database is still unreachable must end the wait.
	detach := context.AfterFunc(ctx, cancel)
	defer detach()
	etcd, err := endpoint.Listen(runCtx, endpoint.Config{
		GRPCServer: newGRPCServer(isSQLite(k.cfg.DSN)),
		WaitGroup:  &k.wg,
		Listener:   "unix://" + k.cfg.Socket,
		Endpoint:   k.cfg.DSN,
		BackendTLSConfig: kinetls.Config{
			CAFile: k.cfg.CAFile, CertFile: k.cfg.CertFile, KeyFile: k.cfg.KeyFile,
		},
		// The values kine's own command line uses; its Config rejects zeros.
		NotifyInterval:      5 * time.Second,
		EmulatedETCDVersion: "3.6.11",
		CompactInterval:     5 * time.Minute,
		CompactTimeout:      5 * time.Second,
		CompactMinRetain:    1000,
		CompactBatchSize:    1000,
		PollBatchSize:       500,
		PollInterval:        time.Second,
	})
	if err != nil {
		cancel()
		return fmt.Errorf("start kine: %w", err)
	}
	slog.Debug("kine listening", "endpoints", etcd.Endpoints)
	// For an external etcd kine only passes the endpoint through, with the
	// backend TLS files the apiserver must then use itself.
	k.endpoint = datastore.Endpoint{Servers: etcd.Endpoints, CAFile: etcd.TLSConfig.CAFile,
		CertFile: etcd.TLSConfig.CertFile, KeyFile: etcd.TLSConfig.KeyFile}
	return nil
}

// Stop closes the gRPC server and the database and waits for both.
func (k *Kine) Stop() error {
	if k.cancel == nil {
		return nil
	}
	k.cancel()
	k.wg.Wait()
	return nil
}
