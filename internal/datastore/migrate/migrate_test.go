package migrate

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/k3ha/k3ha/internal/datastore/etcd"
	"github.com/k3ha/k3ha/internal/datastore/kine"
	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/logging"
	"github.com/k3ha/k3ha/internal/pki"
	"github.com/k3ha/k3ha/internal/testutil/logtest"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// freePorts finds n different free ports on 127.0.0.1.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// node is a data dir with etcd certificates and an etcd member config on
// random loopback ports (as --etcd-arg values, like a user could give).
type node struct {
	l         layout.Server
	cfg       etcd.Config
	peerURL   string
	clientURL string
}

func newNode(t *testing.T) node {
	t.Helper()
	l := layout.NewServer(t.TempDir())
	for _, name := range []string{layout.EtcdServerCA, layout.EtcdPeerCA} {
		if _, _, err := pki.LoadOrCreateCA(l.TLSDir(), name, "test-"+filepath.Base(name)); err != nil {
			t.Fatal(err)
		}
	}
	ip := net.ParseIP("127.0.0.1")
	if err := etcd.EnsureCertificates(l, "m1", ip); err != nil {
		t.Fatal(err)
	}
	p := freePorts(t, 4)
	client := fmt.Sprintf("https://127.0.0.1:%d", p[0])
	peer := fmt.Sprintf("https://127.0.0.1:%d", p[1])
	return node{l: l, peerURL: peer, clientURL: client, cfg: etcd.Config{Name: "m1", Layout: l, NodeIP: ip, ExtraArgs: []string{
		"listen-client-urls=" + client, "advertise-client-urls=" + client,
		"listen-peer-urls=" + peer, "initial-advertise-peer-urls=" + peer,
		"listen-metrics-urls=" + fmt.Sprintf("http://127.0.0.1:%d", p[2]),
		"listen-client-http-urls=" + fmt.Sprintf("https://127.0.0.1:%d", p[3]),
	}}}
}

// startKine serves the node's SQLite file through kine, as a server's
// apiserver uses it, and returns a client of it; stop closes the client
// and stops kine.
func startKine(t *testing.T, ctx context.Context, n node) (c *clientv3.Client, stop func()) {
	t.Helper()
	if err := os.MkdirAll(n.l.DBDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	k := kine.New(kine.Config{DSN: kine.SQLiteDSN(n.l.SQLiteFile()), Socket: filepath.Join(t.TempDir(), "kine.sock")})
	if err := k.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := k.Endpoint().Client(logging.Zap("test"))
	if err != nil {
		k.Stop()
		t.Fatal(err)
	}
	return c, func() {
		c.Close()
		k.Stop()
	}
}

// fillSQLite writes keys through kine into the node's SQLite file, the way
// a server's apiserver would, and returns what a migration must copy.
func fillSQLite(t *testing.T, n node, keys int) map[string]string {
	t.Helper()
	ctx := testCtx(t)
	c, stop := startKine(t, ctx, n)
	defer stop()
	want := map[string]string{}
	// kine serves the apiserver's requests: writes are transactions
	// guarded by the key's current revision.
	modRev := func(key string) int64 {
		t.Helper()
		resp, err := c.Get(ctx, key)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		if len(resp.Kvs) == 0 {
			return 0
		}
		return resp.Kvs[0].ModRevision
	}
	put := func(key, value string, opts ...clientv3.OpOption) {
		t.Helper()
		rev := modRev(key)
		txn := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(clientv3.OpPut(key, value, opts...))
		if rev != 0 {
			txn = txn.Else(clientv3.OpGet(key))
		}
		resp, err := txn.Commit()
		if err != nil || !resp.Succeeded {
			t.Fatalf("put %s: %v", key, err)
		}
		want[key] = value
	}
	for i := range keys {
		put(fmt.Sprintf("/registry/configmaps/default/cm-%05d", i), strings.Repeat("v", i%300))
	}
	// Updated keys: only the latest value counts.
	for i := 0; i < keys; i += 7 {
		put(fmt.Sprintf("/registry/configmaps/default/cm-%05d", i), fmt.Sprintf("updated-%d", i))
	}
	// Deleted keys must not come back.
	for i := 3; i < keys; i += 11 {
		key := fmt.Sprintf("/registry/configmaps/default/cm-%05d", i)
		resp, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", modRev(key))).
			Then(clientv3.OpDelete(key)).Else(clientv3.OpGet(key)).Commit()
		if err != nil || !resp.Succeeded {
			t.Fatalf("delete %s: %v", key, err)
		}
		delete(want, key)
	}
	put("/k3ha/bootstrap", "sealed")
	put("/registry/secrets/kube-system/binary", string([]byte{0, 1, 2, 255, 254}))
	lease, err := c.Grant(ctx, 3600)
	if err != nil {
		t.Fatal(err)
	}
	put("/registry/events/default/e1", "event", clientv3.WithLease(lease.ID))
	return want
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// startExisting starts the migrated etcd as this node's member from its data.
func startExisting(t *testing.T, n node) *etcd.Etcd {
	t.Helper()
	e := etcd.New(n.cfg, etcd.Existing, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.Start(ctx); err != nil {
		t.Fatalf("start the migrated etcd: %v", err)
	}
	t.Cleanup(func() { e.Stop() })
	return e
}

func allKeys(t *testing.T, c *clientv3.Client) map[string]string {
	t.Helper()
	resp, err := c.Get(testCtx(t), "\x00", clientv3.WithFromKey())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	return got
}

func sameMaps(t *testing.T, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d keys, want %d", len(got), len(want))
	}
	for k, v := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("key %s missing", k)
		} else if g != v {
			t.Errorf("key %s = %q, want %q", k, g, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected key %s", k)
		}
	}
}

func TestMigrate(t *testing.T) {
	logs := logtest.Capture(t, slog.LevelDebug, logtest.OnFailure)
	n := newNode(t)
	want := fillSQLite(t, n, 700)
	if !Needed(n.l) {
		t.Fatal("Needed is false with SQLite data and no etcd data")
	}
	before := fileSum(t, n.l.SQLiteFile())
	existed := map[string]bool{}
	for _, suffix := range []string{"-wal", "-shm"} {
		_, err := os.Stat(n.l.SQLiteFile() + suffix)
		existed[suffix] = err == nil
	}

	res, err := Run(testCtx(t), Options{Layout: n.l, Etcd: n.cfg})
	if err != nil {
		t.Fatal(err)
	}
	if res.Keys != len(want) {
		t.Errorf("Result.Keys = %d, want %d", res.Keys, len(want))
	}
	if Needed(n.l) {
		t.Error("Needed after the migration")
	}
	if _, err := os.Stat(n.l.SQLiteFile()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state.db still in place: %v", err)
	}
	if got := fileSum(t, res.KeptAs); got != before {
		t.Error("the kept SQLite file differs from the original")
	}
	// Reading makes no -wal or -shm file; those kine left move along.
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(res.KeptAs + suffix); (err == nil) != existed[suffix] {
			t.Errorf("kept %s: %v; it existed before: %v", suffix, err, existed[suffix])
		}
	}
	if _, err := os.Stat(n.l.EtcdMigrateDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staging dir left behind: %v", err)
	}
	for _, line := range []string{`msg="migrating SQLite data into etcd" keys=` + fmt.Sprint(len(want)),
		`msg="migration verified: etcd holds every key with the same value"`, `msg="migrated SQLite data into etcd"`} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("log lacks %s", line)
		}
	}

	// The data dir is now an ordinary first member.
	e := startExisting(t, n)
	sameMaps(t, allKeys(t, e.Client()), want)
	members, err := e.Members(testCtx(t))
	if err != nil || len(members) != 1 || members[0].Name != "m1" || members[0].PeerURLs[0] != n.peerURL ||
		members[0].ClientURLs[0] != n.clientURL {
		t.Fatalf("members = %+v %v", members, err)
	}
	resp, err := e.Client().Get(testCtx(t), "/registry/events/default/e1")
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
		t.Fatalf("leased key: %+v %v", resp, err)
	}
	ttl, err := e.Client().TimeToLive(testCtx(t), clientv3.LeaseID(resp.Kvs[0].Lease))
	if err != nil || ttl.GrantedTTL != 3600 {
		t.Errorf("lease of the event: %+v %v", ttl, err)
	}
	// Revisions follow kine's order: a key written later is not older.
	first, _ := e.Client().Get(testCtx(t), "/registry/configmaps/default/cm-00001")
	last, _ := e.Client().Get(testCtx(t), "/k3ha/bootstrap")
	if first.Kvs[0].ModRevision > last.Kvs[0].ModRevision {
		t.Errorf("revision order lost: cm-00001 at %d, bootstrap at %d", first.Kvs[0].ModRevision, last.Kvs[0].ModRevision)
	}
}

func TestFailedMigrationChangesNothingAndCanBeRetried(t *testing.T) {
	logs := logtest.Capture(t, slog.LevelDebug, logtest.OnFailure)
	n := newNode(t)
	want := fillSQLite(t, n, 400)
	before := fileSum(t, n.l.SQLiteFile())

	afterBatch = func(copied int) error {
		if copied >= 128 {
			return errors.New("injected failure")
		}
		return nil
	}
	_, err := Run(testCtx(t), Options{Layout: n.l, Etcd: n.cfg})
	afterBatch = nil
	if err == nil || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("Run with a failure after the first batch: err = %v", err)
	}
	if fileSum(t, n.l.SQLiteFile()) != before {
		t.Fatal("the failed migration changed the SQLite file")
	}
	if etcd.HasData(n.l) {
		t.Fatal("the failed migration left etcd data")
	}
	if _, err := os.Stat(n.l.EtcdMigrateDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed migration left its staging dir: %v", err)
	}

	// A crash leaves a half-made etcd in the staging dir: the next run
	// replaces it.
	st, err := etcd.StartStaging(testCtx(t), n.cfg, n.l.EtcdMigrateDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Client().Put(testCtx(t), "/registry/stale", "x"); err != nil {
		t.Fatal(err)
	}
	st.Stop()
	// So does a start that failed after writing etcd's config file.
	if err := os.MkdirAll(n.l.EtcdDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.l.EtcdConfigFile(), []byte("# debris\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(testCtx(t), Options{Layout: n.l, Etcd: n.cfg}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if !strings.Contains(logs.String(), "removing the unfinished migration of an earlier attempt") {
		t.Error("the retry did not say it removed the leftover")
	}
	e := startExisting(t, n)
	sameMaps(t, allKeys(t, e.Client()), want)
}

func TestFinishAfterACrashBeforeTheSQLiteRename(t *testing.T) {
	logtest.Capture(t, slog.LevelDebug, logtest.OnFailure)
	n := newNode(t)
	fillSQLite(t, n, 10)
	res, err := Run(testCtx(t), Options{Layout: n.l, Etcd: n.cfg})
	if err != nil {
		t.Fatal(err)
	}
	// As if the process died right after moving the etcd data into place.
	if err := os.Rename(res.KeptAs, n.l.SQLiteFile()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.l.SQLiteFile()+"-wal", []byte("wal"), 0o600); err != nil {
		t.Fatal(err)
	}
	renamed, err := Finish(n.l)
	if err != nil || !renamed {
		t.Fatalf("Finish = %v, %v", renamed, err)
	}
	for _, p := range []string{res.KeptAs, res.KeptAs + "-wal"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := os.Stat(n.l.SQLiteFile()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state.db still there: %v", err)
	}
	if renamed, err := Finish(n.l); err != nil || renamed {
		t.Errorf("second Finish = %v, %v; want nothing to do", renamed, err)
	}
}

func TestVerifyFindsDifferences(t *testing.T) {
	logtest.Capture(t, slog.LevelDebug, logtest.OnFailure)
	n := newNode(t)
	fillSQLite(t, n, 50)
	ctx := testCtx(t)
	src, err := openSource(n.l.SQLiteFile())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	st, err := etcd.StartStaging(ctx, n.cfg, n.l.EtcdMigrateDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop()
	cp := newCopier(st.Client(), st.MaxTxnOps(), st.MaxRequestBytes(), 0, time.Hour)
	if err := src.each(ctx, "ORDER BY kv.id", func(r kv) error { return cp.add(ctx, r) }); err != nil {
		t.Fatal(err)
	}
	if err := cp.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, diff, err := verify(ctx, src, st.Client(), cp.leases); err != nil || diff.any() {
		t.Fatalf("verify of a faithful copy: %v %v", diff, err)
	}
	c := st.Client()
	for _, op := range []clientv3.Op{
		clientv3.OpPut("/registry/configmaps/default/cm-00001", "tampered"),
		clientv3.OpDelete("/registry/configmaps/default/cm-00002"),
		clientv3.OpPut("/registry/zzz-extra", "x"),
		clientv3.OpPut("/a-extra-first", "x"),
	} {
		if _, err := c.Do(ctx, op); err != nil {
			t.Fatal(err)
		}
	}
	matched, diff, err := verify(ctx, src, c, cp.leases)
	if err != nil {
		t.Fatal(err)
	}
	if diff.changed != 1 || diff.missing != 1 || diff.extra != 2 {
		t.Errorf("differences = %+v", diff)
	}
	if !strings.Contains(diff.Error(), "cm-00001") || strings.Contains(diff.Error(), "tampered") {
		t.Errorf("message %q: want key names, never values", diff.Error())
	}
	if matched != cp.copied-2 {
		t.Errorf("matched %d of %d", matched, cp.copied)
	}
}

func TestSmallBatches(t *testing.T) {
	// Values larger than a batch's byte budget go alone; nothing is lost.
	logtest.Capture(t, slog.LevelDebug, logtest.OnFailure)
	n := newNode(t)
	n.cfg.ExtraArgs = append(n.cfg.ExtraArgs, "max-txn-ops=3", "max-request-bytes=4096")
	want := fillSQLite(t, n, 40)
	if _, err := Run(testCtx(t), Options{Layout: n.l, Etcd: n.cfg}); err != nil {
		t.Fatal(err)
	}
	e := startExisting(t, n)
	sameMaps(t, allKeys(t, e.Client()), want)
}

func TestInternalKeys(t *testing.T) {
	for k, want := range map[string]bool{
		"compact_rev_key": true, "compact_rev_key_apiserver": true, "/registry/health": true, "gap-12": true,
		"/registry/pods/a": false, "/k3ha/bootstrap": false, "/registry/healthz": false,
	} {
		if internalKey(k) != want {
			t.Errorf("internalKey(%q) = %v", k, !want)
		}
	}
}

func TestNotAKineFile(t *testing.T) {
	n := newNode(t)
	if err := os.MkdirAll(n.l.DBDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.l.SQLiteFile(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Run(testCtx(t), Options{Layout: n.l, Etcd: n.cfg})
	if err == nil || !strings.Contains(err.Error(), "no kine table") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(n.l.SQLiteFile()); len(b) != 0 {
		t.Error("the file was changed")
	}
}

func TestReadsTheWALOfAKilledServer(t *testing.T) {
	// A server killed with SIGKILL leaves its last writes in state.db-wal;
	// the read-only source must still see them.
	logtest.Capture(t, slog.LevelDebug, logtest.OnFailure)
	n := newNode(t)
	ctx := testCtx(t)
	c, stop := startKine(t, ctx, n)
	defer stop()
	key := "/registry/configmaps/default/in-wal"
	if _, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).Then(clientv3.OpPut(key, "v")).Commit(); err != nil {
		t.Fatal(err)
	}
	// Copy the files while kine still has them open: what a crash leaves.
	crashed := newNode(t)
	if err := os.MkdirAll(crashed.l.DBDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(n.l.SQLiteFile() + suffix)
		if err != nil {
			t.Fatalf("kine's SQLite file%s: %v", suffix, err)
		}
		if err := os.WriteFile(crashed.l.SQLiteFile()+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	wal := fileSum(t, crashed.l.SQLiteFile()+"-wal")
	src, err := openSource(crashed.l.SQLiteFile())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	if err := src.each(ctx, "", func(r kv) error { found = found || r.key == key; return nil }); err != nil {
		t.Fatal(err)
	}
	src.Close()
	if !found {
		t.Fatal("the key in the WAL was not read")
	}
	if fileSum(t, crashed.l.SQLiteFile()+"-wal") != wal {
		t.Error("reading changed the WAL")
	}
}
