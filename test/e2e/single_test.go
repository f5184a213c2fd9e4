//go:build e2e

package e2e

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/k3ha/k3ha/internal/gomem"
	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

// TestSingleServer is the life of one server on the embedded default
// (SQLite): start, serve, keep everything across a SIGTERM and a restart.
func TestSingleServer(t *testing.T) {
	n := harness.NewNetwork(t)
	s := newServer(t, n.AddHost(t, "solo"), "--disable-agent")
	s.Start()
	s.WaitReady()

	t.Run("supervisor paths", func(t *testing.T) {
		if body, code, err := s.Get("/ping"); err != nil || code != 200 || body != "pong" {
			t.Fatalf("/ping = %d %q %v", code, body, err)
		}
		client := s.VerifiedClient() // /cacerts must be the CA that signed the serving certificate
		resp, err := client.Get(s.URL() + "/readyz")
		if err != nil {
			t.Fatalf("/readyz with the CA from /cacerts: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("anonymous /readyz = %d, want 200", resp.StatusCode)
		}
		for _, path := range []string{"/api", "/api/v1/namespaces", "/version", "/metrics", "/apis"} {
			resp, err := client.Get(s.URL() + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Errorf("anonymous GET %s = %d, want 401", path, resp.StatusCode)
			}
		}
	})

	t.Run("files", func(t *testing.T) {
		tlsDir := filepath.Join(s.DataDir(), "server", "tls")
		keys, _ := filepath.Glob(filepath.Join(tlsDir, "*.key"))
		if len(keys) < 8 {
			t.Fatalf("expected the CA and component keys in %s, found %v", tlsDir, keys)
		}
		for _, f := range append(keys, s.Kubeconfig, filepath.Join(s.DataDir(), "server", "token")) {
			st, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %o, want 600", f, st.Mode().Perm())
			}
		}
		tok, err := os.ReadFile(filepath.Join(s.DataDir(), "server", "token"))
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^K10[0-9a-f]{64}::server:[0-9a-f]{64}\n$`).Match(tok) {
			t.Fatalf("token file is not in the K10 form: %q", tok)
		}
	})

	t.Run("kubectl", func(t *testing.T) {
		if out := s.MustKubectl("version"); !strings.Contains(out, "Server Version: v1.37.2+k3ha.") {
			t.Fatalf("kubectl version does not show k3ha's server version:\n%s", out)
		}
		s.MustKubectl("create", "configmap", "keep-me", "--from-literal=color=blue")
		s.MustKubectl("create", "secret", "generic", "keep-secret", "--from-literal=password=hunter2")
		s.MustKubectl("create", "deployment", "web", "--image=registry.invalid/web:1", "--replicas=2")
		// The ReplicaSet comes from the deployment controller: proof the controller-manager runs.
		harness.WaitFor(t, time.Minute, "ReplicaSet of deployment web", func() (bool, error) {
			out, err := s.Kubectl("get", "replicasets", "-l", "app=web", "-o", "jsonpath={.items[*].spec.replicas}")
			return out == "2", err
		})
		// Pods exist but stay Pending: no node runs them (--disable-agent).
		harness.WaitFor(t, time.Minute, "pods of deployment web", func() (bool, error) {
			out, err := s.Kubectl("get", "pods", "-l", "app=web", "-o", "name")
			return len(strings.Fields(out)) == 2, err
		})
		out, err := s.K3haKubectl("get", "configmap", "keep-me", "-o", "jsonpath={.data.color}")
		if err != nil || out != "blue" {
			t.Fatalf("k3ha kubectl get configmap: %q %v", out, err)
		}
	})

	t.Run("go garbage collector", func(t *testing.T) {
		mem, err := gomem.MemTotal()
		if err != nil {
			t.Fatal(err)
		}
		checkGC(t, s, "75", strconv.FormatInt(mem/2, 10))
		s.WaitLog(t, time.Minute, "start-up memory released")
		checkBinaryPagedOut(t, s.Proc.Log())
		if !strings.Contains(s.Proc.Log(), "gc-percent=75 gc-percent-from=default memory-limit-from=default memory-limit-mib="+strconv.FormatInt(mem>>21, 10)) {
			t.Fatalf("the collector's settings are not logged:\n%s", tail(s.Proc.Log(), 40))
		}
		s.Stop(30 * time.Second)
		// What the release paged out is read back for the next start.
		if !strings.Contains(s.Proc.Log(), "binary's paged-out pages read back into the page cache for the next start") {
			t.Fatalf("the stop did not read the binary back:\n%s", tail(s.Proc.Log(), 20))
		}
		// The Go environment variables override k3ha's defaults.
		env := s.Env
		s.Env = append(slices.Clone(env), "GOGC=80", "GOMEMLIMIT=1GiB")
		defer func() { s.Env = env }()
		s.Start()
		s.WaitReady()
		checkGC(t, s, "80", "1073741824")
		if !strings.Contains(s.Proc.Log(), "gc-percent=80 gc-percent-from=GOGC memory-limit-from=GOMEMLIMIT memory-limit-mib=1024") {
			t.Fatalf("the collector's settings from the environment are not logged:\n%s", tail(s.Proc.Log(), 40))
		}
	})

	t.Run("restart keeps everything", func(t *testing.T) {
		took := s.Stop(30 * time.Second)
		t.Logf("SIGTERM to exit: %v", took)
		if log := s.Proc.Log(); strings.Contains(log, "database is locked") {
			t.Fatalf("shutdown logged a locked database:\n%s", tail(log, 20))
		}
		if !strings.Contains(s.Proc.Log(), `msg=stopped component="datastore (kine)"`) {
			t.Fatalf("the datastore was not stopped last in order:\n%s", tail(s.Proc.Log(), 20))
		}
		s.Start()
		s.WaitReady()
		if log := s.Proc.Log(); strings.Contains(log, "database is locked") || strings.Contains(log, "malformed") {
			t.Fatalf("restart found a damaged database:\n%s", tail(log, 20))
		}
		if out := s.MustKubectl("get", "configmap", "keep-me", "-o", "jsonpath={.data.color}"); out != "blue" {
			t.Fatalf("configmap after restart: %q", out)
		}
		enc := s.MustKubectl("get", "secret", "keep-secret", "-o", "jsonpath={.data.password}")
		if dec, _ := base64.StdEncoding.DecodeString(enc); string(dec) != "hunter2" {
			t.Fatalf("secret after restart: %q", enc)
		}
		if out := s.MustKubectl("get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"); out != "2" {
			t.Fatalf("deployment after restart: %q", out)
		}
		if !strings.Contains(s.Proc.Log(), "created=false") {
			t.Fatalf("certificates were regenerated on restart:\n%s", tail(s.Proc.Log(), 20))
		}
	})

	t.Run("snapshot of the SQLite datastore", func(t *testing.T) {
		out, code := runK3ha(t, s.Host, "etcd-snapshot", "save", "--data-dir", s.DataDir())
		if code != 0 || !strings.Contains(out, ".db saved") || !strings.Contains(out, "integrity_check ok") {
			t.Fatalf("save: exit %d\n%s", code, out)
		}
		files, _ := filepath.Glob(filepath.Join(s.DataDir(), "server", "db", "snapshots", "on-demand-solo-*.db"))
		if len(files) != 1 {
			t.Fatalf("snapshot files: %v", files)
		}
		out, code = runK3ha(t, s.Host, "etcd-snapshot", "ls", "--data-dir", s.DataDir())
		if code != 0 || !strings.Contains(out, filepath.Base(files[0])) {
			t.Fatalf("ls: exit %d\n%s", code, out)
		}
	})

	t.Run("a different token cannot open the cluster", func(t *testing.T) {
		s.Stop(30 * time.Second)
		tokenFile := filepath.Join(s.DataDir(), "server", "token")
		original, err := os.ReadFile(tokenFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(tokenFile); err != nil {
			t.Fatal(err)
		}
		out, code := runK3ha(t, s.Host, append(append([]string{}, s.Args...), "--token", "another-secret")...)
		if code == 0 || !strings.Contains(out, "cannot decrypt the bootstrap data") {
			t.Fatalf("start with another token: exit %d\n%s", code, tail(out, 10))
		}
		out, code = runK3ha(t, s.Host, s.Args...)
		if code == 0 || !strings.Contains(out, "start this server with that cluster's token") {
			t.Fatalf("start without a token: exit %d\n%s", code, tail(out, 10))
		}
		s.Env = []string{"K3HA_TOKEN=" + strings.TrimSpace(string(original))}
		s.Start()
		s.WaitReady()
		if out := s.MustKubectl("get", "configmap", "keep-me", "-o", "jsonpath={.data.color}"); out != "blue" {
			t.Fatalf("configmap after the refused starts: %q", out)
		}
	})

	t.Run("second server on the same data dir is refused", func(t *testing.T) {
		args := append([]string{}, s.Args...)
		args = append(args, "--https-listen-port", "7443", "--write-kubeconfig", filepath.Join(s.Dir, "second.yaml"))
		out, code := runK3ha(t, s.Host, args...)
		if code == 0 || !strings.Contains(out, "is in use by another k3ha process") {
			t.Fatalf("second server: exit %d, output:\n%s", code, out)
		}
		if out := s.MustKubectl("get", "configmap", "keep-me", "-o", "jsonpath={.data.color}"); out != "blue" {
			t.Fatalf("first server after the refused second start: %q", out)
		}
	})

	t.Run("SIGTERM within 10 s", func(t *testing.T) {
		took := s.Stop(30 * time.Second)
		t.Logf("SIGTERM to exit: %v", took)
		if took > 10*time.Second {
			t.Errorf("shutdown took %v; the promise is 10 s", took)
		}
	})
}

// TestBadInvocations checks that mistakes on the command line give a clear
// message and a non-zero exit, and leave no data behind.
func TestBadInvocations(t *testing.T) {
	n := harness.NewNetwork(t)
	h := n.AddHost(t, "bad")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	unknownKey := filepath.Join(dir, "unknown.yaml")
	if err := os.WriteFile(unknownKey, []byte("cluster-cidr: 10.42.0.0/16\nclustr-dns: 10.43.0.10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"unreadable config", []string{"--config", dir}, []string{"config file", dir}},
		{"missing config", []string{"--config", filepath.Join(dir, "nope.yaml")}, []string{"config file", "no such file"}},
		{"unknown config key", []string{"--config", unknownKey}, []string{`unknown key "clustr-dns"`}},
		{"bad cidr", []string{"--cluster-cidr", "10.42.0.0/99"}, []string{"--cluster-cidr"}},
		{"dns outside services", []string{"--cluster-dns", "10.99.0.10"}, []string{"--cluster-dns", "--service-cidr"}},
		{"unknown flag", []string{"--no-such-flag"}, []string{"no-such-flag"}},
		{"old flannel backend", []string{"--flannel-backend", "wireguard"}, []string{"--flannel-backend", "wireguard-native"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"server", "--data-dir", data, "--disable-agent", "--node-name", "bad"}
			if !contains(c.args, "--config") {
				args = append(args, "--config", filepath.Join(dir, "empty.yaml"))
				_ = os.WriteFile(filepath.Join(dir, "empty.yaml"), nil, 0o600)
			}
			out, code := runK3ha(t, h, append(args, c.args...)...)
			if code == 0 {
				t.Fatalf("exit 0, want an error; output:\n%s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not mention %q:\n%s", w, out)
				}
			}
			if _, err := os.Stat(data); err == nil {
				t.Errorf("a refused start created %s", data)
			}
		})
	}
	t.Run("version", func(t *testing.T) {
		out, code := runK3ha(t, h, "--version")
		if code != 0 || !strings.HasPrefix(out, "k3ha version v1.37.2+k3ha.") {
			t.Fatalf("--version: exit %d %q", code, out)
		}
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkGC reads the collector's settings from the process's own /metrics.
func checkGC(t *testing.T, s *cluster.Server, gcPercent, memLimit string) {
	t.Helper()
	metrics := s.MustKubectl("get", "--raw", "/metrics")
	for name, want := range map[string]string{"go_gc_gogc_percent": gcPercent, "go_gc_gomemlimit_bytes": memLimit} {
		got := metricValue(metrics, name)
		if f, err := strconv.ParseFloat(got, 64); err == nil {
			got = strconv.FormatFloat(f, 'f', -1, 64)
		}
		if got != want {
			t.Errorf("%s = %q, want %s", name, got, want)
		}
	}
}

// checkBinaryPagedOut requires the start-up release to have paged out
// part of the binary: fewer of its pages resident after than before.
func checkBinaryPagedOut(t *testing.T, log string) {
	t.Helper()
	m := regexp.MustCompile(`msg="start-up memory released".* binary-resident-mib-before=(\d+) binary-resident-mib-after=(\d+)(.*)`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no start-up release with the binary's resident size logged:\n%s", tail(log, 40))
	}
	before, _ := strconv.Atoi(m[1])
	after, _ := strconv.Atoi(m[2])
	if strings.Contains(m[3], "binary-page-out-error") || after >= before {
		t.Fatalf("the binary's start-up pages were not paged out: %s", m[0])
	}
	t.Logf("binary resident: %d MiB before the start-up release, %d MiB after", before, after)
}

// metricValue is the value of an unlabelled metric in a Prometheus text page.
func metricValue(page, name string) string {
	for _, line := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
