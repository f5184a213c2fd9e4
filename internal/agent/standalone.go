package agent

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/k3ha/k3ha/internal/component"
	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/gomem"
	"github.com/k3ha/k3ha/internal/lockfile"
	"github.com/k3ha/k3ha/internal/nodeid"
	"github.com/k3ha/k3ha/internal/sdnotify"
	"github.com/k3ha/k3ha/internal/token"
)

// Run runs `k3ha agent` until ctx ends or a part fails.
func Run(ctx context.Context, cfg *config.Agent) error {
	begin := time.Now()
	lock, err := lockfile.Acquire(cfg.DataDir)
	if err != nil {
		return err
	}
	defer lock.Release()
	name, err := nodeid.Name(cfg.NodeName)
	if err != nil {
		return err
	}
	ip, err := nodeid.IP(cfg.NodeIP)
	if err != nil {
		return err
	}
	if err := nodeid.CheckLocal(ip); err != nil {
		return err
	}
	tok, err := token.FromFlags(cfg.Token, cfg.TokenFile, "token")
	if err != nil {
		return err
	}
	if tok == (token.Token{}) {
		return fmt.Errorf("--token-file %s is empty: put the cluster's token in it", cfg.TokenFile)
	}
	mgr := component.NewManager()
	defer gomem.WarmBinary() // after the components stopped
	defer mgr.Stop(component.StopEach, component.StopAll)
	if err := Start(ctx, mgr, Options{DataDir: cfg.DataDir, ServerURL: cfg.ServerURL, Token: tok,
		NodeName: name, NodeIP: ip, Node: cfg.Node}); err != nil {
		return err
	}
	slog.Info("k3ha agent is ready", "took", time.Since(begin).Round(time.Millisecond), "node", name, "server", cfg.ServerURL)
	sdnotify.Ready()
	go gomem.ReleaseStartup(ctx)
	select {
	case <-ctx.Done():
		slog.Info("shutting down", "reason", context.Cause(ctx))
		sdnotify.Stopping()
		return nil
	case err := <-mgr.Failed():
		return err
	}
}
