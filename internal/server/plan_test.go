package server

import (
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/datastore"
	"github.com/k3ha/k3ha/internal/datastore/etcd"
	"github.com/k3ha/k3ha/internal/token"
)

func testConfig(mod func(*config.Server)) *config.Server {
	cfg := &config.Server{DataDir: "/var/lib/k3ha"}
	if mod != nil {
		mod(cfg)
	}
	return cfg
}

func testFacts(mod func(*facts)) facts {
	f := facts{fresh: true, node: node{name: "s1", ip: net.ParseIP("10.0.0.1"), advertise: net.ParseIP("10.0.0.1")},
		token: token.Token{Username: token.RoleServer, Password: "secret"}}
	if mod != nil {
		mod(&f)
	}
	return f
}

// Each row of the datastore rules, in their order.
func TestDecideDatastore(t *testing.T) {
	cases := []struct {
		name     string
		cfg      func(*config.Server)
		facts    func(*facts)
		kind     datastore.Kind
		mode     etcd.Mode
		ignored  []string
		migrate  bool
		finish   bool
		undoFail bool
		early    bool
	}{
		{name: "no flags, empty dir: SQLite", kind: datastore.SQLite, undoFail: true},
		{name: "no flags, SQLite data: SQLite", facts: func(f *facts) { f.fresh, f.sqliteData = false, true }, kind: datastore.SQLite},
		{name: "etcd data wins over every flag",
			cfg: func(c *config.Server) {
				c.ClusterInit, c.ServerURL, c.DatastoreEndpoint = true, "https://10.0.0.2:6443", "postgres://db"
			},
			facts: func(f *facts) { f.fresh, f.etcdData = false, true },
			kind:  datastore.EtcdExisting, mode: etcd.Existing, ignored: []string{"--cluster-init", "--server", "--datastore-endpoint"}, early: true},
		{name: "etcd data, no flags", facts: func(f *facts) { f.fresh, f.etcdData = false, true }, kind: datastore.EtcdExisting, mode: etcd.Existing, early: true},
		{name: "etcd data and a leftover SQLite file: finish the migration",
			facts: func(f *facts) { f.fresh, f.etcdData, f.sqliteData = false, true, true },
			kind:  datastore.EtcdExisting, mode: etcd.Existing, finish: true, early: true},
		{name: "--datastore-endpoint", cfg: func(c *config.Server) { c.DatastoreEndpoint = "postgres://db" }, kind: datastore.External, undoFail: true},
		{name: "--datastore-endpoint beats --server", cfg: func(c *config.Server) {
			c.DatastoreEndpoint, c.ServerURL = "postgres://db", "https://10.0.0.2:6443"
		}, kind: datastore.External, undoFail: true},
		{name: "--cluster-init: new etcd cluster", cfg: func(c *config.Server) { c.ClusterInit = true }, kind: datastore.EtcdNew, mode: etcd.NewCluster, undoFail: true, early: true},
		{name: "--cluster-init with SQLite data: migrate first",
			cfg: func(c *config.Server) { c.ClusterInit = true }, facts: func(f *facts) { f.fresh, f.sqliteData = false, true },
			kind: datastore.EtcdNew, mode: etcd.Existing, migrate: true, early: true},
		{name: "--server: join", cfg: func(c *config.Server) { c.ServerURL = "https://10.0.0.2:6443" }, kind: datastore.EtcdJoin, mode: etcd.Join, undoFail: true},
		{name: "--server beats --cluster-init", cfg: func(c *config.Server) { c.ServerURL, c.ClusterInit = "https://10.0.0.2:6443", true },
			kind: datastore.EtcdJoin, mode: etcd.Join, undoFail: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := decide(testConfig(tc.cfg), testFacts(tc.facts))
			if err != nil {
				t.Fatal(err)
			}
			if p.datastore != tc.kind {
				t.Errorf("datastore %s, want %s", p.datastore, tc.kind)
			}
			if tc.kind.Etcd() && p.etcdMode != tc.mode {
				t.Errorf("etcd mode %s, want %s", p.etcdMode, tc.mode)
			}
			if !slices.Equal(p.ignored, tc.ignored) {
				t.Errorf("ignored %v, want %v", p.ignored, tc.ignored)
			}
			if p.migrate != tc.migrate || p.finishMigration != tc.finish || p.undoOnFailure != tc.undoFail {
				t.Errorf("migrate=%v finish=%v undo=%v, want %v %v %v", p.migrate, p.finishMigration, p.undoOnFailure, tc.migrate, tc.finish, tc.undoFail)
			}
			if p.buildAPIServerEarly != tc.early {
				t.Errorf("build the apiserver early=%v, want %v", p.buildAPIServerEarly, tc.early)
			}
			if p.reset {
				t.Error("reset planned without --cluster-reset")
			}
		})
	}
}

// A restore needs no etcd data: it may run on a new host.
func TestDecideRestore(t *testing.T) {
	p, err := decide(testConfig(func(c *config.Server) { c.ClusterReset, c.ClusterResetRestorePath = true, "snap-1" }), testFacts(nil))
	if err != nil {
		t.Fatal(err)
	}
	if p.restore != "snap-1" || !p.reset || !p.undoOnFailure {
		t.Fatalf("plan %+v", p)
	}
}

func TestDecideReset(t *testing.T) {
	p, err := decide(testConfig(func(c *config.Server) { c.ClusterReset = true }), testFacts(func(f *facts) { f.fresh, f.etcdData = false, true }))
	if err != nil {
		t.Fatal(err)
	}
	if !p.reset || p.datastore != datastore.EtcdExisting || p.undoOnFailure {
		t.Fatalf("plan %+v", p)
	}
}

// Every refusal says what is wrong and changes nothing (decide has no
// effects; the tests of Run check the data dir).
func TestDecideRefusals(t *testing.T) {
	notLocal := errors.New("--node-ip 10.9.9.9 is not an address of this machine")
	cases := []struct {
		name  string
		cfg   func(*config.Server)
		facts func(*facts)
		want  string
	}{
		{name: "reset without etcd data", cfg: func(c *config.Server) { c.ClusterReset = true },
			want: "--cluster-reset: /var/lib/k3ha/server/db/etcd holds no etcd data"},
		{name: "reset on a foreign node IP", cfg: func(c *config.Server) { c.ClusterReset = true },
			facts: func(f *facts) { f.etcdData, f.nodeIPErr = true, notLocal }, want: "is not an address of this machine"},
		{name: "join with the agent token", cfg: func(c *config.Server) { c.ServerURL = "https://10.0.0.2:6443" },
			facts: func(f *facts) { f.token.Username = token.RoleNode }, want: "--token is an agent token"},
		{name: "join with SQLite data", cfg: func(c *config.Server) { c.ServerURL = "https://10.0.0.2:6443" },
			facts: func(f *facts) { f.fresh, f.sqliteData = false, true }, want: "holds SQLite data"},
		{name: "new etcd cluster on a foreign node IP", cfg: func(c *config.Server) { c.ClusterInit = true },
			facts: func(f *facts) { f.nodeIPErr = notLocal }, want: "is not an address of this machine"},
		{name: "existing etcd on a foreign node IP",
			facts: func(f *facts) { f.etcdData, f.nodeIPErr = true, notLocal }, want: "is not an address of this machine"},
		{name: "bad etcd arg", cfg: func(c *config.Server) { c.ClusterInit, c.EtcdArgs = true, []string{"no-such-setting=1"} },
			want: "no-such-setting"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decide(testConfig(tc.cfg), testFacts(tc.facts))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// A node IP that is not local only matters to embedded etcd, which binds it.
func TestDecideNodeIPOnlyForEtcd(t *testing.T) {
	f := testFacts(func(f *facts) { f.nodeIPErr = errors.New("not local") })
	if _, err := decide(testConfig(nil), f); err != nil {
		t.Fatalf("SQLite refused a non-local node IP: %v", err)
	}
}

func TestDecideComponents(t *testing.T) {
	p, err := decide(testConfig(func(c *config.Server) { c.Disable = []string{"servicelb", "coredns"}; c.DisableAgent = true }), testFacts(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.disabled, []string{"coredns", "servicelb"}) {
		t.Errorf("disabled %v", p.disabled)
	}
	if !slices.Equal(p.components, []string{"rolebindings", "local-storage", "metrics-server", "traefik"}) {
		t.Errorf("components %v", p.components)
	}
	if p.agent {
		t.Error("agent planned with --disable-agent")
	}
}
