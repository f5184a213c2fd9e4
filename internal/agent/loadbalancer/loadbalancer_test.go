package loadbalancer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/k3ha/k3ha/internal/testutil/logtest"
)

// backend is a stand-in API server: it greets each connection with its
// name, then echoes until the client half-closes, then closes.
type backend struct {
	t    *testing.T
	name string
	addr string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{t: t, name: name, conns: make(map[net.Conn]struct{})}
	b.listen("127.0.0.1:0")
	t.Cleanup(b.stop)
	return b
}

func (b *backend) listen(addr string) {
	b.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		b.t.Fatalf("backend %s: %v", b.name, err)
	}
	b.mu.Lock()
	b.ln, b.addr = ln, ln.Addr().String()
	b.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns[c] = struct{}{}
			b.mu.Unlock()
			go func() {
				defer func() {
					c.Close()
					b.mu.Lock()
					delete(b.conns, c)
					b.mu.Unlock()
				}()
				fmt.Fprintf(c, "%s\n", b.name)
				// Hide ReadFrom/WriteTo: a plain loop is enough here.
				io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, make([]byte, 32<<10))
			}()
		}
	}()
}

// stop is a server going away: no listener, and its connections closed.
func (b *backend) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ln != nil {
		b.ln.Close()
		b.ln = nil
	}
	for c := range b.conns {
		c.Close()
	}
}

// hang is a server cut off: new connections fail, but the open ones get
// neither data nor a close, as when packets are dropped.
func (b *backend) hang() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ln.Close()
	b.ln = nil
}

func (b *backend) restart() { b.listen(b.addr) }

func (b *backend) open() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

func fast(lb *LoadBalancer) {
	lb.dialTimeout = 500 * time.Millisecond
	lb.healthInterval = 20 * time.Millisecond
	lb.backoff = 50 * time.Millisecond
	lb.maxBackoff = 100 * time.Millisecond
	lb.deadAfter = 2
}

// start runs lb until the test ends and returns its cancel, which waits
// for Run to return.
func start(t *testing.T, lb *LoadBalancer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		lb.Run(ctx)
	}()
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after the context ended")
		}
	}
	t.Cleanup(stop)
	return stop
}

func newLB(t *testing.T, backends ...*backend) *LoadBalancer {
	t.Helper()
	var addrs []string
	for _, b := range backends {
		addrs = append(addrs, b.addr)
	}
	lb, err := New(0, filepath.Join(t.TempDir(), "lb.json"), addrs)
	if err != nil {
		t.Fatal(err)
	}
	fast(lb)
	start(t, lb)
	return lb
}

// conn is a client connection through the load balancer.
type conn struct {
	net.Conn
	r *bufio.Reader
}

// dial connects through lb and returns the connection and the name of
// the backend that answered.
func dial(lb *LoadBalancer) (*conn, string, error) {
	c, err := net.Dial("tcp", lb.Addr())
	if err != nil {
		return nil, "", err
	}
	c.SetDeadline(time.Now().Add(3 * time.Second))
	cc := &conn{Conn: c, r: bufio.NewReader(c)}
	name, err := cc.r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, "", fmt.Errorf("read greeting: %w", err)
	}
	return cc, strings.TrimSuffix(name, "\n"), nil
}

// who makes one short connection through lb, checks that it echoes, and
// returns the backend's name.
func who(t *testing.T, lb *LoadBalancer) string {
	t.Helper()
	c, name, err := dial(lb)
	if err != nil {
		t.Fatalf("connection through the load balancer: %v", err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.r.ReadString('\n'); err != nil || got != "ping\n" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	return name
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func isDown(lb *LoadBalancer, addr string) bool {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	s := lb.findLocked(addr)
	return s != nil && s.down
}

func byName(bs ...*backend) map[string]*backend {
	m := map[string]*backend{}
	for _, b := range bs {
		m[b.name] = b
	}
	return m
}

func TestRelaysBothWaysWithHalfClose(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	lb := newLB(t, a, b)
	if !strings.HasPrefix(lb.Addr(), "127.0.0.1:") || lb.URL() != "https://"+lb.Addr() {
		t.Fatalf("Addr() = %q, URL() = %q", lb.Addr(), lb.URL())
	}

	c, name, err := dial(lb)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if name != "a" && name != "b" {
		t.Fatalf("greeting %q", name)
	}
	// Send 4 MiB, then half-close: the backend must see the EOF (or it
	// would never close) and everything must come back before ours.
	payload := make([]byte, 4<<20)
	rand.Read(payload)
	go func() {
		c.Write(payload)
		c.Conn.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c.r)
	if err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("echo differs: got %d bytes, sent %d", len(got), len(payload))
	}
	waitFor(t, "the relay is gone", func() bool {
		lb.mu.Lock()
		defer lb.mu.Unlock()
		return len(lb.conns) == 0
	})
}

func TestFailoverSticksAndReturns(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	backends := byName(a, b)
	lb := newLB(t, a, b)

	first := who(t, lb)
	for range 5 {
		if got := who(t, lb); got != first {
			t.Fatalf("connection went to %s, want the preferred %s", got, first)
		}
	}
	other := map[string]string{"a": "b", "b": "a"}[first]

	// The preferred server stops: new connections go to the other.
	backends[first].stop()
	if got := who(t, lb); got != other {
		t.Fatalf("after %s stopped, connection went to %s", first, got)
	}
	if !isDown(lb, backends[first].addr) {
		t.Fatalf("%s not marked down after a failed dial", first)
	}

	// It comes back: the health check sees it, but the new preference
	// sticks.
	backends[first].restart()
	waitFor(t, first+" is healthy again", func() bool { return !isDown(lb, backends[first].addr) })
	for range 5 {
		if got := who(t, lb); got != other {
			t.Fatalf("connection went to %s, want the sticky %s", got, other)
		}
	}

	// Now the other fails: the one that came back is used again.
	backends[other].stop()
	if got := who(t, lb); got != first {
		t.Fatalf("after %s stopped, connection went to %s", other, got)
	}
}

func TestAllDownStillTried(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	lb := newLB(t, a, b)
	// A backoff longer than the test: only the "try the down ones too"
	// path can reach a server that comes back.
	lb.mu.Lock()
	lb.backoff, lb.maxBackoff = time.Hour, time.Hour
	lb.mu.Unlock()

	a.stop()
	b.stop()
	if _, _, err := dial(lb); err == nil {
		t.Fatal("connection succeeded with every server stopped")
	}
	waitFor(t, "both are down", func() bool { return isDown(lb, a.addr) && isDown(lb, b.addr) })

	b.restart()
	if got := who(t, lb); got != "b" {
		t.Fatalf("connection went to %s, want b, the only one up", got)
	}
	if isDown(lb, b.addr) {
		t.Fatal("b still marked down after a connection to it succeeded")
	}
}

func TestHangingServerConnectionsClosed(t *testing.T) {
	logs := logtest.Capture(t, slog.LevelInfo, logtest.Never)
	a, b := newBackend(t, "a"), newBackend(t, "b")
	backends := byName(a, b)
	lb := newLB(t, a, b)

	c, name, err := dial(lb)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hung := backends[name]
	hung.hang()

	// The backend never closes a connection by itself (only stop does,
	// or the client's EOF), so an EOF here comes from the load balancer.
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, err := c.r.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("read on a connection to the hanging server: n=%d err=%v, want EOF", n, err)
	}
	if got := who(t, lb); got == name {
		t.Fatalf("new connection went to the hanging server %s", name)
	}
	if !strings.Contains(logs.String(), "closing connections to an unreachable API server") {
		t.Errorf("no log line about the closed connections; logs:\n%s", logs)
	}
}

func TestSetServersClosesRemovedAndPersists(t *testing.T) {
	a, b, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
	backends := byName(a, b, c)
	statePath := filepath.Join(t.TempDir(), "sub", "lb.json")
	lb, err := New(0, statePath, []string{a.addr})
	if err != nil {
		t.Fatal(err)
	}
	fast(lb)
	start(t, lb)

	conn, name, err := dial(lb)
	if err != nil || name != "a" {
		t.Fatalf("first connection: %s, %v", name, err)
	}
	defer conn.Close()

	lb.SetServers([]string{b.addr, c.addr, b.addr, ""})
	if got, want := lb.Servers(), []string{b.addr, c.addr}; !slices.Equal(got, want) {
		t.Fatalf("Servers() = %v, want %v", got, want)
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.r.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("connection to the removed server: %v, want EOF", err)
	}
	if got := who(t, lb); got == "a" || backends[got] == nil {
		t.Fatalf("connection went to %q after a was removed", got)
	}

	fi, err := os.Stat(statePath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	data, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil || !slices.Equal(st.Servers, []string{b.addr, c.addr}) {
		t.Fatalf("state file %s: %v (%v)", data, st.Servers, err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(statePath), ".*tmp*")); len(left) > 0 {
		t.Errorf("temp files left: %v", left)
	}

	// A restart (listening anew) reads the file back, after the defaults.
	lb2, err := New(0, statePath, []string{a.addr, c.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer lb2.ln.Close()
	if got, want := lb2.Servers(), []string{a.addr, c.addr, b.addr}; !slices.Equal(got, want) {
		t.Fatalf("after restart Servers() = %v, want %v", got, want)
	}
	data, _ = os.ReadFile(statePath)
	if err := json.Unmarshal(data, &st); err != nil || !slices.Equal(st.Servers, []string{a.addr, c.addr, b.addr}) {
		t.Fatalf("New did not save the merged list: %s", data)
	}

	// A restart with no servers given still has the saved ones.
	lb3, err := New(0, statePath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lb3.ln.Close()
	if got := lb3.Servers(); len(got) != 3 {
		t.Fatalf("restart without servers: %v", got)
	}
}

func TestSetServersEmptyIgnored(t *testing.T) {
	logs := logtest.Capture(t, slog.LevelInfo, logtest.Never)
	a := newBackend(t, "a")
	statePath := filepath.Join(t.TempDir(), "lb.json")
	lb, err := New(0, statePath, []string{a.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.ln.Close()
	before, _ := os.ReadFile(statePath)

	lb.SetServers(nil)
	lb.SetServers([]string{"", ""})
	lb.SetServers([]string{"no-port"})
	if got := lb.Servers(); !slices.Equal(got, []string{a.addr}) {
		t.Fatalf("Servers() = %v after empty lists", got)
	}
	if after, _ := os.ReadFile(statePath); !bytes.Equal(before, after) {
		t.Fatalf("state file changed: %s -> %s", before, after)
	}
	out := logs.String()
	if n := strings.Count(out, "ignoring an empty server list"); n != 1 {
		t.Errorf("%d warnings about an empty list, want 1 (rate-limited):\n%s", n, out)
	}
	if !strings.Contains(out, "no-port") {
		t.Errorf("invalid address not named in the logs:\n%s", out)
	}
}

func TestRunEndClosesListenerAndConnections(t *testing.T) {
	a := newBackend(t, "a")
	lb, err := New(0, "", []string{a.addr})
	if err != nil {
		t.Fatal(err)
	}
	fast(lb)
	stop := start(t, lb)

	c, _, err := dial(lb)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	stop() // returns only once Run has returned
	if _, err := c.r.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("active connection after Run ended: %v, want EOF", err)
	}
	if c2, err := net.DialTimeout("tcp", lb.Addr(), time.Second); err == nil {
		c2.Close()
		t.Fatal("listener still accepts after Run ended")
	}
	waitFor(t, "the backend sees its connection closed", func() bool { return a.open() == 0 })
}

func TestWatch(t *testing.T) {
	logs := logtest.Capture(t, slog.LevelInfo, logtest.Never)
	lb, err := New(0, "", []string{"127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.ln.Close()

	var mu sync.Mutex
	calls := 0
	fetch := func(ctx context.Context) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		switch calls {
		case 1, 2:
			return nil, errors.New("server away")
		case 3:
			return nil, nil // empty: ignored
		default:
			return []string{"127.0.0.1:2", "127.0.0.1:3"}, nil
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		lb.Watch(ctx, 5*time.Millisecond, fetch)
	}()
	waitFor(t, "the fetched list is used", func() bool {
		return slices.Equal(lb.Servers(), []string{"127.0.0.1:2", "127.0.0.1:3"})
	})
	cancel()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Watch did not return after the context ended")
	}
	out := logs.String()
	if n := strings.Count(out, "cannot refresh the API server list"); n != 1 {
		t.Errorf("%d refresh warnings for 2 failures, want 1 (rate-limited):\n%s", n, out)
	}
	if !strings.Contains(out, "refreshed again") {
		t.Errorf("no recovery log line:\n%s", out)
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(0, filepath.Join(dir, "none.json"), nil); err == nil {
		t.Error("New with no servers and no file: no error")
	}
	if _, err := New(0, "", []string{"10.0.0.1"}); err == nil {
		t.Error("New with an address without port: no error")
	}

	// A damaged file is ignored, then replaced.
	statePath := filepath.Join(dir, "bad.json")
	os.WriteFile(statePath, []byte("{not json"), 0o600)
	lb, err := New(0, statePath, []string{"127.0.0.1:6443"})
	if err != nil {
		t.Fatalf("New with a damaged state file: %v", err)
	}
	defer lb.ln.Close()
	if data, _ := os.ReadFile(statePath); !strings.Contains(string(data), "127.0.0.1:6443") {
		t.Errorf("damaged state file not replaced: %s", data)
	}

	// The port is taken.
	if _, err := New(lb.ln.Addr().(*net.TCPAddr).Port, "", []string{"127.0.0.1:6443"}); err == nil {
		t.Error("New on a busy port: no error")
	}
}
