package snapshot

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Live is the member a snapshot was taken from, to compare with.
type Live interface {
	// HashKV is the member's hash of its key space up to rev and the
	// revision it is compacted at.
	HashKV(ctx context.Context, rev int64) (hash uint32, compactRev int64, err error)
	// Count is its number of keys at rev.
	Count(ctx context.Context, rev int64) (int64, error)
}

// Verify proves a snapshot restorable: its integrity hash, then a restore
// into a scratch directory, opened to count its keys and hash its key space
// at the snapshot's revision, compared with what the live member reports
// at that revision. The result is recorded on info and beside the file.
func Verify(ctx context.Context, dir string, info *Info, live Live) error {
	err := verify(ctx, dir, info, live)
	info.Verified = err == nil
	info.Error = ""
	if err != nil {
		info.Error = err.Error()
		slog.Warn("snapshot failed its check; it does not count toward retention", "snapshot", info.Name, "err", err)
	} else {
		lastVerified.Set(float64(time.Now().Unix()))
		slog.Info("snapshot verified by a trial restore", "snapshot", info.Name, "revision", info.Revision, "keys", info.Keys)
	}
	if serr := saveMeta(dir, *info); serr != nil && err == nil {
		err = serr
	}
	return err
}

func verify(ctx context.Context, dir string, info *Info, live Live) error {
	registerMetric.Do(func() { legacyregistry.MustRegister(lastVerified) })
	path := filepath.Join(dir, info.Name)
	if err := CheckIntegrity(path); err != nil {
		return err
	}
	scratch, err := os.MkdirTemp(dir, ".verify-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	restored := filepath.Join(scratch, "data")
	if err := RestoreEtcd(path, restored, Member{Name: "verify", PeerURL: "http://127.0.0.1:2380"}); err != nil {
		return fmt.Errorf("trial restore: %w", err)
	}
	st, err := OpenStore(restored)
	if err != nil {
		return fmt.Errorf("trial restore: open: %w", err)
	}
	defer st.Close()
	rev := st.Revision()
	keys, err := st.Count(ctx, rev)
	if err != nil {
		return fmt.Errorf("trial restore: count keys: %w", err)
	}
	hash, compact, err := st.HashKV(rev)
	if err != nil {
		return fmt.Errorf("trial restore: hash: %w", err)
	}
	info.Revision, info.Keys, info.Hash = rev, keys, hash
	if live == nil {
		info.VerifyLog = fmt.Sprintf("restored: %d keys at revision %d (no live member to compare with)", keys, rev)
		return nil
	}
	liveKeys, err := live.Count(ctx, rev)
	if err != nil {
		return fmt.Errorf("count the live member's keys at revision %d: %w", rev, err)
	}
	if liveKeys != keys {
		return fmt.Errorf("trial restore has %d keys at revision %d, the live member %d", keys, rev, liveKeys)
	}
	liveHash, liveCompact, err := live.HashKV(ctx, rev)
	switch {
	case err != nil:
		// Compacted past the snapshot since: the keys matched, the hash
		// cannot be compared any more.
		info.VerifyLog = fmt.Sprintf("%d keys at revision %d match; hash not compared: %v", keys, rev, err)
	case liveCompact != compact:
		info.VerifyLog = fmt.Sprintf("%d keys at revision %d match; hash not compared (compacted at %d since, snapshot at %d)", keys, rev, liveCompact, compact)
	case liveHash != hash:
		return fmt.Errorf("trial restore's key space hash at revision %d is %08x, the live member's %08x", rev, hash, liveHash)
	default:
		info.VerifyLog = fmt.Sprintf("%d keys and key space hash %08x at revision %d match the live member", keys, hash, rev)
	}
	return nil
}

// ClientLive compares with the member behind an etcd client.
type ClientLive struct {
	Client   *clientv3.Client
	Endpoint string
}

func (l ClientLive) HashKV(ctx context.Context, rev int64) (uint32, int64, error) {
	r, err := l.Client.HashKV(ctx, l.Endpoint, rev)
	if err != nil {
		return 0, 0, err
	}
	return r.Hash, r.CompactRevision, nil
}

func (l ClientLive) Count(ctx context.Context, rev int64) (int64, error) {
	r, err := l.Client.Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithCountOnly(), clientv3.WithRev(rev), clientv3.WithSerializable())
	if err != nil {
		return 0, err
	}
	return r.Count, nil
}

var (
	lastVerified = metrics.NewGauge(&metrics.GaugeOpts{
		Name:           "k3ha_etcd_snapshot_last_verified_timestamp_seconds",
		Help:           "Unix time of the last etcd snapshot proven restorable by a trial restore.",
		StabilityLevel: metrics.ALPHA,
	})
	registerMetric sync.Once
)
