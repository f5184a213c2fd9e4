// Package etcd runs an embedded etcd member inside the k3ha process: a new
// cluster, a restart from its own data, or a join as a learner that is
// promoted once it has caught up. Clients and peers use mutual TLS.
package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/types"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/k3ha/k3ha/internal/datastore"
	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/logging"
	"github.com/k3ha/k3ha/internal/pki"
)

// Config describes this node's etcd member.
type Config struct {
	Name      string // member name = node name
	Layout    layout.Server
	NodeIP    net.IP
	ExtraArgs []string // --etcd-arg values, key=value
	// ForceNewCluster makes an existing member the only member of its
	// cluster, keeping its data (--cluster-reset).
	ForceNewCluster bool
}

// Mode says how the member comes up.
type Mode int

const (
	// NewCluster bootstraps a one-member cluster.
	NewCluster Mode = iota
	// Existing restarts from the data on disk.
	Existing
	// Join adds this node to a running cluster as a learner, then promotes it.
	Join
)

func (m Mode) String() string {
	switch m {
	case NewCluster:
		return "new cluster"
	case Existing:
		return "existing data"
	case Join:
		return "join"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

const (
	dialTimeout = 10 * time.Second
	callTimeout = 10 * time.Second
	// memberPoll is how often the member list is checked for changes.
	memberPoll = 5 * time.Second
)

// quorumLogEvery paces the lines of a start that waits for peers (a
// variable so that tests need not wait that long).
var quorumLogEvery = 10 * time.Second

// Member is one etcd cluster member.
type Member struct {
	ID         uint64
	Name       string // empty for a learner that has not started yet
	PeerURLs   []string
	ClientURLs []string
	IsLearner  bool
}

// Etcd is the embedded etcd member of this node.
type Etcd struct {
	cfg           Config
	mode          Mode
	joinEndpoints []string
	endpoint      datastore.Endpoint

	srv       *embed.Etcd
	local     localServer
	failFast  failFast
	client    *clientv3.Client
	closeOnce sync.Once
	stopOnce  sync.Once
	cancel    context.CancelFunc // ends the member watcher
	wg        sync.WaitGroup
	stopping  chan struct{}
	done      chan struct{}

	mu  sync.Mutex
	err error
}

// New prepares the member; nothing runs until Start. joinEndpoints are
// client URLs of existing members, used only by Join.
func New(cfg Config, mode Mode, joinEndpoints []string) *Etcd {
	l := cfg.Layout
	return &Etcd{
		cfg:           cfg,
		mode:          mode,
		joinEndpoints: joinEndpoints,
		endpoint:      endpointFor(l, httpsURL("127.0.0.1", clientPort)),
		stopping:      make(chan struct{}),
		done:          make(chan struct{}),
	}
}

func endpointFor(l layout.Server, server string) datastore.Endpoint {
	return datastore.Endpoint{
		Servers:  []string{server},
		CAFile:   l.Cert(layout.EtcdServerCA),
		CertFile: l.Cert(layout.EtcdClient),
		KeyFile:  l.Key(layout.EtcdClient),
	}
}

func (e *Etcd) Name() string { return "datastore (etcd)" }

// Listen binds the port the apiserver reaches the member on (see
// localServer), so that a build of the apiserver started before Start
// connects at once; Start binds it otherwise. Endpoint names it from then.
func (e *Etcd) Listen() error {
	if err := e.local.listen(); err != nil {
		return err
	}
	e.endpoint = endpointFor(e.cfg.Layout, e.local.url())
	return nil
}

// Endpoint is how the apiserver reaches the local member.
func (e *Etcd) Endpoint() datastore.Endpoint { return e.endpoint }

// Client is k3ha's own client to the local member; valid after Start.
func (e *Etcd) Client() *clientv3.Client { return e.client }

// Done is closed when the server has stopped, for whatever reason.
func (e *Etcd) Done() <-chan struct{} { return e.done }

// Err is why the server stopped on its own; nil after Stop.
func (e *Etcd) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// Start brings the member up and returns once it serves: ready, with
// quorum, and (for Join) promoted to a voting member. It waits for quorum
// until ctx ends.
func (e *Etcd) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil && e.srv == nil {
			e.local.stop() // bound by Listen, etcd never ran
		}
	}()
	cfg := e.cfg
	l := cfg.Layout
	if cfg.Name == "" {
		return errors.New("etcd: member name is empty")
	}
	if cfg.NodeIP == nil || cfg.NodeIP.IsUnspecified() {
		return fmt.Errorf("etcd: node IP %v cannot be advertised to peers", cfg.NodeIP)
	}
	// Before a join changes the cluster: nothing may fail once it has.
	if err := e.Listen(); err != nil {
		return err
	}
	user, err := parseArgs(cfg.ExtraArgs)
	if err != nil {
		return err
	}
	// Name, peer URLs and certificates as the user may have overridden them.
	eff := render(cfg, user, "", "")
	name := eff.str("name")
	peerURLs := splitList(eff.str("initial-advertise-peer-urls"))
	if err := checkTLSFiles(eff); err != nil {
		return err
	}
	// The mode must match the disk: a join cleans up by deleting the data
	// dir, and a restart without data would silently found a new cluster.
	switch hasData := HasData(l); {
	case hasData && e.mode != Existing:
		return fmt.Errorf("etcd: %s already holds etcd data; start it as an existing member, not %s", l.EtcdDir(), e.mode)
	case !hasData && e.mode == Existing:
		return fmt.Errorf("etcd: no etcd data in %s to restart from: start with --cluster-init for a new cluster or --server to join one", l.EtcdDir())
	}
	if err := os.MkdirAll(l.EtcdDir(), 0o700); err != nil {
		return fmt.Errorf("etcd data dir: %w", err)
	}
	checkDisk(l.EtcdDir())

	var (
		initialCluster = clusterString(name, peerURLs)
		state          = embed.ClusterStateFlagNew
		join           *joiner
	)
	switch e.mode {
	case Existing:
		// etcd ignores both when it has data; they only keep the file honest.
		state = embed.ClusterStateFlagExisting
	case Join:
		join, err = newJoiner(l, e.joinEndpoints, name, peerURLs)
		if err != nil {
			return err
		}
		defer join.close()
		if initialCluster, err = join.addLearner(ctx); err != nil {
			return err
		}
		state = embed.ClusterStateFlagExisting
		// Until promotion (the last step that can fail), any failure takes
		// this node back out of the cluster, so that neither side keeps a
		// half-joined member.
		defer func() {
			if err != nil {
				e.closeServer()
				join.abandon(l.EtcdDir())
			}
		}()
	}

	ecfg, err := e.loadConfig(render(cfg, user, initialCluster, state))
	if err != nil {
		return err
	}
	slog.Info("starting etcd", "member", name, "mode", e.mode.String(), "peer_urls", peerURLs)
	srv, err := embed.StartEtcd(ecfg)
	if err != nil {
		return fmt.Errorf("start etcd: %w", err)
	}
	e.srv = srv
	e.failFast.server.Store(srv.Server)
	if e.mode == Existing {
		go e.followAddressChange(srv, peerURLs)
		if err = e.local.serve(srv, ecfg); err != nil {
			e.closeServer()
			return err
		}
	}
	err = waitReady(ctx, srv, name, join != nil)
	if errors.Is(err, errPublishLost) {
		slog.Info("etcd join: restarting etcd to publish again", "member", name,
			"reason", "its first publish arrived inside the snapshot it received; etcd would retry only after its request timeout")
		stopServer(srv)
		e.srv = nil
		// The data dir now holds the snapshot: a plain restart.
		if ecfg, err = e.loadConfig(render(cfg, user, initialCluster, state)); err != nil {
			return err
		}
		if srv, err = embed.StartEtcd(ecfg); err != nil {
			return fmt.Errorf("restart etcd: %w", err)
		}
		e.srv = srv
		e.failFast.server.Store(srv.Server)
		err = waitReady(ctx, srv, name, false)
	}
	if err != nil {
		if e.mode == Existing && removedFromCluster(ctx, l, srv) {
			err = removedError(l)
		}
		e.closeServer()
		return err
	}
	// A new or joining member serves here (a restarted one already does),
	// before promotion like the client below, so that nothing can fail
	// once this node votes.
	if err = e.local.serve(srv, ecfg); err != nil {
		e.closeServer()
		return err
	}
	// The client does not dial yet; made before promotion so that nothing
	// can fail once this node votes.
	local := localClientURL(ecfg)
	if e.client, err = newClient(l, []string{local}); err != nil {
		e.closeServer()
		return err
	}
	if join == nil && srv.Server.IsLearner() {
		// A join that died between starting the learner and its promotion
		// leaves data, so this start is a restart; finish the join.
		join, err = resumeJoin(l, srv, name, peerURLs)
		if err != nil {
			e.client.Close()
			e.client = nil
			e.closeServer()
			return err
		}
		defer join.close()
	}
	if join != nil {
		if err := join.promote(ctx, srv); err != nil {
			e.client.Close()
			e.client = nil
			e.closeServer()
			return err
		}
	}
	watchCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.cancel = cancel
	e.wg.Add(2)
	go func() { defer e.wg.Done(); e.watchMembers(watchCtx) }()
	go func() { defer e.wg.Done(); e.watchServer() }()
	return nil
}

// loadConfig writes the settings as etcd's config file and loads it the
// way etcd's own command does; only the logger is set in code.
func (e *Etcd) loadConfig(s settings) (*embed.Config, error) {
	ecfg, err := loadConfigFile(s, e.cfg.Layout.EtcdConfigFile())
	if err != nil {
		return nil, err
	}
	// Three heartbeats for a write's answer once the new leader's first
	// entry is applied.
	e.failFast.grace = 3 * time.Duration(ecfg.TickMs) * time.Millisecond
	ecfg.GRPCAdditionalServerOptions = append(ecfg.GRPCAdditionalServerOptions, e.failFast.interceptor())
	return ecfg, nil
}

// loadConfigFile writes s to path and loads it as etcd's command would.
func loadConfigFile(s settings, path string) (*embed.Config, error) {
	data, err := s.marshal()
	if err != nil {
		return nil, err
	}
	if err := pki.WriteFileAtomic(path, data, 0o600); err != nil {
		return nil, fmt.Errorf("etcd config: %w", err)
	}
	ecfg, err := embed.ConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("etcd config %s (check --etcd-arg values): %w", path, err)
	}
	ecfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(serverLogger())
	return ecfg, nil
}

// checkTLSFiles loads the certificates etcd is configured with. A broken
// one is found before a join changes the cluster, and etcd (which keeps a
// port bound when its TLS setup fails) never gets to try.
func checkTLSFiles(s settings) error {
	for _, sec := range []string{clientSecurity, peerSecurity} {
		t, _ := s[sec].(settings)
		str := func(k string) string { v, _ := t[k].(string); return v }
		if cert, key := str("cert-file"), str("key-file"); cert != "" || key != "" {
			if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
				return fmt.Errorf("etcd %s: %w", sec, err)
			}
		}
		if ca := str("trusted-ca-file"); ca != "" {
			if _, err := pki.LoadCertPool(ca); err != nil {
				return fmt.Errorf("etcd %s: %w", sec, err)
			}
		}
	}
	return nil
}

// waitReady waits until the member has joined the raft group and published
// itself, which needs quorum. With checkPublish it returns errPublishLost
// when the publish is known to be lost.
func waitReady(ctx context.Context, srv *embed.Etcd, name string, checkPublish bool) error {
	begin := time.Now()
	tick := time.NewTicker(quorumLogEvery)
	defer tick.Stop()
	var publish <-chan time.Time
	if checkPublish {
		t := time.NewTicker(publishCheckEvery)
		defer t.Stop()
		publish = t.C
	}
	var namedAt time.Time
	for {
		select {
		case <-srv.Server.ReadyNotify():
			slog.Info("etcd ready", "member", name, "took", time.Since(begin).Round(time.Millisecond))
			return nil
		case now := <-publish:
			if !hasPublishedName(srv, name) {
				namedAt = time.Time{}
			} else if namedAt.IsZero() {
				namedAt = now
			} else if now.Sub(namedAt) >= publishLostAfter {
				return errPublishLost
			}
		case err := <-srv.Err():
			return fmt.Errorf("etcd failed while starting: %w", err)
		case <-srv.Server.StopNotify():
			return errors.New("etcd stopped while starting (see its log lines above)")
		case <-ctx.Done():
			return fmt.Errorf("waiting for etcd to become ready: %w", context.Cause(ctx))
		case <-tick.C:
			slog.Info("waiting for etcd quorum", "member", name, "waited", time.Since(begin).Round(time.Second))
		}
	}
}

// localClientURL picks the loopback client URL etcd listens on, else the
// advertised one.
func localClientURL(c *embed.Config) string {
	for _, u := range c.ListenClientUrls {
		if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() {
			return u.String()
		}
	}
	if len(c.AdvertiseClientUrls) > 0 {
		return c.AdvertiseClientUrls[0].String()
	}
	return httpsURL("127.0.0.1", clientPort)
}

func newClient(l layout.Server, endpoints []string) (*clientv3.Client, error) {
	tlsCfg, err := ClientTLS(l)
	if err != nil {
		return nil, err
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		TLS:         tlsCfg,
		DialTimeout: dialTimeout,
		Logger:      logging.Zap("etcd-client"),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client for %v: %w", endpoints, err)
	}
	return c, nil
}

// watchServer notices the server ending on its own (e.g. removed from the
// cluster, or a listener failing) and reports it through Done.
func (e *Etcd) watchServer() {
	var err error
	select {
	case <-e.stopping:
	case <-e.srv.Server.StopNotify():
		err = errors.New("etcd server stopped")
		// The local view may not have applied the removal yet; the other
		// members know.
		if srv := e.srv.Server; !srv.IsMemberExist(srv.MemberID()) || removedFromCluster(context.Background(), e.cfg.Layout, e.srv) {
			err = removedError(e.cfg.Layout)
		}
	case err = <-e.srv.Err():
		err = fmt.Errorf("etcd server failed: %w", err)
	}
	select {
	case <-e.stopping:
		err = nil // Stop asked for it
	default:
	}
	if err != nil {
		e.mu.Lock()
		e.err = err
		e.mu.Unlock()
		slog.Error("etcd stopped unexpectedly", "err", err)
		if e.cancel != nil {
			e.cancel()
		}
		e.closeServer()
	}
	close(e.done)
}

func (e *Etcd) closeServer() {
	e.closeOnce.Do(func() {
		e.local.stop()
		if e.srv != nil {
			stopServer(e.srv)
		}
	})
}

// stopServer stops srv, ready or not, and waits until it has.
func stopServer(srv *embed.Etcd) {
	select {
	case <-srv.Server.ReadyNotify():
	default:
		// embed's Close waits for the client servers, which only start
		// once ready or once the server stops; without quorum the first
		// never happens, so stop the server first.
		srv.Server.HardStop()
	}
	srv.Close()
}

// Stop closes k3ha's client and the server and waits for both. Calling it
// again does nothing.
func (e *Etcd) Stop() (err error) {
	if e.srv == nil {
		e.local.stop() // bound by Listen only
		return nil
	}
	e.stopOnce.Do(func() {
		close(e.stopping)
		if e.cancel != nil {
			e.cancel()
		}
		if e.client != nil {
			if cerr := e.client.Close(); cerr != nil && !errors.Is(cerr, context.Canceled) {
				err = fmt.Errorf("close etcd client: %w", cerr)
			}
		}
		e.closeServer()
		e.wg.Wait()
	})
	return err
}

// Members lists the cluster's members as the local member sees them.
func (e *Etcd) Members(ctx context.Context) ([]Member, error) {
	if e.client == nil {
		return nil, errors.New("etcd is not running")
	}
	return listMembers(ctx, e.client)
}

func listMembers(ctx context.Context, c *clientv3.Client) ([]Member, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list etcd members: %w", err)
	}
	out := make([]Member, 0, len(resp.Members))
	for _, m := range resp.Members {
		out = append(out, Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner})
	}
	return out, nil
}

// ErrNoSuchMember is returned by RemoveMember when no member has the name.
var ErrNoSuchMember = errors.New("no such etcd member")

// RemoveMember removes the member called name from the cluster. It refuses
// to remove the last voting member: the cluster could never regain quorum.
func (e *Etcd) RemoveMember(ctx context.Context, name string) error {
	members, err := e.Members(ctx)
	if err != nil {
		return err
	}
	var target *Member
	voting := 0
	for i, m := range members {
		if !m.IsLearner {
			voting++
		}
		if m.Name == name {
			if target != nil {
				return fmt.Errorf("remove etcd member %q: several members have that name", name)
			}
			target = &members[i]
		}
	}
	if target == nil {
		return fmt.Errorf("remove etcd member %q: %w", name, ErrNoSuchMember)
	}
	if !target.IsLearner && voting <= 1 {
		return fmt.Errorf("refusing to remove etcd member %q: it is the last voting member, and without it the cluster's data could never be served again", name)
	}
	// etcd refuses (unhealthy cluster) until the other voting members have
	// been connected for a few seconds, e.g. right after a join or restart.
	for {
		callCtx, cancel := context.WithTimeout(ctx, callTimeout)
		_, err := e.client.MemberRemove(callCtx, target.ID)
		cancel()
		if err == nil {
			break
		}
		if !errors.Is(err, rpctypes.ErrUnhealthy) {
			return fmt.Errorf("remove etcd member %q (%x): %w", name, target.ID, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove etcd member %q (%x): the other members are not all connected, so removing it could cost quorum: %w", name, target.ID, err)
		case <-time.After(time.Second):
		}
	}
	slog.Info("removed etcd member", "member", name, "id", fmt.Sprintf("%x", target.ID), "peer_urls", target.PeerURLs)
	return nil
}

// DuplicateNameError means another member of the cluster already uses this
// node's name.
type DuplicateNameError struct {
	Name     string
	PeerURLs []string
}

func (d *DuplicateNameError) Error() string {
	return fmt.Sprintf("etcd member %q already exists with peer URLs %s, so this server cannot join under that name: "+
		"remove that member first (when the cluster has nodes, `kubectl delete node %s` does it) or start this server with another --node-name",
		d.Name, strings.Join(d.PeerURLs, ","), d.Name)
}

// clusterString renders one member for initial-cluster.
func clusterString(name string, peerURLs []string) string {
	parts := make([]string, 0, len(peerURLs))
	for _, u := range peerURLs {
		parts = append(parts, name+"="+u)
	}
	return strings.Join(parts, ",")
}

// sameURLs compares URL lists as sets, ignoring case and trailing slashes.
func sameURLs(a, b []string) bool {
	norm := func(list []string) map[string]bool {
		m := map[string]bool{}
		for _, s := range list {
			if u, err := url.Parse(s); err == nil {
				s = strings.ToLower(u.Scheme + "://" + u.Host)
			}
			m[s] = true
		}
		return m
	}
	na, nb := norm(a), norm(b)
	if len(na) != len(nb) {
		return false
	}
	for k := range na {
		if !nb[k] {
			return false
		}
	}
	return true
}

// overlaps reports whether the lists share a URL.
func overlaps(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if sameURLs([]string{x}, []string{y}) {
				return true
			}
		}
	}
	return false
}

// removedError tells a removed member's operator how to rejoin.
func removedError(l layout.Server) error {
	return fmt.Errorf("this server was removed from the cluster (its etcd member was removed, e.g. because its Node was deleted), so its etcd data is stale; "+
		"to rejoin, stop it, delete %s and start it again with --server https://<a running server>:6443 and the cluster's token", l.EtcdDir())
}

// othersClientURLs are the client URLs of every member but this one, as
// this member last knew them.
func othersClientURLs(srv *embed.Etcd) []string {
	var urls []string
	for _, m := range srv.Server.Cluster().Members() {
		if m.ID != srv.Server.MemberID() {
			urls = append(urls, m.ClientURLs...)
		}
	}
	return urls
}

// removedFromCluster asks the other members whether this one still
// belongs: a member removed while it was down learns it only from them.
// Members are told apart by ID: a server that came back on a new address
// is still the same member.
func removedFromCluster(ctx context.Context, l layout.Server, srv *embed.Etcd) bool {
	self := srv.Server.MemberID()
	endpoints := othersClientURLs(srv)
	if len(endpoints) == 0 {
		return false
	}
	c, err := newClient(l, endpoints)
	if err != nil {
		return false
	}
	defer c.Close()
	askCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	resp, err := c.MemberList(askCtx)
	if err != nil {
		return false
	}
	for _, m := range resp.Members {
		if types.ID(m.ID) == self {
			return false
		}
	}
	return true
}
