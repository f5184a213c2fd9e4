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
// It returns the secret that opened the data: the given one, or the newer
// one of a rotation this server has not seen yet.
//
// encrypt is --secrets-encryption: it must match the cluster's, whose
// bootstrap data holds an encryption config exactly when Secrets are
// encrypted (a restart without the flag would leave them unreadable).
func adoptBootstrap(ctx context.Context, kv clientv3.KV, l layout.Server, secret string, encrypt bool) (string, error) {
	blob, found, err := bootstrap.Load(ctx, kv)
	if err != nil {
		return secret, fmt.Errorf("read bootstrap data from the datastore: %w", err)
	}
	if !found {
		return secret, nil
	}
	return adoptBlob(ctx, kv, l, blob, secret, encrypt)
}

// adoptBlob is adoptBootstrap with the cluster's stored data in hand.
func adoptBlob(ctx context.Context, kv clientv3.KV, l layout.Server, blob []byte, secret string, encrypt bool) (string, error) {
	if secret == "" {
		return secret, errors.New("the datastore already holds a cluster: start this server with that cluster's token (--token; server/token on its first server)")
	}
	data, secret, err := openFollowingRotation(ctx, kv, blob, secret)
	if err != nil {
		return secret, err
	}
	if clusterEncrypts := data.Files[relTo(l, l.EncryptionConfig())] != nil; clusterEncrypts != encrypt {
		return secret, fmt.Errorf("--secrets-encryption: this server has %t, the cluster has %t: start it with the cluster's setting "+
			"(Secrets are stored encrypted only when every server agrees)", encrypt, clusterEncrypts)
	}
	if differ := data.Differing(l); len(differ) > 0 {
		return secret, fmt.Errorf("this data dir's certificates (%s) differ from the cluster's bootstrap data in the datastore: the data dir belongs to another cluster; use an empty --data-dir", strings.Join(differ, ", "))
	}
	missing := data.Missing(l)
	if len(missing) > 0 {
		if err := data.WriteFiles(l, missing); err != nil {
			return secret, fmt.Errorf("write bootstrap data: %w", err)
		}
		slog.Info("bootstrap data taken from the datastore", "files", len(missing))
	}
	// The cluster's settings (rotated keys and tokens) win over this data dir's.
	if stale := data.Stale(l); len(stale) > 0 {
		if err := data.WriteFiles(l, stale); err != nil {
			return secret, fmt.Errorf("write bootstrap data: %w", err)
		}
		slog.Info("the cluster's settings taken from the datastore", "files", strings.Join(stale, ","))
	}
	return secret, nil
}

// openFollowingRotation opens the bootstrap data with secret, or, when the
// cluster's token was rotated since this server last had it, with the new
// token the rotation record gives to holders of the old one.
func openFollowingRotation(ctx context.Context, kv clientv3.KV, blob []byte, secret string) (bootstrap.Data, string, error) {
	data, err := bootstrap.Open(blob, secret)
	if err == nil {
		return data, secret, nil
	}
	if !errors.Is(err, bootstrap.ErrWrongToken) {
		return data, secret, fmt.Errorf("bootstrap data in the datastore: %w", err)
	}
	record, found, rerr := bootstrap.LoadRotation(ctx, kv)
	if rerr != nil || !found {
		return data, secret, errWrongToken
	}
	rotated, rerr := bootstrap.Open(record, secret)
	newSecret := string(rotated.Files[bootstrap.RotatedToken])
	if rerr != nil || newSecret == "" {
		return data, secret, errWrongToken
	}
	if data, err = bootstrap.Open(blob, newSecret); err != nil {
		return data, secret, errWrongToken
	}
	slog.Info("the cluster's token was rotated: this server now uses the new one")
	return data, newSecret, nil
}

// publishBootstrap stores this server's bootstrap data, encrypted with the
// token, unless another server already did; it returns the secret that
// opens the cluster's (see adoptBootstrap).
func publishBootstrap(ctx context.Context, kv clientv3.KV, l layout.Server, secret string, encrypt bool) (string, error) {
	// A restart or a join finds the cluster's data stored: it is checked,
	// and this server's is not sealed (a key derivation of 64 MiB) for nothing.
	blob, found, err := bootstrap.Load(ctx, kv)
	if err != nil {
		return secret, fmt.Errorf("read bootstrap data from the datastore: %w", err)
	}
	if found {
		return adoptBlob(ctx, kv, l, blob, secret, encrypt)
	}
	data, err := bootstrap.Collect(l)
	if err != nil {
		return secret, err
	}
	if blob, err = bootstrap.Seal(data, secret); err != nil {
		return secret, err
	}
	stored, err := bootstrap.Save(ctx, kv, blob)
	if err != nil {
		return secret, fmt.Errorf("store bootstrap data in the datastore: %w", err)
	}
	if !stored {
		// Another server was first: its data is the cluster's; ours must match.
		return adoptBootstrap(ctx, kv, l, secret, encrypt)
	}
	slog.Info("bootstrap data stored in the datastore, encrypted with the token")
	return secret, nil
}
