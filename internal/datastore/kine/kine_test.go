package kine

import (
	"net/url"
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
