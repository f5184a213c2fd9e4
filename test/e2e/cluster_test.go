//go:build e2e

package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/k3ha/k3ha/test/e2e/harness"
)

// readyTimeout is generous: this 2-core machine may be busy building.
const readyTimeout = 2 * time.Minute

// server is one k3ha server process on its own host.
type server struct {
	t          *testing.T
	host       *harness.Host
	name       string
	dir        string // everything of this server: data dir, kubeconfig, config file, logs
	args       []string
	env        []string
	proc       *harness.Process
	starts     int
	kubeconfig string
}

// newServer prepares a server on host; nothing runs until start.
func newServer(t *testing.T, host *harness.Host, args ...string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{t: t, host: host, name: host.Name, dir: dir, kubeconfig: filepath.Join(dir, "kubeconfig.yaml")}
	if err := os.WriteFile(s.configFile(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s.args = append([]string{"server",
		"--config", s.configFile(),
		"--data-dir", s.dataDir(),
		"--write-kubeconfig", s.kubeconfig,
		"--node-name", host.Name,
	}, args...)
	return s
}

func (s *server) configFile() string { return filepath.Join(s.dir, "config.yaml") }
func (s *server) dataDir() string    { return filepath.Join(s.dir, "data") }
func (s *server) url() string        { return "https://" + net.JoinHostPort(s.host.IP.String(), "6443") }

// start runs the server process; each start logs to its own file.
func (s *server) start() {
	s.t.Helper()
	s.starts++
	log := filepath.Join(s.dir, fmt.Sprintf("k3ha-%d.log", s.starts))
	s.proc = s.host.Start(s.t, log, s.env, k3haBin, s.args...)
}

// waitReady waits for /v1-k3ha/readyz to say ok.
func (s *server) waitReady() {
	s.t.Helper()
	harness.WaitFor(s.t, readyTimeout, s.name+" ready", func() (bool, error) {
		if s.proc.Exited() {
			s.t.Fatalf("%s exited while starting:\n%s", s.name, tail(s.proc.Log(), 30))
		}
		body, code, err := s.get("/v1-k3ha/readyz")
		return err == nil && code == 200 && body == "ok", err
	})
}

// stop sends SIGTERM and requires a clean exit.
func (s *server) stop(timeout time.Duration) time.Duration {
	s.t.Helper()
	begin := time.Now()
	if err := s.proc.Stop(timeout); err != nil {
		s.t.Fatalf("%s did not stop cleanly on SIGTERM: %v\n%s", s.name, err, tail(s.proc.Log(), 30))
	}
	return time.Since(begin)
}

// get fetches a path of the supervisor port without credentials, trusting any certificate.
func (s *server) get(path string) (string, int, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Get(s.url() + path)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, err
}

// verifiedClient trusts only the CA the server hands out on /cacerts.
func (s *server) verifiedClient() *http.Client {
	s.t.Helper()
	ca, code, err := s.get("/cacerts")
	if err != nil || code != 200 {
		s.t.Fatalf("/cacerts: %d %v", code, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(ca)) {
		s.t.Fatalf("/cacerts returned no certificate: %q", ca)
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// kubectl runs the machine's own kubectl from the root namespace against this server.
func (s *server) kubectl(args ...string) (string, error) {
	all := append([]string{"--kubeconfig", s.kubeconfig, "--server", s.url(), "--request-timeout", "20s"}, args...)
	out, err := exec.Command("kubectl", all...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// mustKubectl is kubectl that fails the test on error.
func (s *server) mustKubectl(args ...string) string {
	s.t.Helper()
	out, err := s.kubectl(args...)
	if err != nil {
		s.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// k3haKubectl runs `k3ha kubectl` inside the server's own host.
func (s *server) k3haKubectl(args ...string) (string, error) {
	out, err := s.host.Run(s.t, k3haBin, append([]string{"kubectl", "--kubeconfig", s.kubeconfig}, args...)...)
	return strings.TrimSpace(out), err
}

// runK3ha runs a one-shot k3ha command on host and returns its output and exit code.
func runK3ha(t *testing.T, host *harness.Host, args ...string) (string, int) {
	t.Helper()
	out, err := host.Run(t, k3haBin, args...)
	if err == nil {
		return out, 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Exited() {
			return out, ws.ExitStatus()
		}
	}
	t.Fatalf("k3ha %s: %v\n%s", strings.Join(args, " "), err, out)
	return "", -1
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
