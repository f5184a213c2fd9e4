package migrate

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"

	// The same SQLite driver kine uses (cgo); it registers "sqlite3".
	_ "github.com/mattn/go-sqlite3"
)

// kv is one current key of the source: its latest row, not deleted.
type kv struct {
	key   string
	value []byte
	rev   int64 // kine's revision of that row (its id)
	lease int64 // kine stores the lease's TTL in seconds; 0 for none
}

// internalKey reports whether kine keeps the key for itself. The apiserver
// writes its own compact_rev_key in etcd, and gap rows only fill revisions.
func internalKey(k string) bool {
	switch k {
	case "compact_rev_key", "compact_rev_key_apiserver", "/registry/health":
		return true
	}
	return strings.HasPrefix(k, "gap-")
}

// source reads kine's table in a SQLite file without changing it: the file
// is opened read-only, so neither a checkpoint nor kine's start-up VACUUM
// touches it, and a failed migration leaves it byte for byte as it was.
type source struct {
	db   *sql.DB
	path string
}

func openSource(path string) (*source, error) {
	// After a clean stop all data is in the file itself: immutable keeps
	// SQLite from even creating the -wal and -shm files a reader of a WAL
	// database otherwise makes. A server that was killed leaves a WAL with
	// data in it; mode=ro reads it (the -shm index may then be rebuilt).
	query := "mode=ro&immutable=1"
	if st, err := os.Stat(path + "-wal"); err == nil && st.Size() > 0 {
		query = "mode=ro&_busy_timeout=30000"
	}
	dsn := (&url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: query}).String()
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open SQLite %s: %w", path, err)
	}
	// One connection: every read sees the same snapshot of a file nobody writes.
	db.SetMaxOpenConns(1)
	var n int
	err = db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'kine'`).Scan(&n)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("read SQLite %s: %w", path, err)
	}
	if n == 0 {
		db.Close()
		return nil, fmt.Errorf("SQLite %s has no kine table: it is not a k3ha datastore", path)
	}
	return &source{db: db, path: path}, nil
}

func (s *source) Close() error { return s.db.Close() }

// current selects each key's latest row if that row is not a deletion.
const current = `
	SELECT kv.id, kv.name, kv.lease, kv.value
	FROM kine AS kv
	JOIN (SELECT MAX(id) AS id FROM kine GROUP BY name) AS latest ON kv.id = latest.id
	WHERE kv.deleted = 0`

// count is the number of keys a migration copies.
func (s *source) count(ctx context.Context) (int, error) {
	n := 0
	err := s.each(ctx, "", func(kv) error { n++; return nil })
	return n, err
}

// each calls fn for every current key that is not kine's own, in the order
// given (an SQL ORDER BY clause). SQLite orders TEXT bytewise, as etcd does.
func (s *source) each(ctx context.Context, order string, fn func(kv) error) error {
	rows, err := s.db.QueryContext(ctx, current+" "+order)
	if err != nil {
		return fmt.Errorf("read SQLite %s: %w", s.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r     kv
			lease sql.NullInt64
		)
		if err := rows.Scan(&r.rev, &r.key, &lease, &r.value); err != nil {
			return fmt.Errorf("read SQLite %s: %w", s.path, err)
		}
		if internalKey(r.key) {
			continue
		}
		r.lease = lease.Int64
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read SQLite %s: %w", s.path, err)
	}
	return nil
}
