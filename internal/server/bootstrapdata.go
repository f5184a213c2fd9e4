package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/k3ha/k3ha/internal/bootstrap"
	"github.com/k3ha/k3ha/internal/layout"
)

// adoptBootstrap reads the cluster's bootstrap data from the datastore, if
// any, checks that the token opens it, and writes the files this node lacks
// (a second server on a shared external datastore gets the CAs this way).
func adoptBootstrap(ctx context.Context, kv clientv3.KV, l layout.Server, secret string) error {
	blob, found, err := bootstrap.Load(ctx, kv)
	if err != nil {
		return fmt.Errorf("read bootstrap data from the datastore: %w", err)
	}
	if !found {
		return nil
	}
	if secret == "" {
		return errors.New("the datastore already holds a cluster: start this server with that cluster's token (--token; server/token on its first server)")
	}
	data, err := bootstrap.Open(blob, secret)
	if errors.Is(err, bootstrap.ErrWrongToken) {
		return errWrongToken
	}
	if err != nil {
		return fmt.Errorf("bootstrap data in the datastore: %w", err)
	}
	if differ := data.Differing(l); len(differ) > 0 {
		return fmt.Errorf("this data dir's certificates (%s) differ from the cluster's bootstrap data in the datastore: the data dir belongs to another cluster; use an empty --data-dir", strings.Join(differ, ", "))
	}
	if missing := data.Missing(l); len(missing) > 0 {
		if err := data.Write(l); err != nil {
			return fmt.Errorf("write bootstrap data: %w", err)
		}
		slog.Info("bootstrap data taken from the datastore", "files", len(missing))
	}
	return nil
}

// publishBootstrap stores this server's bootstrap data, encrypted with the
// token, unless another server already did.
func publishBootstrap(ctx context.Context, kv clientv3.KV, l layout.Server, secret string) error {
	data, err := bootstrap.Collect(l)
	if err != nil {
		return err
	}
	blob, err := bootstrap.Seal(data, secret)
	if err != nil {
		return err
	}
	stored, err := bootstrap.Save(ctx, kv, blob)
	if err != nil {
		return fmt.Errorf("store bootstrap data in the datastore: %w", err)
	}
	if !stored {
		// Another server was first: its data is the cluster's; ours must match.
		return adoptBootstrap(ctx, kv, l, secret)
	}
	slog.Info("bootstrap data stored in the datastore, encrypted with the token")
	return nil
}
