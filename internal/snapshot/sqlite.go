package snapshot

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/mattn/go-sqlite3"
)

// SaveSQLite copies a running server's SQLite datastore with SQLite's
// online backup, consistent while kine writes, into dir as
// <name>-<node>-<unix time>.db (zstd-compressed with compress), then
// checks the copy (integrity_check, and its rows counted).
func SaveSQLite(ctx context.Context, dbPath, dir, name, node string, compress bool) (Info, error) {
	now := time.Now()
	file := FileName(name, node, now) + SQLiteSuffix
	info := Info{Name: file, Node: node, Created: now, Kind: "sqlite"}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return info, fmt.Errorf("snapshot dir: %w", err)
	}
	part := filepath.Join(dir, file+".part")
	defer os.Remove(part)
	if err := backup(ctx, dbPath, part); err != nil {
		return info, fmt.Errorf("sqlite backup of %s: %w", dbPath, err)
	}
	keys, err := checkSQLite(ctx, part)
	if err != nil {
		return info, fmt.Errorf("sqlite backup of %s: %w", dbPath, err)
	}
	info.Keys, info.Verified = keys, true
	info.VerifyLog = fmt.Sprintf("integrity_check ok, %d rows", keys)
	if compress {
		if err := compressFile(part); err != nil {
			return info, err
		}
		file += ZstdSuffix
		info.Name = file
	}
	if err := os.Rename(part, filepath.Join(dir, file)); err != nil {
		return info, err
	}
	st, err := os.Stat(filepath.Join(dir, file))
	if err != nil {
		return info, err
	}
	info.Size, info.Location = st.Size(), "file://"+filepath.Join(dir, file)
	lastVerified.Set(float64(now.Unix()))
	return info, saveMeta(dir, info)
}

func backup(ctx context.Context, src, dst string) error {
	srcDB, err := sql.Open("sqlite3", "file:"+src+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		return err
	}
	defer srcDB.Close()
	dstDB, err := sql.Open("sqlite3", "file:"+dst)
	if err != nil {
		return err
	}
	defer dstDB.Close()
	srcConn, err := srcDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer srcConn.Close()
	dstConn, err := dstDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer dstConn.Close()
	return dstConn.Raw(func(d any) error {
		return srcConn.Raw(func(s any) error {
			b, err := d.(*sqlite3.SQLiteConn).Backup("main", s.(*sqlite3.SQLiteConn), "main")
			if err != nil {
				return err
			}
			// All pages in one step: a consistent copy even while kine writes.
			if _, err := b.Step(-1); err != nil {
				b.Finish()
				return err
			}
			return b.Finish()
		})
	})
}

// checkSQLite runs SQLite's integrity check on a copy and counts kine's rows.
func checkSQLite(ctx context.Context, path string) (int64, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var result string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&result); err != nil {
		return 0, err
	}
	if result != "ok" {
		return 0, fmt.Errorf("integrity check: %s", result)
	}
	var n int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM kine").Scan(&n); err != nil {
		return 0, fmt.Errorf("count kine rows: %w", err)
	}
	return n, nil
}

// compressFile replaces path's content with its zstd compression.
func compressFile(path string) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := path + ".zst"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	zw, err := zstd.NewWriter(out)
	if err != nil {
		out.Close()
		return err
	}
	if _, err := io.Copy(zw, in); err != nil {
		out.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
