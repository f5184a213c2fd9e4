package bootstrap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/pki"
)

// newServerDir makes a server directory with real CAs and the
// service-account key, as a first server has after start-up.
func newServerDir(t *testing.T) layout.Server {
	t.Helper()
	l := layout.NewServer(t.TempDir())
	for _, ca := range []string{layout.ServerCA, layout.ClientCA, layout.RequestHeaderCA, layout.EtcdServerCA, layout.EtcdPeerCA} {
		if _, _, err := pki.LoadOrCreateCA(l.TLSDir(), ca, "test-"+ca); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pki.EnsureKey(l.Key(layout.ServiceAccount), l.ServiceAccountPublicKey()); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestFilesDerivedFromLayout(t *testing.T) {
	want := []string{
		"tls/server-ca.crt", "tls/server-ca.key",
		"tls/client-ca.crt", "tls/client-ca.key",
		"tls/request-header-ca.crt", "tls/request-header-ca.key",
		"tls/etcd/server-ca.crt", "tls/etcd/server-ca.key",
		"tls/etcd/peer-ca.crt", "tls/etcd/peer-ca.key",
		"tls/service.key", "tls/service.pub",
		"cred/encryption-config.json", "agent-token",
	}
	if got := Files(); !slices.Equal(got, want) {
		t.Fatalf("Files() = %q\nwant %q", got, want)
	}
}

func TestCollectWriteRoundTrip(t *testing.T) {
	src := newServerDir(t)
	if err := os.WriteFile(src.AgentTokenFile(), []byte("K10abc::node:secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := Collect(src)
	if err != nil {
		t.Fatal(err)
	}
	// Everything but the absent encryption config.
	if len(d.Files) != len(Files())-1 {
		t.Fatalf("collected %d files, want %d: %v", len(d.Files), len(Files())-1, d.paths())
	}
	if _, ok := d.Files["cred/encryption-config.json"]; ok {
		t.Fatal("absent optional file collected")
	}

	dst := layout.NewServer(t.TempDir())
	if got := d.Missing(dst); len(got) != len(d.Files) {
		t.Fatalf("Missing on empty dir = %v", got)
	}
	if err := d.Write(dst); err != nil {
		t.Fatal(err)
	}
	for rel, want := range d.Files {
		path := filepath.Join(dst.Root, rel)
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: content differs", rel)
		}
		wantMode := os.FileMode(0o600)
		if strings.HasSuffix(rel, ".crt") || strings.HasSuffix(rel, ".pub") {
			wantMode = 0o644
		}
		if fi, err := os.Stat(path); err != nil {
			t.Fatal(err)
		} else if fi.Mode().Perm() != wantMode {
			t.Errorf("%s: mode %o, want %o", rel, fi.Mode().Perm(), wantMode)
		}
	}
	// The written CAs are usable as such.
	if _, err := pki.LoadCA(dst.TLSDir(), layout.EtcdPeerCA); err != nil {
		t.Fatal(err)
	}
	again, err := Collect(dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Files) != len(d.Files) {
		t.Fatalf("re-collected %d files, want %d", len(again.Files), len(d.Files))
	}
	if m, diff := d.Missing(dst), d.Differing(dst); len(m)+len(diff) != 0 {
		t.Fatalf("after write: missing %v, differing %v", m, diff)
	}
}

func TestCollectOptionalFiles(t *testing.T) {
	l := newServerDir(t)
	if err := pki.WriteFileAtomic(l.EncryptionConfig(), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := Collect(l)
	if err != nil {
		t.Fatal(err)
	}
	if string(d.Files["cred/encryption-config.json"]) != "{}" {
		t.Fatalf("encryption config not collected: %v", d.paths())
	}
	if _, ok := d.Files["agent-token"]; ok {
		t.Fatal("absent agent token collected")
	}
}

func TestCollectMissingRequired(t *testing.T) {
	l := newServerDir(t)
	missing := l.Key(layout.RequestHeaderCA)
	if err := os.Remove(missing); err != nil {
		t.Fatal(err)
	}
	_, err := Collect(l)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Collect error %v, want one naming %s", err, missing)
	}
}

func TestWriteRejectsEscapingPaths(t *testing.T) {
	l := layout.NewServer(t.TempDir())
	for _, bad := range []string{"../outside", "tls/../../outside", "/etc/passwd", "", ".", "tls/.."} {
		d := Data{Files: map[string][]byte{
			"tls/fine.crt": []byte("x"),
			bad:            []byte("evil"),
		}}
		if err := d.Write(l); err == nil {
			t.Errorf("path %q accepted", bad)
		}
		// Nothing at all is written when one path is bad.
		if _, err := os.Stat(filepath.Join(l.Root, "tls/fine.crt")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("path %q: other files written anyway (%v)", bad, err)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(l.Root), "outside")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("file written outside the server directory")
	}
	if err := (Data{Files: map[string][]byte{"a": nil}}).Write(layout.Server{}); err == nil {
		t.Fatal("write with empty root accepted")
	}
}

func TestMissingAndDiffering(t *testing.T) {
	l := layout.NewServer(t.TempDir())
	d := Data{Files: map[string][]byte{
		"tls/same.crt":  []byte("same"),
		"tls/other.key": []byte("new"),
		"tls/gone.key":  []byte("gone"),
		"../escape":     []byte("x"),
	}}
	for rel, content := range map[string]string{"tls/same.crt": "same", "tls/other.key": "old"} {
		if err := pki.WriteFileAtomic(filepath.Join(l.Root, rel), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got := d.Missing(l); !slices.Equal(got, []string{"tls/gone.key"}) {
		t.Errorf("Missing = %v", got)
	}
	if got := d.Differing(l); !slices.Equal(got, []string{"tls/other.key"}) {
		t.Errorf("Differing = %v", got)
	}
}

func testData() Data {
	return Data{Files: map[string][]byte{
		"tls/server-ca.key": []byte("-----BEGIN PRIVATE KEY-----\nsecret\n"),
		"agent-token":       []byte("K10abc::node:pw\n"),
		"empty":             {},
	}}
}

func TestSealOpenRoundTrip(t *testing.T) {
	d := testData()
	blob, err := Seal(d, "cluster-secret")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, []byte("secret\n")) || bytes.Contains(blob, []byte("cluster-secret")) {
		t.Fatal("blob contains plaintext")
	}
	var env map[string]any
	if err := json.Unmarshal(blob, &env); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "kdf", "salt", "nonce", "ciphertext"} {
		if _, ok := env[k]; !ok {
			t.Errorf("envelope lacks %q: %s", k, blob)
		}
	}
	if env["version"] != float64(1) || env["kdf"] != "argon2id" {
		t.Errorf("envelope header %v %v", env["version"], env["kdf"])
	}

	got, err := Open(blob, "cluster-secret")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Files) != len(d.Files) {
		t.Fatalf("opened %d files, want %d", len(got.Files), len(d.Files))
	}
	for rel, want := range d.Files {
		if !bytes.Equal(got.Files[rel], want) {
			t.Errorf("%s: %q, want %q", rel, got.Files[rel], want)
		}
	}

	// Fresh salt and nonce every time.
	blob2, err := Seal(d, "cluster-secret")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(blob, blob2) {
		t.Fatal("two seals gave the same blob")
	}
}

func TestOpenWrongToken(t *testing.T) {
	blob, err := Seal(testData(), "right")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(blob, "wrong")
	if !errors.Is(err, ErrWrongToken) {
		t.Fatalf("Open with wrong secret: %v, want ErrWrongToken", err)
	}
	if strings.Contains(err.Error(), "right") || strings.Contains(err.Error(), "wrong\"") {
		t.Fatalf("error mentions a secret: %v", err)
	}
}

func TestOpenTampered(t *testing.T) {
	blob, err := Seal(testData(), "s")
	if err != nil {
		t.Fatal(err)
	}
	var env envelope
	if err := json.Unmarshal(blob, &env); err != nil {
		t.Fatal(err)
	}
	env.Ciphertext[len(env.Ciphertext)/2] ^= 1
	tampered, _ := json.Marshal(env)
	if _, err := Open(tampered, "s"); err == nil {
		t.Fatal("tampered ciphertext opened")
	}
}

func TestOpenMalformed(t *testing.T) {
	good, err := Seal(testData(), "s")
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(*envelope)) []byte {
		var env envelope
		if err := json.Unmarshal(good, &env); err != nil {
			t.Fatal(err)
		}
		f(&env)
		b, _ := json.Marshal(env)
		return b
	}
	cases := map[string][]byte{
		"not json":      []byte("not json"),
		"empty":         nil,
		"version 2":     edit(func(e *envelope) { e.Version = 2 }),
		"no version":    edit(func(e *envelope) { e.Version = 0 }),
		"other kdf":     edit(func(e *envelope) { e.KDF = "scrypt" }),
		"short salt":    edit(func(e *envelope) { e.Salt = e.Salt[:4] }),
		"short nonce":   edit(func(e *envelope) { e.Nonce = e.Nonce[:4] }),
		"no ciphertext": edit(func(e *envelope) { e.Ciphertext = nil }),
	}
	for name, blob := range cases {
		_, err := Open(blob, "s")
		if err == nil {
			t.Errorf("%s: opened", name)
			continue
		}
		if errors.Is(err, ErrWrongToken) {
			t.Errorf("%s: reported as wrong token: %v", name, err)
		}
	}
}

func TestSealEmptySecret(t *testing.T) {
	if _, err := Seal(testData(), ""); err == nil {
		t.Fatal("sealed with an empty secret")
	}
}

// fakeKV is an in-memory clientv3.KV for exactly what this package calls.
// The embedded nil interface panics on anything else.
type fakeKV struct {
	clientv3.KV
	data map[string]string
}

func (f *fakeKV) Get(_ context.Context, key string, _ ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	v, ok := f.data[key]
	if !ok {
		return &clientv3.GetResponse{}, nil
	}
	return &clientv3.GetResponse{Kvs: []*mvccpb.KeyValue{{Key: []byte(key), Value: []byte(v)}}}, nil
}

func (f *fakeKV) Txn(context.Context) clientv3.Txn { return &fakeTxn{kv: f} }

type fakeTxn struct {
	kv   *fakeKV
	cmps []clientv3.Cmp
	then []clientv3.Op
}

func (t *fakeTxn) If(cs ...clientv3.Cmp) clientv3.Txn   { t.cmps = append(t.cmps, cs...); return t }
func (t *fakeTxn) Then(ops ...clientv3.Op) clientv3.Txn { t.then = append(t.then, ops...); return t }
func (t *fakeTxn) Else(...clientv3.Op) clientv3.Txn     { panic("fakeTxn: Else not supported") }

// Commit understands only "ModRevision(key) = 0" (the key is absent)
// and puts.
func (t *fakeTxn) Commit() (*clientv3.TxnResponse, error) {
	for _, c := range t.cmps {
		pc := c.GetCompare()
		if pc.Target != pb.Compare_MOD || pc.Result != pb.Compare_EQUAL || pc.GetModRevision() != 0 {
			panic("fakeTxn: unsupported compare")
		}
		if _, exists := t.kv.data[string(pc.Key)]; exists {
			return &clientv3.TxnResponse{Succeeded: false}, nil
		}
	}
	for _, op := range t.then {
		if !op.IsPut() {
			panic("fakeTxn: only puts supported")
		}
		t.kv.data[string(op.KeyBytes())] = string(op.ValueBytes())
	}
	return &clientv3.TxnResponse{Succeeded: true}, nil
}

func TestSaveLoad(t *testing.T) {
	ctx := context.Background()
	kv := &fakeKV{data: map[string]string{}}
	if _, found, err := Load(ctx, kv); err != nil || found {
		t.Fatalf("Load on empty store: found=%v err=%v", found, err)
	}
	stored, err := Save(ctx, kv, []byte("first"))
	if err != nil || !stored {
		t.Fatalf("first Save: stored=%v err=%v", stored, err)
	}
	stored, err = Save(ctx, kv, []byte("second"))
	if err != nil || stored {
		t.Fatalf("second Save: stored=%v err=%v, want stored=false", stored, err)
	}
	blob, found, err := Load(ctx, kv)
	if err != nil || !found || string(blob) != "first" {
		t.Fatalf("Load = %q %v %v, want the first blob", blob, found, err)
	}
	if _, ok := kv.data[Key]; !ok || len(kv.data) != 1 {
		t.Fatalf("stored under %v, want only %s", kv.data, Key)
	}
}
