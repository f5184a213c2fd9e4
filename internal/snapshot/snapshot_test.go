package snapshot

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// startEtcd runs a one-member etcd on loopback and returns a client of it.
func startEtcd(t *testing.T) (*clientv3.Client, string) {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Dir = filepath.Join(t.TempDir(), "etcd")
	cfg.LogLevel = "error"
	client, _ := url.Parse("http://127.0.0.1:0")
	peer, _ := url.Parse("http://127.0.0.1:0")
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
	cfg.InitialCluster = cfg.Name + "=" + peer.String()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("etcd not ready")
	}
	ep := e.Clients[0].Addr().String()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, ep
}

func put(t *testing.T, c *clientv3.Client, n int, prefix string) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := c.Put(context.Background(), fmt.Sprintf("%s/%03d", prefix, i), strings.Repeat("v", i)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSaveVerifyRestore(t *testing.T) {
	c, ep := startEtcd(t)
	ctx := context.Background()
	put(t, c, 100, "/registry/a")
	if _, err := c.Delete(ctx, "/registry/a/050"); err != nil {
		t.Fatal(err)
	}
	// Keys with a lease, as the apiserver's Events and leases have.
	l, err := c.Grant(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "/registry/events/e1", "x", clientv3.WithLease(l.ID)); err != nil {
		t.Fatal(err)
	}
	live := ClientLive{Client: c, Endpoint: ep}
	dir := t.TempDir()
	for _, compress := range []bool{false, true} {
		info, err := SaveEtcd(ctx, c, dir, "on-demand", "s1", compress)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(info.Name, ZstdSuffix) != compress || !strings.HasPrefix(info.Name, "on-demand-s1-") || info.Size == 0 {
			t.Fatalf("info %+v", info)
		}
		if err := Verify(ctx, dir, &info, live); err != nil {
			t.Fatal(err)
		}
		if !info.Verified || info.Keys != 100 || !strings.Contains(info.VerifyLog, "match the live member") {
			t.Fatalf("verified %+v", info)
		}
		time.Sleep(time.Second) // file names carry the second
	}
	list, err := List(dir, "s1")
	if err != nil || len(list) != 2 || !list[0].Verified || !list[1].Verified {
		t.Fatalf("list %+v %v", list, err)
	}

	// Restored as a new member, the data is there.
	restored := filepath.Join(t.TempDir(), "etcd")
	if err := RestoreEtcd(filepath.Join(dir, list[0].Name), restored, Member{Name: "s1", PeerURL: "https://10.0.0.1:2380"}); err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(restored)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if v, ok, err := st.Get(ctx, "/registry/a/007"); err != nil || !ok || string(v) != "vvvvvvv" {
		t.Fatalf("restored value %q %v %v", v, ok, err)
	}
	if _, ok, _ := st.Get(ctx, "/registry/a/050"); ok {
		t.Fatal("deleted key came back")
	}
}

func TestDamagedSnapshot(t *testing.T) {
	c, ep := startEtcd(t)
	ctx := context.Background()
	put(t, c, 20, "/k")
	dir := t.TempDir()
	info, err := SaveEtcd(ctx, c, dir, "on-demand", "s1", false)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, info.Name)
	data, _ := os.ReadFile(path)
	data[len(data)/2] ^= 0x01
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Verify(ctx, dir, &info, ClientLive{Client: c, Endpoint: ep}); err == nil || !strings.Contains(err.Error(), "integrity hash differs") {
		t.Fatalf("damaged snapshot: %v", err)
	}
	list, _ := List(dir, "s1")
	if list[0].Verified || !strings.Contains(list[0].Error, "damaged") {
		t.Fatalf("recorded %+v", list[0])
	}
	if err := RestoreEtcd(path, filepath.Join(t.TempDir(), "etcd"), Member{Name: "s1", PeerURL: "https://10.0.0.1:2380"}); err == nil {
		t.Fatal("a damaged snapshot was restored")
	}
	// Truncated: no trailer.
	if err := os.WriteFile(path, data[:len(data)-100], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckIntegrity(path); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("truncated: %v", err)
	}
}

func TestPrune(t *testing.T) {
	dir := t.TempDir()
	base := time.Unix(1_700_000_000, 0)
	mk := func(name string, i int, verified bool) {
		info := Info{Name: FileName(name, "s1", base.Add(time.Duration(i)*time.Hour)), Node: "s1", Verified: verified,
			Created: base.Add(time.Duration(i) * time.Hour)}
		if err := os.WriteFile(filepath.Join(dir, info.Name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := saveMeta(dir, info); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5; i++ {
		mk("etcd-snapshot", i, i != 3) // the 4th failed its check
	}
	mk("etcd-snapshot", 5, false)
	mk("on-demand", 0, true)
	deleted, err := Prune(dir, "s1", "etcd-snapshot", 2)
	if err != nil {
		t.Fatal(err)
	}
	// Kept: the newest failed one (5), verified 4 and 2; failed 3 is newer than 2, kept too.
	want := []string{FileName("etcd-snapshot", "s1", base.Add(time.Hour)), FileName("etcd-snapshot", "s1", base)}
	if strings.Join(deleted, ",") != strings.Join(want, ",") {
		t.Fatalf("deleted %v, want %v", deleted, want)
	}
	left, _ := List(dir, "s1")
	if len(left) != 5 {
		t.Fatalf("left %d: %+v", len(left), left)
	}
	if err := Delete(dir, "../escape"); err == nil {
		t.Fatal("a path was accepted as a snapshot name")
	}
}

func TestFileNames(t *testing.T) {
	at := time.Unix(1730308816, 0)
	if got := FileName("on-demand", "s1", at); got != "on-demand-s1-1730308816" {
		t.Fatal(got)
	}
	for _, name := range []string{"on-demand-s1-1730308816", "on-demand-s1-1730308816.zst", "etcd-snapshot-a-b-1730308816.db.zst"} {
		if ts, ok := createdAt(name); !ok || !ts.Equal(at) {
			t.Errorf("%s: %v %v", name, ts, ok)
		}
	}
}

func TestSQLiteBackup(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "state.db")
	db, err := sql.Open("sqlite3", "file:"+src)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE kine (id INTEGER PRIMARY KEY, name TEXT)"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if _, err := db.Exec("INSERT INTO kine (name) VALUES (?)", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	info, err := SaveSQLite(ctx, src, dir, "on-demand", "s1", true)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Verified || info.Keys != 50 || !strings.HasSuffix(info.Name, ".db.zst") {
		t.Fatalf("%+v", info)
	}
	list, _ := List(dir, "s1")
	if len(list) != 1 || list[0].Kind != "sqlite" {
		t.Fatalf("%+v", list)
	}
}
