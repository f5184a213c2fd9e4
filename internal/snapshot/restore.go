package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.etcd.io/etcd/server/v3/storage/backend"
	"go.etcd.io/etcd/server/v3/storage/mvcc"
	"go.uber.org/zap"
)

// Member is who a restored data dir belongs to.
type Member struct {
	Name    string
	PeerURL string
}

// RestoreEtcd restores a snapshot (compressed or not) into dataDir, which
// must not exist, as a new one-member cluster of m. The snapshot's
// integrity hash is checked first; on any error dataDir is removed.
func RestoreEtcd(path, dataDir string, m Member) (err error) {
	scratch, err := os.MkdirTemp(filepath.Dir(dataDir), ".restore-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	defer func() {
		if err != nil {
			os.RemoveAll(dataDir)
		}
	}()
	db, err := plain(path, scratch)
	if err != nil {
		return err
	}
	err = snapshot.NewV3(zap.NewNop()).Restore(snapshot.RestoreConfig{
		SnapshotPath:   db,
		Name:           m.Name,
		OutputDataDir:  dataDir,
		PeerURLs:       []string{m.PeerURL},
		InitialCluster: m.Name + "=" + m.PeerURL,
	})
	if err != nil {
		return fmt.Errorf("restore %s: %w", filepath.Base(path), err)
	}
	return nil
}

// Store is a restored data dir opened for reading.
type Store struct {
	be backend.Backend
	kv mvcc.KV
}

// OpenStore opens the key-value store of a data dir no etcd is running on.
func OpenStore(dataDir string) (*Store, error) {
	db := filepath.Join(dataDir, "member", "snap", "db")
	if _, err := os.Stat(db); err != nil {
		return nil, err
	}
	be := backend.NewDefaultBackend(zap.NewNop(), db)
	return &Store{be: be, kv: mvcc.NewStore(zap.NewNop(), be, readLessor{}, mvcc.StoreConfig{})}, nil
}

// Close closes the store.
func (s *Store) Close() {
	s.kv.Close()
	s.be.Close()
}

// Revision is the store's current revision.
func (s *Store) Revision() int64 { return s.kv.Rev() }

// Count is the number of keys at rev.
func (s *Store) Count(ctx context.Context, rev int64) (int64, error) {
	r, err := s.kv.Range(ctx, []byte{0}, []byte{}, mvcc.RangeOptions{Rev: rev, CountOnly: true})
	if err != nil {
		return 0, err
	}
	return int64(r.Count), nil
}

// Get reads one key's current value; ok is false when it is absent.
func (s *Store) Get(ctx context.Context, key string) (value []byte, ok bool, err error) {
	r, err := s.kv.Range(ctx, []byte(key), nil, mvcc.RangeOptions{})
	if err != nil || len(r.KVs) == 0 {
		return nil, false, err
	}
	return r.KVs[0].Value, true, nil
}

// HashKV is the hash of the key space up to rev, with the revision it was
// compacted at: comparable with a live member's HashKV at the same
// revision when both were compacted at the same one.
func (s *Store) HashKV(rev int64) (hash uint32, compactRev int64, err error) {
	h, _, err := s.kv.HashStorage().HashByRev(rev)
	if err != nil {
		return 0, 0, err
	}
	return h.Hash, h.CompactRevision, nil
}
