// Package migrate moves a server's SQLite datastore into embedded etcd, for
// a single server restarted with --cluster-init.
//
// It copies every current key of kine's table (skipping kine's own
// bookkeeping keys) into a new etcd member built in a staging directory, in
// the order of kine's revisions, then compares the key sets and the SHA-256
// of every value between the two. Only then does the staging directory
// become the etcd data dir (one rename) and the SQLite file get renamed
// aside, never deleted. Until that rename nothing the server uses has
// changed: the SQLite file is opened read-only, so a failure or a crash at
// any point leaves it as it was, and the next start deletes the leftover
// staging directory and tries again.
//
// etcd numbers its revisions from 1, so resource versions start over:
// clients' watches end and they list again, as after any etcd restore.
package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/k3ha/k3ha/internal/datastore/etcd"
	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/pki"
)

// Options describe one migration.
type Options struct {
	Layout layout.Server
	// Etcd is this node's member: the new etcd is built as it, so that it
	// starts as this node's first etcd member once in place.
	Etcd etcd.Config
	// ProgressEvery paces the progress lines; 5s when zero.
	ProgressEvery time.Duration
}

// Result is what a migration did.
type Result struct {
	Keys   int
	Bytes  int64  // of values
	KeptAs string // where the SQLite file is now
	Took   time.Duration
}

// markerFile, inside the etcd data dir, records a migration: it names the
// SQLite file's new name so that a rename a crash interrupted can be
// finished by the next start.
const markerFile = "migrated-from-sqlite.json"

type marker struct {
	SQLite     string    `json:"sqlite"`
	KeptAs     string    `json:"keptAs"`
	Keys       int       `json:"keys"`
	MigratedAt time.Time `json:"migratedAt"`
}

// afterBatch, when set by a test, runs after each written transaction and
// may fail the migration there.
var afterBatch func(copied int) error

// Needed reports whether a server about to found a new etcd cluster must
// migrate first: it holds SQLite data and no etcd data.
func Needed(l layout.Server) bool {
	_, err := os.Stat(l.SQLiteFile())
	return err == nil && !etcd.HasData(l)
}

// Run migrates the SQLite data of opts.Layout into a new etcd data dir.
// On error the SQLite file is unchanged and no etcd data dir exists.
func Run(ctx context.Context, opts Options) (res Result, err error) {
	begin := time.Now()
	l := opts.Layout
	every := opts.ProgressEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	if etcd.HasData(l) {
		return res, fmt.Errorf("%s already holds etcd data; there is nothing to migrate into", l.EtcdDir())
	}
	staging := l.EtcdMigrateDir()
	if _, err := os.Stat(staging); err == nil {
		slog.Info("removing the unfinished migration of an earlier attempt", "dir", staging)
	}
	if err := os.RemoveAll(staging); err != nil {
		return res, fmt.Errorf("remove the unfinished migration in %s: %w", staging, err)
	}

	src, err := openSource(l.SQLiteFile())
	if err != nil {
		return res, err
	}
	defer src.Close()
	total, err := src.count(ctx)
	if err != nil {
		return res, err
	}
	slog.Info("migrating SQLite data into etcd", "keys", total, "sqlite", l.SQLiteFile(), "staging", staging)

	stagingBegin := time.Now()
	st, err := etcd.StartStaging(ctx, opts.Etcd, staging)
	stagingTook := time.Since(stagingBegin)
	if err != nil {
		_ = os.RemoveAll(staging)
		return res, fmt.Errorf("start the new etcd: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			st.Stop()
			if rmErr := os.RemoveAll(staging); rmErr != nil {
				slog.Warn("could not remove the unfinished migration; the next start removes it", "dir", staging, "err", rmErr)
			}
		}
	}()

	cp := newCopier(st.Client(), st.MaxTxnOps(), st.MaxRequestBytes(), total, every)
	cp.afterCommit = afterBatch
	if err := src.each(ctx, "ORDER BY kv.id", func(r kv) error { return cp.add(ctx, r) }); err != nil {
		return res, err
	}
	if err := cp.flush(ctx); err != nil {
		return res, err
	}
	slog.Info("migration copied every key; verifying", "keys", cp.copied, "bytes", cp.copiedBytes,
		"took", time.Since(begin).Round(time.Millisecond), "etcd_start", stagingTook.Round(time.Millisecond))

	matched, diff, err := verify(ctx, src, st.Client(), cp.leases)
	if err != nil {
		return res, fmt.Errorf("verify: %w", err)
	}
	if diff.any() {
		return res, fmt.Errorf("verification found differences between SQLite and the new etcd: %w", diff)
	}
	slog.Info("migration verified: etcd holds every key with the same value", "keys", matched, "expired_meanwhile", diff.expired)

	keptAs := l.SQLiteFile() + ".migrated-" + begin.UTC().Format("20060102T150405Z")
	m := marker{SQLite: filepath.Base(l.SQLiteFile()), KeptAs: filepath.Base(keptAs), Keys: matched, MigratedAt: begin.UTC()}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return res, err
	}
	if err := pki.WriteFileAtomic(filepath.Join(staging, markerFile), append(data, '\n'), 0o600); err != nil {
		return res, fmt.Errorf("record the migration: %w", err)
	}
	st.Stop()
	src.Close()
	if err := syncTree(staging); err != nil {
		return res, fmt.Errorf("flush the new etcd data to disk: %w", err)
	}
	// A dir without etcd data (HasData was false) is debris, e.g. the
	// config file of a start that failed before etcd wrote anything.
	if err := os.RemoveAll(l.EtcdDir()); err != nil {
		return res, fmt.Errorf("remove %s, which holds no etcd data: %w", l.EtcdDir(), err)
	}
	if err := os.Rename(staging, l.EtcdDir()); err != nil {
		return res, fmt.Errorf("move the new etcd data into place: %w", err)
	}
	committed = true
	if err := syncDir(l.DBDir()); err != nil {
		return res, fmt.Errorf("flush %s: %w", l.DBDir(), err)
	}

	// From here the etcd data is this node's datastore. A failure to rename
	// the SQLite file does not undo that; the next start finishes it.
	res = Result{Keys: matched, Bytes: cp.copiedBytes, KeptAs: keptAs, Took: time.Since(begin)}
	if _, err := Finish(l); err != nil {
		slog.Warn("the migration is complete but the SQLite file could not be renamed; the next start tries again", "err", err)
	}
	slog.Info("migrated SQLite data into etcd", "keys", res.Keys, "bytes", res.Bytes,
		"took", res.Took.Round(time.Millisecond), "sqlite_kept_as", keptAs)
	return res, nil
}

// Finish renames the SQLite file (and its -wal and -shm companions) as the
// migration recorded in the etcd data dir says, if that has not happened
// yet; a crash between moving the etcd data into place and this rename
// leaves it to the next start. It reports whether it renamed anything.
func Finish(l layout.Server) (bool, error) {
	data, err := os.ReadFile(filepath.Join(l.EtcdDir(), markerFile))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read the migration record: %w", err)
	}
	var m marker
	if err := json.Unmarshal(data, &m); err != nil || m.SQLite == "" || m.KeptAs == "" ||
		filepath.Base(m.SQLite) != m.SQLite || filepath.Base(m.KeptAs) != m.KeptAs {
		return false, fmt.Errorf("the migration record %s is damaged", filepath.Join(l.EtcdDir(), markerFile))
	}
	renamed := false
	for _, suffix := range []string{"", "-wal", "-shm"} {
		from := filepath.Join(l.DBDir(), m.SQLite+suffix)
		to := filepath.Join(l.DBDir(), m.KeptAs+suffix)
		if _, err := os.Stat(from); err != nil {
			continue
		}
		if err := os.Rename(from, to); err != nil {
			return renamed, fmt.Errorf("rename %s: %w", from, err)
		}
		renamed = true
	}
	if renamed {
		if err := syncDir(l.DBDir()); err != nil {
			return renamed, err
		}
		slog.Info("SQLite file kept after migration to etcd; the server no longer uses it", "kept_as", filepath.Join(l.DBDir(), m.KeptAs))
	}
	return renamed, nil
}

// syncTree fsyncs every file and directory under root, so that the rename
// which publishes it cannot reach the disk before its contents.
func syncTree(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil
		}
		return syncPath(path)
	})
}

func syncDir(dir string) error { return syncPath(dir) }

func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return nil
}
