package kine

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// The embedded store runs with kine's own SQLite settings, the prepared
// statement cache among them.
func TestSQLiteDSN(t *testing.T) {
	dsn := SQLiteDSN("/var/lib/k3ha/server/db/state.db")
	path, raw, ok := strings.Cut(dsn, "?")
	if !ok || path != "sqlite:///var/lib/k3ha/server/db/state.db" {
		t.Fatalf("SQLiteDSN = %q", dsn)
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"_journal_mode": "WAL", "_synchronous": "NORMAL", "_txlock": "immediate", "_stmt_cache_size": "20"} {
		if got := q.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// A DSN scheme kine has no driver for is named, with the ones to use.
func TestUnknownScheme(t *testing.T) {
	dir := t.TempDir()
	k := New(Config{DSN: "mongodb://user:secret@db/k3ha", Socket: filepath.Join(dir, "kine.sock")})
	err := k.Start(context.Background())
	if err == nil {
		_ = k.Stop()
		t.Fatal("a mongodb:// endpoint started")
	}
	for _, want := range []string{"--datastore-endpoint", `"mongodb"`, "postgres://"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error %q shows the password", err)
	}
}
