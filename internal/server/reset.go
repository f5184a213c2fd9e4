package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/datastore/etcd"
	"github.com/k3ha/k3ha/internal/layout"
)

// resetCluster makes this server the only member of its etcd cluster,
// keeping all data (for when quorum is lost for good), then stops. The plan
// has checked that there is etcd data to reset.
func resetCluster(ctx context.Context, cfg *config.Server, l layout.Server, n node) error {
	e := etcd.New(etcd.Config{Name: n.name, Layout: l, NodeIP: n.ip, ExtraArgs: cfg.EtcdArgs, ForceNewCluster: true}, etcd.Existing, nil)
	if err := e.Start(ctx); err != nil {
		return fmt.Errorf("--cluster-reset: %w", err)
	}
	if err := e.Stop(); err != nil {
		return fmt.Errorf("--cluster-reset: %w", err)
	}
	slog.Info("cluster reset: this server is now the only etcd member and keeps all data; start it again without --cluster-reset. "+
		"Other servers rejoin after their etcd data is removed: delete server/db/etcd in their data dir and start them with --server pointing here",
		"member", n.name, "etcd-dir", l.EtcdDir())
	return nil
}
