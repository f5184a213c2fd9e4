// Package loadbalancer is the agent's local port to the Kubernetes API.
// Every client on the node (kubelet, kube-proxy, the agent itself) dials
// 127.0.0.1:<port>; each connection is passed as plain TCP, TLS untouched,
// to one reachable server, so losing a server costs a reconnect, not the
// node.
package loadbalancer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
)

const (
	// defaultDialTimeout bounds one connect attempt to a server: a
	// partitioned server drops SYNs, and the client is waiting meanwhile.
	defaultDialTimeout = 2 * time.Second
	// defaultHealthInterval is how often every server is probed.
	defaultHealthInterval = 5 * time.Second
	// A server that failed is skipped for defaultBackoff, doubling on
	// each further failure up to defaultMaxBackoff.
	defaultBackoff    = 5 * time.Second
	defaultMaxBackoff = 15 * time.Second
	// defaultDeadAfter failed probes in a row make a server dead, and its
	// connections are closed. One failure could be a lost SYN under load;
	// killing every watch on it for that would cost a relist each.
	defaultDeadAfter = 2
	// halfCloseGrace is how long the other direction of a connection may
	// keep flowing after one side has finished sending. Clients of the
	// API never need long; without a bound a peer that never closes
	// would hold the connection forever.
	halfCloseGrace = 30 * time.Second
	// logEvery rate-limits warnings that would otherwise repeat on every
	// connection or every refresh while a problem lasts.
	logEvery = time.Minute
)

// LoadBalancer accepts connections on a loopback port and relays each to
// one API server. It prefers one server and sticks to it until it fails,
// so a node's connections do not flap between servers; the first
// preference is random, which spreads the nodes over the servers.
type LoadBalancer struct {
	ln        net.Listener
	statePath string

	// Timings; the tests shorten them before Run.
	dialTimeout    time.Duration
	healthInterval time.Duration
	backoff        time.Duration
	maxBackoff     time.Duration
	deadAfter      int

	// saveMu orders writes of the state file, so that of two concurrent
	// SetServers the file ends with the list that won in memory. It is
	// separate from mu so a slow disk never delays new connections.
	saveMu sync.Mutex

	mu        sync.Mutex
	servers   []*server
	preferred string
	conns     map[*relay]struct{}
	closed    bool // Run has ended; no new relays

	emptyLog   limiter
	allDownLog limiter
	acceptLog  limiter
}

// server is what the load balancer knows about one API server.
type server struct {
	addr string
	// down servers are tried only when no other server answers.
	down    bool
	backoff time.Duration
	// retryAt is the earliest a successful probe may bring a down server
	// back, so a flapping server is not picked again at once.
	retryAt    time.Time
	probeFails int // consecutive failed probes
}

// relay is one client connection and its connection to a server.
type relay struct {
	client, upstream net.Conn
	server           string
}

func (r *relay) close() {
	r.client.Close()
	r.upstream.Close()
}

// New listens on 127.0.0.1:port (0 picks a free port) and starts with
// servers ("host:port"), followed by those saved in statePath by an
// earlier run that servers does not already name: the server the agent
// first joined may be gone by the time it restarts. An empty statePath
// keeps nothing on disk.
func New(port int, statePath string, servers []string) (*LoadBalancer, error) {
	defaults, bad := clean(servers)
	if len(bad) > 0 {
		return nil, fmt.Errorf("load balancer: invalid server address(es) %q: want host:port", bad)
	}
	saved, err := load(statePath)
	if err != nil {
		return nil, err
	}
	list, _ := clean(append(slices.Clone(defaults), saved...)) // both are clean already
	if len(list) == 0 {
		return nil, fmt.Errorf("load balancer: no API server given and none saved in %q", statePath)
	}

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("load balancer: listen on %s: %w", addr, err)
	}
	lb := &LoadBalancer{
		ln:             ln,
		statePath:      statePath,
		dialTimeout:    defaultDialTimeout,
		healthInterval: defaultHealthInterval,
		backoff:        defaultBackoff,
		maxBackoff:     defaultMaxBackoff,
		deadAfter:      defaultDeadAfter,
		conns:          make(map[*relay]struct{}),
		preferred:      list[rand.IntN(len(list))],
		emptyLog:       limiter{every: logEvery},
		allDownLog:     limiter{every: logEvery},
		acceptLog:      limiter{every: logEvery},
	}
	for _, a := range list {
		lb.servers = append(lb.servers, &server{addr: a})
	}
	// Save at once, so the file names the servers even if no refresh
	// ever succeeds before the next restart.
	if !slices.Equal(list, saved) {
		if err := lb.save(list); err != nil {
			ln.Close()
			return nil, err
		}
	}
	return lb, nil
}

// Addr returns the listening address, "127.0.0.1:<port>".
func (lb *LoadBalancer) Addr() string { return lb.ln.Addr().String() }

// URL returns the address as an https URL for kubeconfigs. The servers'
// certificates carry 127.0.0.1, so TLS verifies through the relay.
func (lb *LoadBalancer) URL() string { return "https://" + lb.Addr() }

// Servers returns the current server list, in order.
func (lb *LoadBalancer) Servers() []string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.addrsLocked()
}

func (lb *LoadBalancer) addrsLocked() []string {
	out := make([]string, len(lb.servers))
	for i, s := range lb.servers {
		out[i] = s.addr
	}
	return out
}

// SetServers replaces the server list and saves it. What is known about
// servers that stay is kept; connections to servers that left are
// closed, since the cluster no longer counts them as API servers. An
// empty list is ignored: a node that forgets every server cannot recover.
func (lb *LoadBalancer) SetServers(servers []string) {
	list, bad := clean(servers)
	if len(bad) > 0 {
		slog.Warn("load balancer: ignoring invalid server addresses", "invalid", bad)
	}
	if len(list) == 0 {
		if lb.emptyLog.allow() {
			slog.Warn("load balancer: ignoring an empty server list; keeping the current one", "servers", lb.Servers())
		}
		return
	}

	lb.saveMu.Lock()
	defer lb.saveMu.Unlock()

	lb.mu.Lock()
	old := lb.addrsLocked()
	if slices.Equal(old, list) {
		lb.mu.Unlock()
		return
	}
	known := make(map[string]*server, len(lb.servers))
	for _, s := range lb.servers {
		known[s.addr] = s
	}
	lb.servers = lb.servers[:0:0]
	var added []string
	for _, a := range list {
		s, ok := known[a]
		if !ok {
			// Assume a new server is up; the first failed dial or probe
			// says otherwise.
			s = &server{addr: a}
			added = append(added, a)
		}
		delete(known, a)
		lb.servers = append(lb.servers, s)
	}
	var removed []string
	for a := range known {
		removed = append(removed, a)
	}
	slices.Sort(removed)
	if !slices.Contains(list, lb.preferred) {
		lb.preferred = list[rand.IntN(len(list))]
	}
	stale := lb.relaysLocked(func(r *relay) bool { _, gone := known[r.server]; return gone })
	lb.mu.Unlock()

	for _, r := range stale {
		r.close()
	}
	slog.Info("load balancer: server list changed", "servers", list, "added", added, "removed", removed,
		"closed_connections", len(stale))
	if err := lb.save(list); err != nil {
		slog.Error("load balancer: could not save the server list; a restart may not find the servers", "err", err)
	}
}

// Run serves until ctx ends, then closes the listener and every relayed
// connection and returns once all are gone. Call it once.
func (lb *LoadBalancer) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { lb.checkHealth(ctx) })
	stop := context.AfterFunc(ctx, func() { lb.ln.Close() })
	defer stop()

	for delay := time.Duration(0); ; {
		c, err := lb.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, net.ErrClosed) {
				slog.Error("load balancer: listener closed unexpectedly", "address", lb.Addr(), "err", err)
				break
			}
			// E.g. out of file descriptors: keep serving, but do not spin.
			delay = min(max(2*delay, 10*time.Millisecond), time.Second)
			if lb.acceptLog.allow() {
				slog.Warn("load balancer: accept failed", "address", lb.Addr(), "err", err)
			}
			if sleep(ctx, delay) != nil {
				break
			}
			continue
		}
		delay = 0
		wg.Go(func() { lb.serve(ctx, c) })
	}

	lb.ln.Close()
	lb.mu.Lock()
	lb.closed = true
	all := lb.relaysLocked(func(*relay) bool { return true })
	lb.mu.Unlock()
	for _, r := range all {
		r.close()
	}
	wg.Wait()
}

// serve relays one client connection to the first server that answers.
func (lb *LoadBalancer) serve(ctx context.Context, client net.Conn) {
	d := net.Dialer{Timeout: lb.dialTimeout}
	for _, addr := range lb.order() {
		upstream, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			lb.failed(addr, err, "dial")
			continue
		}
		lb.answered(addr)
		r := &relay{client: client, upstream: upstream, server: addr}
		if !lb.track(r) {
			r.close()
			return
		}
		pipe(client, upstream, halfCloseGrace)
		lb.untrack(r)
		return
	}
	if ctx.Err() == nil && lb.allDownLog.allow() {
		slog.Warn("load balancer: no API server answers; dropping client connections", "servers", lb.Servers())
	}
	client.Close()
}

// order lists the servers to try for a new connection: the preferred one
// first, then the rest in list order, with the healthy ones before those
// that failed recently. The failed ones still come last so that when
// every server is marked down, a connection is tried rather than refused.
func (lb *LoadBalancer) order() []string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	n := len(lb.servers)
	start := 0
	for i, s := range lb.servers {
		if s.addr == lb.preferred {
			start = i
		}
	}
	up := make([]string, 0, n)
	var down []string
	for i := range n {
		s := lb.servers[(start+i)%n]
		if s.down {
			down = append(down, s.addr)
		} else {
			up = append(up, s.addr)
		}
	}
	return append(up, down...)
}

// answered records a successful connection to addr: it is up, and it
// becomes the preferred server.
func (lb *LoadBalancer) answered(addr string) {
	lb.mu.Lock()
	s := lb.findLocked(addr)
	if s == nil { // removed while we dialled
		lb.mu.Unlock()
		return
	}
	back := s.down
	if back {
		s.down, s.backoff, s.probeFails = false, 0, 0
	}
	prev := lb.preferred
	lb.preferred = addr
	lb.mu.Unlock()

	if back {
		slog.Info("load balancer: API server answers again", "server", addr)
	}
	if prev != addr {
		slog.Info("load balancer: failed over to another API server", "server", addr, "previous", prev)
	}
}

// failed records that addr did not answer a dial or a probe.
func (lb *LoadBalancer) failed(addr string, cause error, by string) {
	lb.mu.Lock()
	s := lb.findLocked(addr)
	if s == nil {
		lb.mu.Unlock()
		return
	}
	wasUp := !s.down
	if wasUp {
		s.down, s.backoff = true, lb.backoff
	} else {
		s.backoff = min(2*s.backoff, lb.maxBackoff)
	}
	s.retryAt = time.Now().Add(s.backoff)
	backoff := s.backoff
	lb.mu.Unlock()

	if wasUp {
		slog.Warn("load balancer: API server unreachable; skipping it", "server", addr, "check", by,
			"retry_after", backoff, "err", cause)
	}
}

func (lb *LoadBalancer) findLocked(addr string) *server {
	for _, s := range lb.servers {
		if s.addr == addr {
			return s
		}
	}
	return nil
}

// checkHealth probes every server each interval until ctx ends. A TCP
// connect is all it checks: the load balancer holds no CA to speak TLS
// with, and a refused or unanswered connect is what a stopped or cut-off
// server looks like.
func (lb *LoadBalancer) checkHealth(ctx context.Context) {
	t := time.NewTicker(lb.healthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var wg sync.WaitGroup
		for _, addr := range lb.Servers() {
			wg.Go(func() {
				err := lb.probe(ctx, addr)
				if ctx.Err() == nil {
					lb.probed(addr, err)
				}
			})
		}
		// One round at a time, so slow probes cannot pile up.
		wg.Wait()
	}
}

func (lb *LoadBalancer) probe(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: lb.dialTimeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// probed records a probe's result. A down server comes back only after
// its backoff. A server that fails deadAfter probes in a row loses its
// connections: a cut-off server sends no reset, and clients would wait
// on them until TCP keepalive or retransmission gives up: minutes.
func (lb *LoadBalancer) probed(addr string, err error) {
	if err != nil {
		lb.failed(addr, err, "health")
	}
	lb.mu.Lock()
	s := lb.findLocked(addr)
	if s == nil {
		lb.mu.Unlock()
		return
	}
	if err == nil {
		s.probeFails = 0
		back := s.down && !time.Now().Before(s.retryAt)
		if back {
			s.down, s.backoff = false, 0
		}
		lb.mu.Unlock()
		if back {
			slog.Info("load balancer: API server healthy again", "server", addr)
		}
		return
	}
	s.probeFails++
	var dead []*relay
	if s.probeFails >= lb.deadAfter {
		dead = lb.relaysLocked(func(r *relay) bool { return r.server == addr })
	}
	fails := s.probeFails
	lb.mu.Unlock()

	if len(dead) > 0 {
		slog.Warn("load balancer: closing connections to an unreachable API server so clients reconnect elsewhere",
			"server", addr, "connections", len(dead), "failed_probes", fails)
		for _, r := range dead {
			r.close()
		}
	}
}

func (lb *LoadBalancer) track(r *relay) bool {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if lb.closed {
		return false
	}
	lb.conns[r] = struct{}{}
	return true
}

func (lb *LoadBalancer) untrack(r *relay) {
	lb.mu.Lock()
	delete(lb.conns, r)
	lb.mu.Unlock()
}

func (lb *LoadBalancer) relaysLocked(match func(*relay) bool) []*relay {
	var out []*relay
	for r := range lb.conns {
		if match(r) {
			out = append(out, r)
		}
	}
	return out
}

// Watch sets the server list from fetch every interval, starting now,
// until ctx ends. On errors the current list stays; they are logged at
// most once a minute, and recovery once.
func (lb *LoadBalancer) Watch(ctx context.Context, interval time.Duration, fetch func(context.Context) ([]string, error)) {
	errLog := limiter{every: logEvery}
	failing := false
	for {
		// Bound each fetch: the supervisor client retries until its
		// context ends, and a fetch must not outlive its round.
		fctx, cancel := context.WithTimeout(ctx, interval)
		list, err := fetch(fctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failing = true
			if errLog.allow() {
				slog.Warn("load balancer: cannot refresh the API server list; keeping the current one",
					"servers", lb.Servers(), "err", err)
			}
		} else {
			if failing {
				failing = false
				errLog.reset()
				slog.Info("load balancer: API server list refreshed again")
			}
			lb.SetServers(list)
		}
		if sleep(ctx, interval) != nil {
			return
		}
	}
}

// pipe copies both ways between a and b. When one side finishes sending
// (a clean EOF), that is passed on as a half-close and the other
// direction may go on for up to grace; any error, or the grace running
// out, closes both. It returns once both copies have stopped.
func pipe(a, b net.Conn, grace time.Duration) {
	done := make(chan error, 2)
	copyOne := func(dst, src net.Conn) {
		_, err := io.Copy(dst, src)
		if err == nil {
			err = closeWrite(dst)
		}
		done <- err
	}
	go copyOne(b, a)
	go copyOne(a, b)

	if err := <-done; err == nil {
		t := time.NewTimer(grace)
		select {
		case <-done:
			t.Stop()
			a.Close()
			b.Close()
			return
		case <-t.C:
		}
	}
	a.Close()
	b.Close()
	<-done
}

func closeWrite(c net.Conn) error {
	if hc, ok := c.(interface{ CloseWrite() error }); ok {
		return hc.CloseWrite()
	}
	return c.Close()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// clean returns the valid "host:port" entries of list without duplicates
// (first wins, order kept) and the invalid ones apart. Blank entries are
// dropped silently: they come from empty config values.
func clean(list []string) (ok, bad []string) {
	seen := make(map[string]bool, len(list))
	for _, a := range list {
		if a == "" {
			continue
		}
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" {
			bad = append(bad, a)
			continue
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			bad = append(bad, a)
			continue
		}
		if !seen[a] {
			seen[a] = true
			ok = append(ok, a)
		}
	}
	return ok, bad
}

// limiter says yes at most once per every; the first call always passes.
type limiter struct {
	mu    sync.Mutex
	every time.Duration
	last  time.Time
}

func (l *limiter) allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		return false
	}
	l.last = now
	return true
}

func (l *limiter) reset() {
	l.mu.Lock()
	l.last = time.Time{}
	l.mu.Unlock()
}
