// Package server runs a k3ha server: certificates, token, datastore, the
// Kubernetes control plane and the supervisor port, started in that order and
// stopped in reverse.
package server

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/k3ha/k3ha/internal/component"
	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/gomem"
	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/lockfile"
	"github.com/k3ha/k3ha/internal/sdnotify"
)

// Run runs the server until ctx ends or a component fails: it gathers the
// facts, decides the plan, then carries it out step by step.
func Run(ctx context.Context, cfg *config.Server) (err error) {
	begin := time.Now()
	l := layout.NewServer(cfg.DataDir)
	lock, err := lockfile.Acquire(cfg.DataDir)
	if err != nil {
		return err
	}
	// A data dir this start creates is removed again if it fails early.
	u := &undo{layout: l, lock: lock, active: !exists(l.Root)}
	defer func() { u.finish(err) }()
	f, err := gather(cfg, l)
	if err != nil {
		return err
	}
	p, err := decide(cfg, f)
	if err != nil {
		return err
	}
	u.active = p.undoOnFailure
	if len(p.ignored) > 0 {
		slog.Info("etcd data exists: this node is already initialised or joined, so these flags are ignored",
			"ignored", strings.Join(p.ignored, ","), "etcd-dir", l.EtcdDir())
	}
	if p.restore != "" {
		return restoreSnapshot(ctx, cfg, l, p.node, p.token)
	}
	if p.reset {
		return resetCluster(ctx, cfg, l, p.node)
	}

	mgr := component.NewManager()
	defer gomem.WarmBinary() // after the components stopped
	defer mgr.Stop(component.StopEach, component.StopAll)
	s := &startup{cfg: cfg, plan: p, layout: l, mgr: mgr, undo: u}
	for _, step := range s.steps() {
		if err := step.run(ctx); err != nil {
			return err
		}
	}
	s.sup.SetReady(true)
	slog.Info("k3ha is ready", "took", time.Since(begin).Round(time.Millisecond), "kubeconfig", cfg.WriteKubeconfig,
		"node", p.node.name, "datastore", p.datastore.String())
	sdnotify.Ready()
	go gomem.ReleaseStartup(ctx)

	select {
	case <-ctx.Done():
		slog.Info("shutting down", "reason", context.Cause(ctx))
		sdnotify.Stopping()
		s.sup.SetReady(false)
		return nil
	case err := <-mgr.Failed():
		return err
	}
}

// undo takes back what a failed start of a fresh node wrote, so that the
// next attempt finds the node as it was (a failed join leaves nothing to
// trip over). It stops applying once the datastore holds this node's data.
type undo struct {
	layout layout.Server
	lock   *lockfile.Lock
	active bool
}

// commit says the datastore now holds data: nothing is taken back any more.
func (u *undo) commit() { u.active = false }

// finish releases the data dir, removing what was written if err ended a
// start that had not committed.
func (u *undo) finish(err error) {
	if err != nil && u.active {
		_ = os.RemoveAll(u.layout.Root)
		u.lock.Release()
		if u.lock.Created() {
			_ = os.Remove(u.layout.DataDir())
		}
		return
	}
	u.lock.Release()
}

// localAPI is how processes on this node reach the API port.
func localAPI(cfg *config.Server) string {
	host := "127.0.0.1"
	if ip := net.ParseIP(cfg.BindAddress); ip != nil && !ip.IsUnspecified() {
		host = ip.String()
	}
	return "https://" + net.JoinHostPort(host, strconv.Itoa(cfg.HTTPSPort))
}

func peerURL(ip net.IP) string { return "https://" + net.JoinHostPort(ip.String(), "2380") }

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
