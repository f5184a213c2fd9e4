// Package cluster drives real k3ha processes for the end-to-end tests and
// the benchmarks: one Server per test host (network namespace).
package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/k3ha/k3ha/test/e2e/harness"
)

// ReadyTimeout is generous: this 2-core machine may be busy building.
const ReadyTimeout = 2 * time.Minute

// Binary returns the k3ha binary under test: $K3HA_BIN, or bin/k3ha built
// with `make build`, copied alone into dir, an empty directory: a node
// needs nothing but that one file (call once, from TestMain).
func Binary(dir string) (string, error) {
	src := os.Getenv("K3HA_BIN")
	if src == "" {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..", "..")
		build := exec.Command("make", "-C", root, "build")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return "", fmt.Errorf("building k3ha: %w", err)
		}
		src = filepath.Join(root, "bin", "k3ha")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "k3ha")
	if err := CopyExecutable(src, bin); err != nil {
		return "", fmt.Errorf("copy k3ha: %w", err)
	}
	return bin, nil
}

// CopyExecutable copies a program to a new file, written back to disk as an
// installed program is: the kernel does not page out dirty page-cache pages,
// and k3ha pages out its binary's start-up code.
func CopyExecutable(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Server is one k3ha server process on its own host.
type Server struct {
	T          testing.TB
	Bin        string
	Host       *harness.Host
	Name       string
	Dir        string // everything of this server: data dir, kubeconfig, config file, logs
	Args       []string
	Env        []string
	Proc       *harness.Process
	Starts     int
	Kubeconfig string
}

// NewServer prepares a server on host; nothing runs until Start.
func NewServer(t testing.TB, bin string, host *harness.Host, args ...string) *Server {
	t.Helper()
	s := newNode(t, bin, host)
	s.Kubeconfig = filepath.Join(s.Dir, "kubeconfig.yaml")
	s.Args = append([]string{"server",
		"--config", s.ConfigFile(),
		"--data-dir", s.DataDir(),
		"--write-kubeconfig", s.Kubeconfig,
		"--node-name", host.Name,
	}, args...)
	return s
}

// newNode is what a server and an agent share: a directory of their own
// with an empty config file, and the killing of what is left of the node
// after the test.
func newNode(t testing.TB, bin string, host *harness.Host) *Server {
	t.Helper()
	dir := t.TempDir()
	s := &Server{T: t, Bin: bin, Host: host, Name: host.Name, Dir: dir}
	if err := os.WriteFile(s.ConfigFile(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Registered before any start, so it runs after the process is killed.
	t.Cleanup(func() { killNode(t, host.Name, dir) })
	return s
}

func (s *Server) ConfigFile() string { return filepath.Join(s.Dir, "config.yaml") }
func (s *Server) DataDir() string    { return filepath.Join(s.Dir, "data") }
func (s *Server) URL() string        { return "https://" + net.JoinHostPort(s.Host.IP.String(), "6443") }

// Start runs the server process; each start logs to its own file. Its
// PATH holds what the distribution provides but no runc or CNI plugins:
// those come from k3ha's own payload.
func (s *Server) Start() {
	s.T.Helper()
	s.Starts++
	log := filepath.Join(s.Dir, fmt.Sprintf("k3ha-%d.log", s.Starts))
	s.Proc = s.Host.Start(s.T, log, nodeEnv(s.Env), s.Bin, s.Args...)
}

// Ready reports whether /v1-k3ha/readyz says ok.
func (s *Server) Ready() (bool, error) {
	body, code, err := s.Get("/v1-k3ha/readyz")
	return err == nil && code == 200 && body == "ok", err
}

// WaitReady waits for /v1-k3ha/readyz to say ok.
func (s *Server) WaitReady() {
	s.T.Helper()
	harness.WaitFor(s.T, ReadyTimeout, s.Name+" ready", func() (bool, error) {
		if s.Proc.Exited() {
			s.T.Fatalf("%s exited while starting (%s):\n%s", s.Name, s.Proc.ExitStatus(), ExitReport(s.Proc.Log()))
		}
		return s.Ready()
	})
}

// Stop sends SIGTERM and requires a clean exit; it returns how long that took.
func (s *Server) Stop(timeout time.Duration) time.Duration {
	s.T.Helper()
	begin := time.Now()
	if err := s.Proc.Stop(timeout); err != nil {
		s.T.Fatalf("%s did not stop cleanly on SIGTERM: %v\n%s", s.Name, err, ExitReport(s.Proc.Log()))
	}
	return time.Since(begin)
}

var insecure = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

// Get fetches a path of the supervisor port without credentials, trusting any certificate.
func (s *Server) Get(path string) (string, int, error) {
	resp, err := insecure.Get(s.URL() + path)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, err
}

// VerifiedClient trusts only the CA the server hands out on /cacerts.
func (s *Server) VerifiedClient() *http.Client {
	s.T.Helper()
	ca, code, err := s.Get("/cacerts")
	if err != nil || code != 200 {
		s.T.Fatalf("/cacerts: %d %v", code, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(ca)) {
		s.T.Fatalf("/cacerts returned no certificate: %q", ca)
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// Kubectl runs the machine's own kubectl from the root namespace against this server.
func (s *Server) Kubectl(args ...string) (string, error) {
	out, err := s.KubectlCmd(args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// MustKubectl is Kubectl that fails the test on error.
func (s *Server) MustKubectl(args ...string) string {
	s.T.Helper()
	out, err := s.Kubectl(args...)
	if err != nil {
		s.T.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// K3haKubectl runs `k3ha kubectl` inside the server's own host.
func (s *Server) K3haKubectl(args ...string) (string, error) {
	out, err := s.Host.Run(s.T, s.Bin, append([]string{"kubectl", "--kubeconfig", s.Kubeconfig}, args...)...)
	return strings.TrimSpace(out), err
}

// PID of the running server process.
func (s *Server) PID() int { return s.Proc.PID }

// RSS is the resident memory of the server process in bytes.
func (s *Server) RSS() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.PID()))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err != nil {
				return 0, err
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("no VmRSS")
}

// RunK3ha runs a one-shot k3ha command on host and returns its output and exit code.
func RunK3ha(t testing.TB, bin string, host *harness.Host, args ...string) (string, int) {
	t.Helper()
	out, err := host.Run(t, bin, args...)
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

// ExitReport is what a test shows of a server's log when the server failed:
// its last lines, and before them its last errors, which a burst of retries
// at the end would otherwise hide.
func ExitReport(log string) string {
	const tailLines, errorLines = 30, 10
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	tailFrom := max(0, len(lines)-tailLines)
	var errs []string
	for _, l := range lines[:tailFrom] {
		if isErrorLine(l) {
			errs = append(errs, l)
		}
	}
	tail := strings.Join(lines[tailFrom:], "\n")
	if len(errs) == 0 {
		return tail
	}
	errs = errs[max(0, len(errs)-errorLines):]
	return "last errors before the tail:\n" + strings.Join(errs, "\n") + "\n...\n" + tail
}

// isErrorLine matches an error logged by k3ha (slog's text format), a Go
// panic or a fatal runtime error.
func isErrorLine(l string) bool {
	return strings.Contains(l, "level=ERROR") || strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") || strings.HasPrefix(l, "Error: ")
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Client is a client-go clientset for this server, through its own address.
func (s *Server) Client() *kubernetes.Clientset {
	s.T.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags(s.URL(), s.Kubeconfig)
	if err != nil {
		s.T.Fatalf("kubeconfig of %s: %v", s.Name, err)
	}
	cfg.Timeout = 10 * time.Second
	cfg.QPS, cfg.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		s.T.Fatal(err)
	}
	return cs
}

// Token is the server's token file (K10 form).
func (s *Server) Token() string {
	s.T.Helper()
	b, err := os.ReadFile(filepath.Join(s.DataDir(), "server", "token"))
	if err != nil {
		s.T.Fatalf("token of %s: %v", s.Name, err)
	}
	return strings.TrimSpace(string(b))
}

// Member is an etcd member as /db/info reports it.
type Member struct {
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	IsLearner  bool     `json:"isLearner"`
}

// Members reads /db/info with the server token.
func (s *Server) Members() ([]Member, error) {
	req, _ := http.NewRequest("GET", s.URL()+"/db/info", nil)
	secret := s.Token()
	if i := strings.LastIndex(secret, ":"); i >= 0 {
		secret = secret[i+1:]
	}
	req.SetBasicAuth("server", secret)
	resp, err := insecure.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("/db/info: %d %s", resp.StatusCode, b)
	}
	var info struct{ Members []Member }
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return nil, err
	}
	sort.Slice(info.Members, func(i, j int) bool { return info.Members[i].Name < info.Members[j].Name })
	return info.Members, nil
}

// IsEtcdLeader asks this server's etcd (metrics port, loopback of its host).
func (s *Server) IsEtcdLeader() (bool, error) {
	out, err := s.Host.Run(s.T, "curl", "-s", "--max-time", "3", "http://127.0.0.1:2381/metrics")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "etcd_server_is_leader ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "etcd_server_is_leader ")) == "1", nil
		}
	}
	return false, errors.New("etcd_server_is_leader not in metrics")
}

// WaitLog waits until the current process's log contains substr.
func (s *Server) WaitLog(t testing.TB, timeout time.Duration, substr string) {
	t.Helper()
	harness.WaitFor(t, timeout, fmt.Sprintf("%s logs %q", s.Name, substr), func() (bool, error) {
		return strings.Contains(s.Proc.Log(), substr), nil
	})
}

// NewAgent prepares `k3ha agent` on host, joining serverURL with tok.
func NewAgent(t testing.TB, bin string, host *harness.Host, serverURL, tok string, args ...string) *Server {
	t.Helper()
	s := newNode(t, bin, host)
	s.Args = append([]string{"agent",
		"--config", s.ConfigFile(),
		"--data-dir", s.DataDir(),
		"--node-name", host.Name,
		"--server", serverURL,
		"--token", tok,
	}, args...)
	return s
}

// KubectlCmd is the machine's kubectl against this server, not yet started.
func (s *Server) KubectlCmd(args ...string) *exec.Cmd {
	return exec.Command("kubectl", append([]string{"--kubeconfig", s.Kubeconfig, "--server", s.URL(), "--request-timeout", "20s"}, args...)...)
}
