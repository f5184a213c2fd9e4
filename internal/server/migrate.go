package server

import (
	"context"
	"fmt"

	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/controlplane"
	"github.com/k3ha/k3ha/internal/datastore/etcd"
	"github.com/k3ha/k3ha/internal/datastore/migrate"
	"github.com/k3ha/k3ha/internal/layout"
)

// migrateSQLite moves this server's SQLite data into a new embedded etcd
// before it founds the cluster (--cluster-init on a server that ran on
// SQLite). The etcd member is this node's real one, so it needs the node's
// etcd certificates, which an older SQLite server may not have yet.
func migrateSQLite(ctx context.Context, cfg *config.Server, l layout.Server, n node) error {
	if _, err := controlplane.EnsureCAs(l); err != nil {
		return err
	}
	if err := etcd.EnsureCertificates(l, n.name, n.ip); err != nil {
		return err
	}
	_, err := migrate.Run(ctx, migrate.Options{Layout: l, Etcd: etcd.Config{Name: n.name, Layout: l, NodeIP: n.ip, ExtraArgs: cfg.EtcdArgs}})
	if err != nil {
		return fmt.Errorf("--cluster-init: moving this server's SQLite data (%s) into etcd failed, so the server still runs on SQLite and nothing was changed: %w\n"+
			"Fix the cause and start again with --cluster-init to retry, or start without it to keep using SQLite", l.SQLiteFile(), err)
	}
	return nil
}
