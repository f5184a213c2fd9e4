//go:build e2e

package e2e

import (
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

// dbInfoStatus asks /db/info with the server token.
func dbInfoStatus(t *testing.T, s *cluster.Server) int {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL()+"/db/info", nil)
	req.SetBasicAuth("server", haToken)
	resp, err := s.VerifiedClient().Do(req)
	if err != nil {
		t.Fatalf("/db/info: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestExternalPostgres runs two servers on one PostgreSQL database: an HA
// control plane without embedded etcd. The first server starts before the
// database does and waits for it; the second needs only the token and the
// same endpoint.
func TestExternalPostgres(t *testing.T) {
	n := harness.NewNetwork(t)
	pg := cluster.NewPostgres(t, n.AddHost(t, "pg"))
	dsn := pg.DSN("k3ha")

	s1 := newServer(t, n.AddHost(t, "s1"), "--disable-agent", "--datastore-endpoint", dsn)
	s1.Env = []string{"K3HA_TOKEN=" + haToken}
	s2 := newServer(t, n.AddHost(t, "s2"), "--disable-agent", "--datastore-endpoint", dsn)
	s2.Env = []string{"K3HA_TOKEN=" + haToken}

	t.Run("waits for an unreachable database", func(t *testing.T) {
		s1.Start()
		s1.WaitLog(t, time.Minute, `msg="datastore not reachable; retrying" address=`+pg.Addr()+` attempt=2`)
		if ok, _ := s1.Ready(); ok {
			t.Fatal("the server is ready without its datastore")
		}
		if s1.Proc.Exited() {
			t.Fatalf("the server gave up:\n%s", tail(s1.Proc.Log(), 20))
		}
		pg.Start()
		s1.WaitReady()
		s1.WaitLog(t, time.Second, `msg="datastore reachable"`)
	})

	t.Run("second server joins through the datastore", func(t *testing.T) {
		s2.Start()
		s2.WaitReady()
		s2.WaitLog(t, time.Second, "bootstrap data taken from the datastore")
		ca1, _, _ := s1.Get("/cacerts")
		ca2, _, _ := s2.Get("/cacerts")
		if ca1 == "" || ca1 != ca2 {
			t.Fatal("the servers serve different CAs")
		}
	})

	t.Run("each sees the other's writes", func(t *testing.T) {
		for _, w := range []*cluster.Server{s1, s2} {
			if err := putConfigMap(t, w, "from-"+w.Name, w.Name); err != nil {
				t.Fatalf("write through %s: %v", w.Name, err)
			}
		}
		for _, r := range []*cluster.Server{s1, s2} {
			for _, w := range []*cluster.Server{s1, s2} {
				waitConfigMap(t, r, "from-"+w.Name, w.Name)
			}
		}
		if out := s2.MustKubectl("get", "configmap", "from-s1", "-o", "jsonpath={.data.v}"); out != "s1" {
			t.Fatalf("kubectl through s2: %q", out)
		}
	})

	t.Run("no embedded etcd", func(t *testing.T) {
		for _, s := range []*cluster.Server{s1, s2} {
			if code := dbInfoStatus(t, s); code != 404 {
				t.Errorf("/db/info on %s: %d, want 404", s.Name, code)
			}
			if out, err := s.Host.Run(t, "ss", "-Htln", "sport", "= :2379"); err != nil || strings.TrimSpace(out) != "" {
				t.Errorf("%s listens on 2379: %q %v", s.Name, out, err)
			}
			if strings.Contains(s.Proc.Log(), pg.Password) {
				t.Errorf("the log of %s shows the database password", s.Name)
			}
		}
	})

	t.Run("one server survives the other", func(t *testing.T) {
		s1.Stop(30 * time.Second)
		if err := putConfigMap(t, s2, "s1-down", "y"); err != nil {
			t.Fatalf("write through s2 with s1 down: %v", err)
		}
		s1.Start()
		s1.WaitReady()
		waitConfigMap(t, s1, "s1-down", "y")
	})

	t.Run("SIGTERM ends the wait for a database", func(t *testing.T) {
		// A port nothing listens on: refused at once, again and again.
		dead := strings.Replace(dsn, pg.Addr(), net.JoinHostPort(pg.Host.IP.String(), "5433"), 1)
		s3 := newServer(t, n.AddHost(t, "s3"), "--disable-agent", "--datastore-endpoint", dead)
		s3.Env = []string{"K3HA_TOKEN=" + haToken}
		s3.Start()
		s3.WaitLog(t, time.Minute, "attempt=2")
		begin := time.Now()
		if err := s3.Proc.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if _, err := s3.Proc.Wait(10 * time.Second); err != nil {
			t.Fatalf("SIGTERM while waiting for the datastore: %v\n%s", err, tail(s3.Proc.Log(), 20))
		}
		t.Logf("stopped %v after SIGTERM", time.Since(begin).Round(time.Millisecond))
		if strings.Contains(s3.Proc.Log(), "kube-apiserver ready") {
			t.Fatal("the apiserver started without a datastore")
		}
	})
}

// TestExternalMariaDB is the same HA control plane on MariaDB (kine's
// mysql:// driver).
func TestExternalMariaDB(t *testing.T) {
	n := harness.NewNetwork(t)
	db := cluster.NewMariaDB(t, n.AddHost(t, "maria"))
	db.Start()
	dsn := db.DSN("k3ha")
	var servers []*cluster.Server
	for _, name := range []string{"s1", "s2"} {
		s := newServer(t, n.AddHost(t, name), "--disable-agent", "--datastore-endpoint", dsn)
		s.Env = []string{"K3HA_TOKEN=" + haToken}
		s.Start()
		s.WaitReady()
		servers = append(servers, s)
	}
	s1, s2 := servers[0], servers[1]
	s2.WaitLog(t, time.Second, "bootstrap data taken from the datastore")
	for _, w := range servers {
		if err := putConfigMap(t, w, "from-"+w.Name, w.Name); err != nil {
			t.Fatalf("write through %s: %v", w.Name, err)
		}
	}
	for _, r := range servers {
		for _, w := range servers {
			waitConfigMap(t, r, "from-"+w.Name, w.Name)
		}
		if code := dbInfoStatus(t, r); code != 404 {
			t.Errorf("/db/info on %s: %d, want 404", r.Name, code)
		}
		if strings.Contains(r.Proc.Log(), db.Password) {
			t.Errorf("the log of %s shows the database password", r.Name)
		}
	}
	ca1, _, _ := s1.Get("/cacerts")
	ca2, _, _ := s2.Get("/cacerts")
	if ca1 == "" || ca1 != ca2 {
		t.Fatal("the servers serve different CAs")
	}
}

// TestExternalEtcd points servers at an etcd they do not run: here the
// embedded etcd of another k3ha server, reached over its client port with
// mutual TLS (--datastore-cafile/-certfile/-keyfile), as an external etcd
// cluster would be.
func TestExternalEtcd(t *testing.T) {
	n := harness.NewNetwork(t)
	e := newServer(t, n.AddHost(t, "etcd"), "--disable-agent", "--cluster-init")
	e.Env = []string{"K3HA_TOKEN=" + haToken}
	e.Start()
	e.WaitReady()
	tlsDir := filepath.Join(e.DataDir(), "server", "tls")
	endpoint := "https://" + net.JoinHostPort(e.Host.IP.String(), "2379")
	args := func(ca string) []string {
		return []string{"--disable-agent", "--datastore-endpoint", endpoint, "--datastore-cafile", ca,
			"--datastore-certfile", filepath.Join(tlsDir, "etcd", "client.crt"),
			"--datastore-keyfile", filepath.Join(tlsDir, "etcd", "client.key")}
	}

	t.Run("a certificate the etcd refuses is retried, not half-started", func(t *testing.T) {
		// The wrong CA: the client refuses etcd's serving certificate.
		bad := newServer(t, n.AddHost(t, "bad"), args(filepath.Join(tlsDir, "server-ca.crt"))...)
		bad.Env = []string{"K3HA_TOKEN=" + haToken}
		bad.Start()
		bad.WaitLog(t, time.Minute, `msg="datastore does not answer; retrying" attempt=2`)
		if strings.Contains(bad.Proc.Log(), "kube-apiserver ready") {
			t.Fatal("the apiserver started although the datastore does not answer")
		}
		if err := bad.Proc.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if _, err := bad.Proc.Wait(15 * time.Second); err != nil {
			t.Fatalf("SIGTERM while waiting for the datastore: %v", err)
		}
	})

	t.Run("servers share the external etcd", func(t *testing.T) {
		s := newServer(t, n.AddHost(t, "s1"), args(filepath.Join(tlsDir, "etcd", "server-ca.crt"))...)
		s.Env = []string{"K3HA_TOKEN=" + haToken}
		s.Start()
		s.WaitReady()
		if err := putConfigMap(t, s, "from-s1", "s1"); err != nil {
			t.Fatal(err)
		}
		waitConfigMap(t, e, "from-s1", "s1")
		if code := dbInfoStatus(t, s); code != 404 {
			t.Errorf("/db/info on a server without embedded etcd: %d, want 404", code)
		}
	})
}
