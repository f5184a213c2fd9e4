package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/k3ha/k3ha/internal/component"
	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/lockfile"
	"github.com/k3ha/k3ha/internal/nodeid"
	"github.com/k3ha/k3ha/internal/token"
)

// Shutdown budget: one part may take stopEach, all together stopAll.
const (
	stopEach = 4 * time.Second
	stopAll  = 9 * time.Second
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
	secret := cfg.Token
	if cfg.TokenFile != "" {
		data, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		secret = strings.TrimSpace(string(data))
	}
	tok, err := token.Parse(secret)
	if err != nil {
		return fmt.Errorf("--token: %w", err)
	}
	mgr := component.NewManager()
	defer mgr.Stop(stopEach, stopAll)
	if err := Start(ctx, mgr, Options{DataDir: cfg.DataDir, ServerURL: cfg.ServerURL, Token: tok,
		NodeName: name, NodeIP: ip, Node: cfg.Node}); err != nil {
		return err
	}
	slog.Info("k3ha agent is ready", "took", time.Since(begin).Round(time.Millisecond), "node", name, "server", cfg.ServerURL)
	select {
	case <-ctx.Done():
		slog.Info("shutting down", "reason", context.Cause(ctx))
		return nil
	case err := <-mgr.Failed():
		return err
	}
}
