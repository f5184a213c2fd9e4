package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/logging"
	"github.com/k3ha/k3ha/internal/pki"
	"github.com/k3ha/k3ha/internal/testutil/logtest"
)

// newCAs makes the cluster-wide etcd CAs in a layout of their own.
func newCAs(t *testing.T) layout.Server {
	t.Helper()
	l := layout.NewServer(t.TempDir())
	for _, name := range []string{layout.EtcdServerCA, layout.EtcdPeerCA} {
		if _, _, err := pki.LoadOrCreateCA(l.TLSDir(), name, "k3ha-"+filepath.Base(name)); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// freePorts finds n free TCP ports on ip, holding all of them open at once
// so that they differ.
func freePorts(t *testing.T, ip string, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatalf("listen on %s: %v", ip, err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

type testNode struct {
	cfg       Config
	clientURL string
	peerURL   string
}

// newTestNode gives a node its own data dir, the shared CAs, its leaf
// certificates and random ports (through --etcd-arg, as a user would), so
// tests neither collide with each other nor with a real etcd on 2379.
func newTestNode(t *testing.T, name, ip string, cas layout.Server) testNode {
	t.Helper()
	l := layout.NewServer(t.TempDir())
	for _, ca := range []string{layout.EtcdServerCA, layout.EtcdPeerCA} {
		certPEM, err := os.ReadFile(cas.Cert(ca))
		if err != nil {
			t.Fatal(err)
		}
		keyPEM, err := os.ReadFile(cas.Key(ca))
		if err != nil {
			t.Fatal(err)
		}
		if err := pki.WriteCA(l.TLSDir(), ca, certPEM, keyPEM); err != nil {
			t.Fatal(err)
		}
	}
	if err := EnsureCertificates(l, name, net.ParseIP(ip)); err != nil {
		t.Fatal(err)
	}
	p := freePorts(t, ip, 4)
	client := fmt.Sprintf("https://%s:%d", ip, p[0])
	peer := fmt.Sprintf("https://%s:%d", ip, p[1])
	return testNode{
		cfg: Config{Name: name, Layout: l, NodeIP: net.ParseIP(ip), ExtraArgs: []string{
			"listen-client-urls=" + client, "advertise-client-urls=" + client,
			"listen-peer-urls=" + peer, "initial-advertise-peer-urls=" + peer,
			"listen-metrics-urls=" + fmt.Sprintf("http://%s:%d", ip, p[2]),
			"listen-client-http-urls=" + fmt.Sprintf("https://%s:%d", ip, p[3]),
		}},
		clientURL: client,
		peerURL:   peer,
	}
}

// start starts e and makes sure the test stops it.
func start(t *testing.T, e *Etcd) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Start(ctx); err != nil {
		t.Fatalf("start %s: %v", e.cfg.Name, err)
	}
	t.Cleanup(func() { e.Stop() })
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestHasData(t *testing.T) {
	l := layout.NewServer(t.TempDir())
	if HasData(l) {
		t.Fatal("HasData on an empty data dir")
	}
	wal := walDir(l)
	if err := os.MkdirAll(wal, 0o700); err != nil {
		t.Fatal(err)
	}
	if HasData(l) {
		t.Fatal("HasData with an empty WAL dir")
	}
	if err := os.WriteFile(filepath.Join(wal, "0.tmp"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if HasData(l) {
		t.Fatal("HasData with only a temp file in the WAL dir")
	}
	if err := os.WriteFile(filepath.Join(wal, "0000000000000000-0000000000000000.wal"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !HasData(l) {
		t.Fatal("HasData false with a WAL file")
	}
}

func TestSingleMemberRestartKeepsData(t *testing.T) {
	logs := logtest.Capture(t, slog.LevelDebug, logtest.OnFailureOrVerbose)
	n := newTestNode(t, "solo", "127.0.0.1", newCAs(t))
	ctx := testCtx(t)

	if err := New(n.cfg, Existing, nil).Start(ctx); err == nil || !strings.Contains(err.Error(), "no etcd data") {
		t.Fatalf("Existing without data: err = %v", err)
	}
	e := New(n.cfg, NewCluster, nil)
	start(t, e)
	if _, err := e.Client().Put(ctx, "/k3ha/test", "kept"); err != nil {
		t.Fatal(err)
	}
	// The apiserver's way in: the endpoint with its certificate files.
	ep := e.Endpoint()
	if len(ep.Servers) != 1 || !strings.HasPrefix(ep.Servers[0], "https://127.0.0.1:") || ep.Servers[0] == n.clientURL {
		t.Errorf("endpoint servers = %v", ep.Servers)
	}
	c, err := ep.Client(logging.Zap("test"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(ctx, "/k3ha/test")
	c.Close()
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "kept" {
		t.Fatalf("get through Endpoint: %v %v", resp, err)
	}
	members, err := e.Members(ctx)
	if err != nil || len(members) != 1 || members[0].Name != "solo" || members[0].IsLearner {
		t.Fatalf("members = %+v, %v", members, err)
	}
	if err := e.RemoveMember(ctx, "solo"); err == nil || !strings.Contains(err.Error(), "last voting member") {
		t.Errorf("removing the last voting member: err = %v", err)
	}
	if err := e.RemoveMember(ctx, "nobody"); !errors.Is(err, ErrNoSuchMember) {
		t.Errorf("removing an unknown member: err = %v", err)
	}

	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if e.Err() != nil {
		t.Errorf("Err after Stop = %v", e.Err())
	}
	if !HasData(n.cfg.Layout) {
		t.Fatal("no etcd data after a run")
	}
	if err := New(n.cfg, NewCluster, nil).Start(ctx); err == nil || !strings.Contains(err.Error(), "already holds etcd data") {
		t.Fatalf("NewCluster over data: err = %v", err)
	}

	again := New(n.cfg, Existing, nil)
	start(t, again)
	resp, err = again.Client().Get(ctx, "/k3ha/test")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "kept" {
		t.Fatalf("after restart: %v %v", resp, err)
	}
	if !strings.Contains(logs.String(), `msg="etcd membership" members=1 voting=1 tolerated_failures=0`) {
		t.Errorf("no fault-tolerance line for one member")
	}
	if _, err := os.Stat(n.cfg.Layout.EtcdConfigFile()); err != nil {
		t.Errorf("config file: %v", err)
	}
}

// A restarting member serves the apiserver's port before it has a
// leader: the apiserver's build connects at once instead of waiting for the
// election. Here the other member is down, so there is no leader at all,
// yet a serializable read through the port answers.
func TestRestartServesLocalPortBeforeLeader(t *testing.T) {
	cas := newCAs(t)
	ctx := testCtx(t)
	a, b := newTestNode(t, "a", "127.0.0.2", cas), newTestNode(t, "b", "127.0.0.3", cas)
	ea := New(a.cfg, NewCluster, nil)
	start(t, ea)
	if _, err := ea.Client().Put(ctx, "/k3ha/kept", "1"); err != nil {
		t.Fatal(err)
	}
	eb := New(b.cfg, Join, []string{a.clientURL})
	start(t, eb)
	for _, e := range []*Etcd{eb, ea} {
		if err := e.Stop(); err != nil {
			t.Fatal(err)
		}
	}

	again := New(a.cfg, Existing, nil)
	if err := again.Listen(); err != nil {
		t.Fatal(err)
	}
	startCtx, cancel := context.WithCancel(ctx)
	started := make(chan error, 1)
	go func() { started <- again.Start(startCtx) }()
	t.Cleanup(func() { cancel(); <-started; again.Stop() })

	c, err := again.Endpoint().Client(logging.Zap("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	readCtx, readCancel := context.WithTimeout(ctx, 15*time.Second)
	defer readCancel()
	resp, err := c.Get(readCtx, "/k3ha/kept", clientv3.WithSerializable())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("serializable read through the local port without a leader: %v %v", resp, err)
	}
	select {
	case err := <-started:
		t.Fatalf("Start returned without quorum: %v", err)
	default:
	}
}

func TestJoinAsLearnerThenPromoted(t *testing.T) {
	logs := logtest.Capture(t, slog.LevelDebug, logtest.OnFailureOrVerbose)
	cas := newCAs(t)
	ctx := testCtx(t)

	a := newTestNode(t, "a", "127.0.0.2", cas)
	ea := New(a.cfg, NewCluster, nil)
	start(t, ea)
	if _, err := ea.Client().Put(ctx, "/k3ha/from-a", "1"); err != nil {
		t.Fatal(err)
	}

	b := newTestNode(t, "b", "127.0.0.3", cas)
	eb := New(b.cfg, Join, []string{a.clientURL})
	start(t, eb)
	if !strings.Contains(logs.String(), `msg="etcd join: added as learner" member=b`) {
		t.Error("b did not join as a learner")
	}
	members, err := eb.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 2 {
		t.Fatalf("members = %+v", members)
	}
	for _, m := range members {
		if m.IsLearner {
			t.Errorf("member %s still a learner after Start", m.Name)
		}
	}
	resp, err := eb.Client().Get(ctx, "/k3ha/from-a")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("b does not see a's data: %v %v", resp, err)
	}
	// Two voting members tolerate no more failures than one: say so.
	if !logs.WaitFor("an even count: it tolerates 0 failure(s), no more than 1 members would", memberPoll+5*time.Second) ||
		!strings.Contains(logs.String(), "members=2 voting=2 tolerated_failures=0") {
		t.Error("no even-count warning for two voting members")
	}

	// A third server calling itself "a" must not touch the cluster.
	before, err := ea.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dup := newTestNode(t, "a", "127.0.0.4", cas)
	err = New(dup.cfg, Join, []string{a.clientURL, b.clientURL}).Start(ctx)
	var dupErr *DuplicateNameError
	if !errors.As(err, &dupErr) {
		t.Fatalf("join under a used name: err = %v, want a DuplicateNameError", err)
	}
	if dupErr.Name != "a" || !slices.Equal(dupErr.PeerURLs, []string{a.peerURL}) ||
		!strings.Contains(err.Error(), "kubectl delete node a") || !strings.Contains(err.Error(), "--node-name") {
		t.Errorf("duplicate name error = %q (%+v)", err, dupErr)
	}
	after, err := ea.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if membershipSignature(before) != membershipSignature(after) {
		t.Errorf("member list changed: %+v -> %+v", before, after)
	}
	if HasData(dup.cfg.Layout) {
		t.Error("the refused server has etcd data")
	}

	// A missing certificate is found before the cluster is touched.
	c := newTestNode(t, "c", "127.0.0.5", cas)
	peerCert := c.cfg.Layout.Cert(layout.EtcdPeer)
	if err := os.Rename(peerCert, peerCert+".away"); err != nil {
		t.Fatal(err)
	}
	err = New(c.cfg, Join, []string{a.clientURL}).Start(ctx)
	if err == nil || !strings.Contains(err.Error(), peerCert) {
		t.Fatalf("join without a peer certificate: err = %v, want one naming %s", err, peerCert)
	}
	if err := os.Rename(peerCert+".away", peerCert); err != nil {
		t.Fatal(err)
	}
	if after, err := ea.Members(ctx); err != nil || membershipSignature(after) != membershipSignature(before) {
		t.Errorf("member list after the refused join = %+v (%v), want %+v", after, err, before)
	}

	// A join whose etcd cannot start (its peer port is taken) takes its
	// learner out again and leaves no data behind.
	taken, err := net.Listen("tcp", strings.TrimPrefix(c.peerURL, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	err = New(c.cfg, Join, []string{a.clientURL}).Start(ctx)
	taken.Close()
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("join with the peer port taken: err = %v", err)
	}
	if !strings.Contains(logs.String(), "removed this server's learner again") {
		t.Error("no log line about removing the learner")
	}
	if after, err := ea.Members(ctx); err != nil || membershipSignature(after) != membershipSignature(before) {
		t.Errorf("member list after the failed join = %+v (%v), want %+v", after, err, before)
	}
	if _, err := os.Stat(c.cfg.Layout.EtcdDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("etcd dir after the failed join: %v", err)
	}

	// A learner an earlier attempt left behind is reused, not added twice.
	// Within the second of its removal etcd would give it the removed ID.
	time.Sleep(time.Second)
	if _, err := ea.Client().MemberAddAsLearner(ctx, []string{c.peerURL}); err != nil {
		t.Fatal(err)
	}
	ec := New(c.cfg, Join, []string{a.clientURL})
	start(t, ec)
	if !strings.Contains(logs.String(), "reusing the learner an earlier attempt added") {
		t.Error("c did not reuse its learner")
	}
	members, err = ec.Members(ctx)
	if err != nil || len(members) != 3 || slices.ContainsFunc(members, func(m Member) bool { return m.IsLearner }) {
		t.Fatalf("members with c = %+v, %v", members, err)
	}
	if !logs.WaitFor("members=3 voting=3 tolerated_failures=1", memberPoll+5*time.Second) {
		t.Error("no fault-tolerance line for three voting members")
	}

	// A join that died after its learner started, before promotion, left
	// data: the restart finishes the join.
	d := newTestNode(t, "d", "127.0.0.6", cas)
	startUnpromotedLearner(t, ctx, d, a.clientURL)
	ed := New(d.cfg, Existing, nil)
	start(t, ed)
	if !strings.Contains(logs.String(), "still a learner (an earlier join did not finish)") {
		t.Error("d's restart did not notice it was a learner")
	}
	members, err = ed.Members(ctx)
	if err != nil || len(members) != 4 || slices.ContainsFunc(members, func(m Member) bool { return m.IsLearner }) {
		t.Fatalf("members with d = %+v, %v", members, err)
	}

	// Removing b's member stops b's server, which Done reports.
	if err := ea.RemoveMember(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-eb.Done():
		if err := eb.Err(); err == nil || !strings.Contains(err.Error(), "removed from the cluster") {
			t.Errorf("b stopped with err = %v, want one saying it was removed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("b still running after its member was removed")
	}
	if members, err := ea.Members(ctx); err != nil || len(members) != 3 {
		t.Errorf("members after removal = %+v, %v", members, err)
	}

	// A member restarted while its peers are down waits for quorum, saying
	// so, until its context ends.
	for _, e := range []*Etcd{ec, ed, ea} {
		if err := e.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	defer func(old time.Duration) { quorumLogEvery = old }(quorumLogEvery)
	quorumLogEvery = 500 * time.Millisecond
	short, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err = New(a.cfg, Existing, nil).Start(short)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("restart without quorum: err = %v, want the context's deadline", err)
	}
	if !strings.Contains(logs.String(), `msg="waiting for etcd quorum" member=a`) {
		t.Error("no waiting-for-quorum line")
	}
}

// startUnpromotedLearner does what a join does up to a ready learner, then
// stops as if the process had died before the promotion.
func startUnpromotedLearner(t *testing.T, ctx context.Context, n testNode, endpoint string) {
	t.Helper()
	j, err := newJoiner(n.cfg.Layout, []string{endpoint}, n.cfg.Name, []string{n.peerURL})
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	cluster, err := j.addLearner(ctx)
	if err != nil {
		t.Fatal(err)
	}
	user, err := parseArgs(n.cfg.ExtraArgs)
	if err != nil {
		t.Fatal(err)
	}
	ecfg, err := New(n.cfg, Join, nil).loadConfig(render(n.cfg, user, cluster, embed.ClusterStateFlagExisting))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := embed.StartEtcd(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	select {
	case <-srv.Server.ReadyNotify():
	case <-ctx.Done():
		t.Fatal("learner not ready")
	}
	if !srv.Server.IsLearner() {
		t.Fatal("not a learner")
	}
}

func TestDiskCheckMetric(t *testing.T) {
	checkDisk(t.TempDir())
	checkDisk(t.TempDir()) // registered once, however often etcd starts
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, fam := range families {
		if fam.GetName() != "k3ha_etcd_disk_fsync_p99_seconds" {
			continue
		}
		found = true
		if v := fam.GetMetric()[0].GetGauge().GetValue(); v <= 0 || v > 5 {
			t.Errorf("gauge = %v", v)
		}
	}
	if !found {
		t.Fatal("gauge not in the legacy registry")
	}
}
