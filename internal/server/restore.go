package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/k3ha/k3ha/internal/bootstrap"
	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/datastore/etcd"
	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/snapshot"
	"github.com/k3ha/k3ha/internal/token"
)

// restoreSnapshot makes this server the only member of a new etcd cluster
// holding a snapshot's data (--cluster-reset --cluster-reset-restore-path),
// then stops. Everything is checked before anything changes: the file's
// integrity hash, a complete restore into a staging dir, and that this
// server's token opens the bootstrap data in it. Only then is the old etcd
// dir moved aside (kept as db/etcd-old-<time>) and the staging dir moved in.
func restoreSnapshot(ctx context.Context, cfg *config.Server, l layout.Server, n node, given token.Token) error {
	path, err := snapshotFile(ctx, cfg, l)
	if err != nil {
		return err
	}
	refuse := func(err error) error {
		return fmt.Errorf("--cluster-reset-restore-path %s: %w; nothing was changed", cfg.ClusterResetRestorePath, err)
	}
	if err := snapshot.CheckIntegrity(path); err != nil {
		return refuse(err)
	}
	staging := filepath.Join(l.DBDir(), "etcd-restore-tmp")
	if err := os.RemoveAll(staging); err != nil {
		return refuse(err)
	}
	if err := os.MkdirAll(l.DBDir(), 0o700); err != nil {
		return refuse(err)
	}
	if err := snapshot.RestoreEtcd(path, staging, snapshot.Member{Name: n.name, PeerURL: peerURL(n.ip)}); err != nil {
		return refuse(err)
	}
	data, err := restoredBootstrap(ctx, staging, l, given)
	if err != nil {
		os.RemoveAll(staging)
		return refuse(err)
	}
	if differ := data.Differing(l); len(differ) > 0 {
		os.RemoveAll(staging)
		return refuse(fmt.Errorf("this data dir holds another cluster's certificates (%s): restore on the server the snapshot came from, or on an empty --data-dir", strings.Join(differ, ", ")))
	}
	if err := data.Write(l); err != nil {
		os.RemoveAll(staging)
		return refuse(err)
	}

	old := ""
	if _, err := os.Stat(l.EtcdDir()); err == nil {
		old = filepath.Join(l.DBDir(), fmt.Sprintf("etcd-old-%d", time.Now().Unix()))
		if err := os.Rename(l.EtcdDir(), old); err != nil {
			return refuse(err)
		}
	}
	if err := os.Rename(staging, l.EtcdDir()); err != nil {
		return fmt.Errorf("--cluster-reset-restore-path: move the restored data into place: %w (the previous data is in %s)", err, old)
	}
	if err := etcd.EnsureCertificates(l, n.name, n.ip); err != nil {
		return err
	}
	// One start proves the restored member comes up; then stop.
	e := etcd.New(etcd.Config{Name: n.name, Layout: l, NodeIP: n.ip, ExtraArgs: cfg.EtcdArgs}, etcd.Existing, nil)
	if err := e.Start(ctx); err != nil {
		return fmt.Errorf("--cluster-reset-restore-path: the restored member does not start: %w (the previous data is in %s)", err, old)
	}
	if err := e.Stop(); err != nil {
		return err
	}
	slog.Info("snapshot restored: this server is now the only etcd member, with the snapshot's data; everything written after the snapshot was taken is gone. "+
		"Start this server again without --cluster-reset. On every other server: stop it, remove server/db under its data dir, and start it with --server pointing here to rejoin",
		"snapshot", path, "etcd-dir", l.EtcdDir(), "previous-data", old)
	return nil
}

// snapshotFile finds the snapshot to restore: an S3 object name with
// --etcd-s3 (downloaded into the snapshot dir), else a path, else a file
// name in the snapshot dir.
func snapshotFile(ctx context.Context, cfg *config.Server, l layout.Server) (string, error) {
	p := cfg.ClusterResetRestorePath
	dir := cfg.Snapshots.Dir
	if dir == "" {
		dir = l.SnapshotDir()
	}
	if cfg.Snapshots.S3.Enabled {
		s3, err := snapshot.NewS3(ctx, cfg.Snapshots.S3)
		if err != nil {
			return "", fmt.Errorf("--cluster-reset-restore-path %s: %w; nothing was changed", p, err)
		}
		return s3.Download(ctx, p, dir)
	}
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if in := filepath.Join(dir, p); snapshot.ValidName(p) == nil {
		if _, err := os.Stat(in); err == nil {
			return in, nil
		}
	}
	return "", fmt.Errorf("--cluster-reset-restore-path %s: no such file, nor in %s (with --etcd-s3 the value is an object name); nothing was changed", p, dir)
}

// restoredBootstrap reads the cluster's bootstrap data from a restored
// data dir and opens it with this server's token: the given one, else the
// one stored in the data dir.
func restoredBootstrap(ctx context.Context, dir string, l layout.Server, given token.Token) (bootstrap.Data, error) {
	st, err := snapshot.OpenStore(dir)
	if err != nil {
		return bootstrap.Data{}, err
	}
	defer st.Close()
	blob, ok, err := st.Get(ctx, bootstrap.Key)
	if err != nil {
		return bootstrap.Data{}, err
	}
	if !ok {
		return bootstrap.Data{}, errors.New("the snapshot holds no k3ha bootstrap data: it is not a k3ha snapshot")
	}
	secret := secretOf(l, given)
	if secret == "" {
		return bootstrap.Data{}, errors.New("no token to open the snapshot's bootstrap data: give the token of the cluster the snapshot came from with --token")
	}
	data, err := bootstrap.Open(blob, secret)
	if errors.Is(err, bootstrap.ErrWrongToken) {
		return bootstrap.Data{}, errors.New("the token this server has cannot open the snapshot's bootstrap data: the snapshot was taken when the cluster had another token " +
			"(before a rotation, or from another cluster); restart the restore with that token: --token <the token of server/token at the time of the snapshot>")
	}
	return data, err
}
