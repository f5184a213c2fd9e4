// Package kine runs kine, which serves the etcd v3 API on top of SQLite or an
// external SQL database, inside the k3ha process.
package kine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/k3s-io/kine/pkg/drivers"
	"github.com/k3s-io/kine/pkg/drivers/sqlite"
	// Kine's drivers (SQLite, MySQL, PostgreSQL, etcd pass-through, ...)
	// register themselves when its endpoint package loads.
	_ "github.com/k3s-io/kine/pkg/endpoint"
	"github.com/k3s-io/kine/pkg/server"
	kinetls "github.com/k3s-io/kine/pkg/tls"
	"google.golang.org/grpc"

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
	// open opens the datastore; nil is openBackend.
	open func(context.Context, *sync.WaitGroup, *drivers.Config) (server.Backend, error)
}

// New prepares kine; nothing runs until Start.
func New(cfg Config) *Kine { return &Kine{cfg: cfg} }

func (k *Kine) Name() string { return "datastore (kine)" }

// Endpoint is where the apiserver finds the store; valid after Start.
func (k *Kine) Endpoint() datastore.Endpoint { return k.endpoint }

// Start opens the database and serves the etcd API on the socket.
//
// It does what kine's endpoint.Listen does, with the backend wrapped so
// that watch progress follows the poll loop (progress.go).
func (k *Kine) Start(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(k.cfg.Socket), 0o700); err != nil {
		return fmt.Errorf("kine socket dir: %w", err)
	}
	// Stop owns shutdown, so kine gets contexts of its own rather than the
	// caller's: one for serving and one for the database, closed after the
	// last request is answered.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	dbCtx, closeDB := context.WithCancel(context.WithoutCancel(ctx))
	abort := func() { cancel(); closeDB() }
	// A signal while the database is still unreachable must end the wait.
	detach := context.AfterFunc(ctx, abort)
	defer detach()
	open := k.open
	if open == nil {
		open = openBackend
	}
	backend, err := open(dbCtx, &k.wg, &drivers.Config{
		Endpoint: k.cfg.DSN,
		BackendTLSConfig: kinetls.Config{
			CAFile: k.cfg.CAFile, CertFile: k.cfg.CertFile, KeyFile: k.cfg.KeyFile,
		},
		// The values kine's own command line uses; its drivers reject zeros.
		CompactInterval:  5 * time.Minute,
		CompactTimeout:   5 * time.Second,
		CompactMinRetain: 1000,
		CompactBatchSize: 1000,
		PollBatchSize:    500,
		PollInterval:     time.Second,
	})
	if err != nil {
		abort()
		// The DSN is not repeated: it may carry a password.
		if errors.Is(err, drivers.ErrUnknownDriver) {
			scheme, _, _ := strings.Cut(k.cfg.DSN, "://")
			return fmt.Errorf("--datastore-endpoint: unknown scheme %q: use sqlite://, postgres://, mysql:// or https:// (etcd)", scheme)
		}
		return fmt.Errorf("start kine: open the datastore: %w", err)
	}
	if backend == nil {
		// An etcd endpoint: kine only passes it through, with the backend
		// TLS files the apiserver then uses itself.
		abort()
		k.endpoint = datastore.Endpoint{Servers: strings.Split(k.cfg.DSN, ","), CAFile: k.cfg.CAFile,
			CertFile: k.cfg.CertFile, KeyFile: k.cfg.KeyFile}
		return nil
	}
	if err := backend.Start(dbCtx); err != nil {
		abort()
		return fmt.Errorf("start kine: %w", err)
	}
	_, exact := backend.(exactCreates)
	srv := newGRPCServer(isSQLite(k.cfg.DSN), !exact)
	server.New(followPolls(dbCtx, backend), "unix", notifyInterval, emulatedEtcdVersion).Register(srv)
	ln, err := listenUnix(k.cfg.Socket)
	if err != nil {
		abort()
		return fmt.Errorf("start kine: %w", err)
	}
	k.cancel = cancel
	k.wg.Go(func() {
		if err := srv.Serve(ln); err != nil {
			slog.Error("kine stopped serving", "err", err)
		}
	})
	k.wg.Go(func() {
		<-runCtx.Done()
		stopGracefully(srv, gracefulStop)
		closeDB()
	})
	slog.Debug("kine listening", "socket", k.cfg.Socket)
	k.endpoint = datastore.Endpoint{Servers: []string{"unix://" + k.cfg.Socket}}
	return nil
}

// The values kine's own command line uses.
const (
	notifyInterval      = 5 * time.Second
	emulatedEtcdVersion = "3.6.11"
	gracefulStop        = 2 * time.Second
)

// listenUnix binds the socket, replacing one a killed process left, for
// this user only.
func listenUnix(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("remove old socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// stopGracefully lets requests in flight finish, for at most d.
func stopGracefully(srv *grpc.Server, d time.Duration) {
	t := time.AfterFunc(d, srv.Stop)
	defer t.Stop()
	srv.GracefulStop()
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
