package datastore

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAddresses(t *testing.T) {
	cases := map[string][]string{
		"postgres://k3ha:s3cr@t@10.0.0.5:5433/k3ha?sslmode=disable": {"10.0.0.5:5433"},
		"postgres://k3ha:pw@db.example/k3ha":                        {"db.example:5432"},
		"postgres://k3ha:a/b@c@db:5432/k3ha":                        {"db:5432"},
		"postgresql://u:p@a:1,b/db":                                 {"a:1", "b:5432"},
		"mysql://k3ha:p@ss)(@tcp(10.0.0.6:3307)/k3ha":               {"10.0.0.6:3307"},
		"mysql://k3ha:pw@tcp(db)/k3ha":                              {"db:3306"},
		"mysql://k3ha:pw@unix(/run/mysqld.sock)/k3ha":               nil,
		"https://10.0.0.7:2379,https://10.0.0.8:2379":               {"10.0.0.7:2379", "10.0.0.8:2379"},
		"https://[fd00::1]":                                         {"[fd00::1]:2379"},
		"sqlite:///var/lib/k3ha/state.db":                           nil,
		"nonsense":                                                  nil,
	}
	for dsn, want := range cases {
		if got := Addresses(dsn); !slices.Equal(got, want) {
			t.Errorf("Addresses(%q) = %v, want %v", dsn, got, want)
		}
	}
}

func TestWaitReachableRetriesWithBackoff(t *testing.T) {
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	defer slog.SetDefault(old)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tries := 0
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		tries++
		if tries < 4 {
			return nil, errors.New("connection refused")
		}
		return net.Dial(network, ln.Addr().String())
	}
	begin := time.Now()
	if err := waitReachable(context.Background(), []string{"db:5432"}, Backoff{First: time.Millisecond, Max: 4 * time.Millisecond}, dial); err != nil {
		t.Fatal(err)
	}
	if tries != 4 || time.Since(begin) > time.Second {
		t.Errorf("%d tries in %v", tries, time.Since(begin))
	}
	log := buf.String()
	for _, want := range []string{"attempt=1 retry_in=1ms", "attempt=2 retry_in=2ms", "attempt=3 retry_in=4ms", `msg="datastore reachable" address=db:5432 attempts=4`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	// Cancelling ends the wait at once.
	ctx, cancel := context.WithCancel(context.Background())
	never := func(ctx context.Context, network, addr string) (net.Conn, error) {
		cancel()
		return nil, errors.New("connection refused")
	}
	if err := waitReachable(ctx, []string{"db:5432"}, Backoff{First: time.Hour, Max: time.Hour}, never); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
	}
}
