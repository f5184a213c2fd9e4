package datastore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"
)

// Backoff paces the retries of an unreachable datastore: it doubles from
// First up to Max.
type Backoff struct {
	First, Max time.Duration
}

// DefaultBackoff starts at one second and settles at thirty.
var DefaultBackoff = Backoff{First: time.Second, Max: 30 * time.Second}

// Addresses returns the host:port pairs an external datastore endpoint
// (kine's DSN forms) connects to, for checking that they answer before the
// database driver tries. Forms it cannot read, unix sockets and SQLite files
// give none: the driver alone decides about those.
func Addresses(dsn string) []string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return nil
	}
	switch scheme {
	case "postgres", "postgresql":
		// user:password@host[:port][,host2[:port]]/database?params; the
		// password may hold '@' or '/', so the hosts follow the last '@'.
		hosts := rest[strings.LastIndex(rest, "@")+1:]
		if i := strings.IndexAny(hosts, "/?"); i >= 0 {
			hosts = hosts[:i]
		}
		var out []string
		for _, h := range strings.Split(hosts, ",") {
			if h != "" {
				out = append(out, withPort(h, "5432"))
			}
		}
		return out
	case "mysql":
		// user:password@tcp(host:port)/database; the password may hold any
		// character, so the address is found after the last '@'.
		at := strings.LastIndex(rest, "@")
		addr := rest[at+1:]
		if !strings.HasPrefix(addr, "tcp(") {
			return nil
		}
		end := strings.Index(addr, ")")
		if end < 0 {
			return nil
		}
		return []string{withPort(addr[len("tcp("):end], "3306")}
	case "http", "https":
		// A list of etcd client URLs.
		var out []string
		for _, e := range strings.Split(dsn, ",") {
			if u, err := url.Parse(strings.TrimSpace(e)); err == nil && u.Host != "" {
				out = append(out, withPort(u.Host, "2379"))
			}
		}
		return out
	}
	return nil
}

func withPort(host, port string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// dialTimeout bounds one connection attempt.
const dialTimeout = 5 * time.Second

// WaitReachable returns once one of addrs accepts a TCP connection, trying
// again with backoff and logging each failed attempt, until ctx ends. It
// does not log the endpoint itself, which may hold a password.
func WaitReachable(ctx context.Context, addrs []string, b Backoff) error {
	return waitReachable(ctx, addrs, b, (&net.Dialer{Timeout: dialTimeout}).DialContext)
}

func waitReachable(ctx context.Context, addrs []string, b Backoff, dial func(ctx context.Context, network, addr string) (net.Conn, error)) error {
	if len(addrs) == 0 {
		return nil
	}
	wait := b.First
	for attempt := 1; ; attempt++ {
		var errs []error
		for _, a := range addrs {
			c, err := dial(ctx, "tcp", a)
			if err == nil {
				c.Close()
				if attempt > 1 {
					slog.Info("datastore reachable", "address", a, "attempts", attempt)
				}
				return nil
			}
			errs = append(errs, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("waiting for the datastore at %s: %w", strings.Join(addrs, ","), context.Cause(ctx))
		}
		slog.Warn("datastore not reachable; retrying", "address", strings.Join(addrs, ","), "attempt", attempt,
			"retry_in", wait, "err", errors.Join(errs...))
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the datastore at %s: %w", strings.Join(addrs, ","), context.Cause(ctx))
		case <-time.After(wait):
		}
		wait = min(2*wait, b.Max)
	}
}
