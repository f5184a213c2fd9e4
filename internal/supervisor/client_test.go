package supervisor

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/k3ha/k3ha/internal/pki"
	"github.com/k3ha/k3ha/internal/testutil/logtest"
	"github.com/k3ha/k3ha/internal/token"
)

const (
	clientTestServerPW = "server-pw-0123"
	clientTestAgentPW  = "agent-pw-4567"
)

// clientTestPKI makes a CA and a serving certificate for 127.0.0.1 signed
// by it, like a server's server-ca and apiserver certificate.
func clientTestPKI(t *testing.T) (caPEM []byte, serving tls.Certificate) {
	t.Helper()
	ca, _, err := pki.LoadOrCreateCA(t.TempDir(), "server-ca", "test-server-ca")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue(pki.LeafSpec{
		CommonName: "test-apiserver",
		DNSNames:   []string{"localhost"},
		IPs:        []net.IP{net.IPv4(127, 0, 0, 1)},
		Usage:      pki.ServerAuth,
	})
	if err != nil {
		t.Fatal(err)
	}
	serving, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return ca.CertPEM, serving
}

// authRecorder remembers the Authorization header of every request, "" for
// none, to prove what was sent when.
type authRecorder struct {
	mu    sync.Mutex
	paths []string
	auths []string
}

func (a *authRecorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.paths = append(a.paths, r.URL.Path)
		a.auths = append(a.auths, r.Header.Get("Authorization"))
		a.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (a *authRecorder) seen() (paths, auths []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.paths...), append([]string(nil), a.auths...)
}

// clientTestSupervisor is the real supervisor handler with fixed answers.
func clientTestSupervisor(caPEM []byte) *Supervisor {
	s := &Supervisor{
		CACerts: caPEM,
		Secrets: func() (string, string) { return clientTestServerPW, clientTestAgentPW },
		Bootstrap: func() (BootstrapFiles, error) {
			return BootstrapFiles{Files: map[string][]byte{"tls/server-ca.key": []byte("KEY\x00\xff")}}, nil
		},
		Members: func(context.Context) ([]Member, error) {
			return []Member{{Name: "s1", PeerURLs: []string{"https://10.0.0.1:2380"}, ClientURLs: []string{"https://10.0.0.1:2379"}, IsLearner: true}}, nil
		},
		APIServers: func(context.Context) ([]string, error) { return []string{"10.0.0.1:6443", "10.0.0.2:6443"}, nil },
	}
	s.Critical.ClusterCIDR = "10.42.0.0/16"
	s.Critical.Disable = []string{"traefik"}
	s.Critical.SecretsEncryption = true
	return s
}

func startTLS(t *testing.T, serving tls.Certificate, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serving}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func noSecrets(t *testing.T, what string) {
	t.Helper()
	for _, pw := range []string{clientTestServerPW, clientTestAgentPW} {
		if strings.Contains(what, pw) {
			t.Fatalf("secret leaked: %s", what)
		}
	}
}

func timeoutCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestClientSecureTokenEndToEnd(t *testing.T) {
	logs := logtest.Capture(t, slog.LevelDebug, logtest.Never)
	caPEM, serving := clientTestPKI(t)
	rec := &authRecorder{}
	srv := startTLS(t, serving, rec.wrap(clientTestSupervisor(caPEM).Wrap(http.NotFoundHandler())))
	ctx := timeoutCtx(t, 5*time.Second)

	c, err := Dial(ctx, srv.URL+"/", token.New(caPEM, token.RoleServer, clientTestServerPW), token.RoleNode)
	if err != nil {
		t.Fatal(err)
	}
	if c.URL() != srv.URL {
		t.Errorf("URL() = %q, want %q", c.URL(), srv.URL)
	}
	if !bytes.Equal(c.CACerts(), caPEM) {
		t.Error("CACerts() differs from the served bundle")
	}

	crit, err := c.Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if crit.ClusterCIDR != "10.42.0.0/16" || !crit.SecretsEncryption || len(crit.Disable) != 1 || crit.Disable[0] != "traefik" {
		t.Errorf("Config() = %+v", crit)
	}
	files, err := c.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := files.Files["tls/server-ca.key"]; string(got) != "KEY\x00\xff" {
		t.Errorf("Bootstrap() file = %q", got)
	}
	info, err := c.DBInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Members) != 1 || info.Members[0].Name != "s1" || !info.Members[0].IsLearner ||
		info.Members[0].ClientURLs[0] != "https://10.0.0.1:2379" {
		t.Errorf("DBInfo() = %+v", info)
	}
	apis, err := c.APIServers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(apis) != 2 || apis[1] != "10.0.0.2:6443" {
		t.Errorf("APIServers() = %v", apis)
	}

	paths, auths := rec.seen()
	if len(paths) != 5 || paths[0] != PathCACerts || auths[0] != "" {
		t.Fatalf("requests %v with auth %q: want /cacerts first, without credentials", paths, auths)
	}
	for i, a := range auths[1:] {
		// The user comes from the token, not from the role argument.
		if a == "" || !strings.HasPrefix(a, "Basic ") {
			t.Errorf("%s sent without credentials", paths[i+1])
		}
		r := &http.Request{Header: http.Header{"Authorization": {a}}}
		if u, p, _ := r.BasicAuth(); u != token.RoleServer || p != clientTestServerPW {
			t.Errorf("%s sent as user %q", paths[i+1], u)
		}
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("warning with a secure token: %s", logs)
	}
	noSecrets(t, logs.String())
}

func TestClientDialHashMismatch(t *testing.T) {
	logs := logtest.Capture(t, slog.LevelDebug, logtest.Never)
	caPEM, serving := clientTestPKI(t)
	otherPEM, _ := clientTestPKI(t)
	rec := &authRecorder{}
	srv := startTLS(t, serving, rec.wrap(clientTestSupervisor(caPEM).Wrap(http.NotFoundHandler())))

	_, err := Dial(timeoutCtx(t, 5*time.Second), srv.URL, token.New(otherPEM, token.RoleServer, clientTestServerPW), token.RoleServer)
	if err == nil {
		t.Fatal("Dial accepted a CA that does not match the token")
	}
	for _, want := range []string{token.HashCA(otherPEM), token.HashCA(caPEM), srv.URL, PathCACerts} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	noSecrets(t, err.Error()+logs.String())
	paths, auths := rec.seen()
	for i := range paths {
		if paths[i] != PathCACerts || auths[i] != "" {
			t.Errorf("request %s with auth %q after a hash mismatch", paths[i], auths[i])
		}
	}
}

func TestClientBareSecret(t *testing.T) {
	logs := logtest.Capture(t, slog.LevelDebug, logtest.Never)
	caPEM, serving := clientTestPKI(t)
	srv := startTLS(t, serving, clientTestSupervisor(caPEM).Wrap(http.NotFoundHandler()))
	ctx := timeoutCtx(t, 5*time.Second)

	tok, err := token.Parse(clientTestServerPW)
	if err != nil || tok.Secure() {
		t.Fatalf("bare token parsed as %v, %v", tok.Secure(), err)
	}
	c, err := Dial(ctx, srv.URL, tok, token.RoleServer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Bootstrap(ctx); err != nil {
		t.Fatalf("bare secret as server: %v", err)
	}
	out := logs.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "cannot be verified") || !strings.Contains(out, token.HashCA(caPEM)) {
		t.Errorf("no warning about the unverified CA: %s", out)
	}
	noSecrets(t, out)

	// The same bare agent secret as a node may not read server data.
	agent, _ := token.Parse(clientTestAgentPW)
	c, err = Dial(ctx, srv.URL, agent, token.RoleNode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Config(ctx); err != nil {
		t.Fatalf("bare agent secret as node: %v", err)
	}
	if _, err := c.Bootstrap(ctx); !errors.Is(err, ErrForbidden) {
		t.Fatalf("bare agent secret reading bootstrap: %v, want ErrForbidden", err)
	}
}

func TestClientRejectedAndForbidden(t *testing.T) {
	logs := logtest.Capture(t, slog.LevelDebug, logtest.Never)
	caPEM, serving := clientTestPKI(t)
	srv := startTLS(t, serving, clientTestSupervisor(caPEM).Wrap(http.NotFoundHandler()))
	ctx := timeoutCtx(t, 5*time.Second)

	wrong, err := Dial(ctx, srv.URL, token.New(caPEM, token.RoleServer, "not-the-secret"), token.RoleServer)
	if err != nil {
		t.Fatal(err) // /cacerts needs no secret
	}
	_, err = wrong.Config(ctx)
	if !errors.Is(err, ErrRejected) || errors.Is(err, ErrForbidden) {
		t.Fatalf("wrong secret: %v, want ErrRejected", err)
	}
	if want := "token rejected by " + srv.URL; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), PathConfig) {
		t.Errorf("error %q lacks %q and the path", err, want)
	}
	if strings.Contains(err.Error(), "not-the-secret") {
		t.Errorf("error contains the password: %v", err)
	}

	agent, err := Dial(ctx, srv.URL, token.New(caPEM, token.RoleNode, clientTestAgentPW), token.RoleServer)
	if err != nil {
		t.Fatal(err)
	}
	_, err = agent.Bootstrap(ctx)
	if !errors.Is(err, ErrForbidden) || errors.Is(err, ErrRejected) {
		t.Fatalf("agent token: %v, want ErrForbidden", err)
	}
	if want := "GET " + PathServerBootstrap + " on " + srv.URL + " refused"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q lacks %q", err, want)
	}
	noSecrets(t, err.Error())
	if strings.Contains(logs.String(), "waiting for server") {
		t.Errorf("401/403 retried: %s", logs)
	}
}

func TestClientRetriesUntilServerUp(t *testing.T) {
	logs := logtest.Capture(t, slog.LevelDebug, logtest.Never)
	caPEM, serving := clientTestPKI(t)

	// Find a free port, then bring the server up on it a little later.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := httptest.NewUnstartedServer(clientTestSupervisor(caPEM).Wrap(http.NotFoundHandler()))
	srv.Listener.Close()
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serving}}
	up := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		late, err := net.Listen("tcp", addr)
		if err != nil {
			up <- err
			return
		}
		srv.Listener = late
		srv.StartTLS()
		up <- nil
	}()

	start := time.Now()
	c, err := Dial(timeoutCtx(t, 5*time.Second), "https://"+addr, token.New(caPEM, token.RoleServer, clientTestServerPW), token.RoleServer)
	if upErr := <-up; upErr != nil {
		t.Fatalf("late listener: %v", upErr)
	}
	t.Cleanup(srv.Close)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < 900*time.Millisecond || elapsed > 4*time.Second {
		t.Errorf("Dial took %v, want about one 1 s backoff", elapsed)
	}
	if _, err := c.Config(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "waiting for server") || !strings.Contains(out, "attempt=1") ||
		!strings.Contains(out, "https://"+addr+PathCACerts) || !strings.Contains(out, "connection refused") {
		t.Errorf("no retry log line: %s", out)
	}
	if strings.Count(out, "waiting for server") != 1 {
		t.Errorf("want exactly one retry: %s", out)
	}
}

func TestClientGivesUpWhenContextEnds(t *testing.T) {
	logtest.Capture(t, slog.LevelDebug, logtest.Never)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	start := time.Now()
	_, err = Dial(timeoutCtx(t, 300*time.Millisecond), "https://"+addr, token.Token{Password: clientTestServerPW}, token.RoleServer)
	if err == nil {
		t.Fatal("Dial to nothing succeeded")
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("Dial did not stop with its context: %v", time.Since(start))
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "https://"+addr+PathCACerts) ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q should name the URL, the deadline and the last cause", err)
	}
}

func TestClientRetries5xxNot4xx(t *testing.T) {
	logs := logtest.Capture(t, slog.LevelDebug, logtest.Never)
	caPEM, serving := clientTestPKI(t)
	var mu sync.Mutex
	calls := map[string]int{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[r.URL.Path]++
		n := calls[r.URL.Path]
		mu.Unlock()
		switch r.URL.Path {
		case PathCACerts:
			_, _ = w.Write(caPEM)
		case PathAPIServers:
			if n == 1 {
				http.Error(w, "starting", http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte(`["10.0.0.1:6443"]`))
		case PathConfig:
			_, _ = w.Write([]byte("not json"))
		default:
			http.NotFound(w, r)
		}
	})
	srv := startTLS(t, serving, h)
	ctx := timeoutCtx(t, 5*time.Second)
	c, err := Dial(ctx, srv.URL, token.New(caPEM, token.RoleServer, clientTestServerPW), token.RoleServer)
	if err != nil {
		t.Fatal(err)
	}

	apis, err := c.APIServers(ctx)
	if err != nil || len(apis) != 1 {
		t.Fatalf("APIServers after a 503: %v, %v", apis, err)
	}
	if !strings.Contains(logs.String(), "503") {
		t.Errorf("503 not logged: %s", logs)
	}

	_, err = c.DBInfo(ctx)
	if err == nil || !strings.Contains(err.Error(), srv.URL+PathDBInfo) || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: %v", err)
	}
	_, err = c.Config(ctx)
	if err == nil || !strings.Contains(err.Error(), srv.URL+PathConfig) || !strings.Contains(err.Error(), "decode") {
		t.Errorf("bad JSON: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls[PathDBInfo] != 1 || calls[PathConfig] != 1 || calls[PathAPIServers] != 2 {
		t.Errorf("calls %v: want 4xx and bad answers tried once, the 503 retried once", calls)
	}
}

func TestClientDialCertNotFromServedCA(t *testing.T) {
	logtest.Capture(t, slog.LevelDebug, logtest.Never)
	_, serving := clientTestPKI(t)
	otherPEM, _ := clientTestPKI(t)
	rec := &authRecorder{}
	// Serves a CA that did not sign its own certificate.
	srv := startTLS(t, serving, rec.wrap(clientTestSupervisor(otherPEM).Wrap(http.NotFoundHandler())))
	_, err := Dial(timeoutCtx(t, 5*time.Second), srv.URL, token.Token{Password: clientTestServerPW}, token.RoleServer)
	if err == nil || !strings.Contains(err.Error(), "not valid under the CA") || !strings.Contains(err.Error(), srv.URL) {
		t.Fatalf("Dial: %v, want a certificate error naming the server", err)
	}
	if _, auths := rec.seen(); len(auths) != 1 || auths[0] != "" {
		t.Errorf("auth sent: %q", auths)
	}
}

func TestClientDialRejectsBadInput(t *testing.T) {
	ctx := timeoutCtx(t, time.Second)
	secure := token.New([]byte("ca"), token.RoleServer, clientTestServerPW)
	for _, c := range []struct {
		url  string
		tok  token.Token
		role string
	}{
		{"http://127.0.0.1:6443", secure, token.RoleServer},
		{"127.0.0.1:6443", secure, token.RoleServer},
		{"https://admin:hunter2@127.0.0.1:6443", secure, token.RoleServer},
		{"https://127.0.0.1:6443", token.Token{Password: clientTestServerPW}, "admin"},
		{"https://127.0.0.1:6443", token.Token{Password: clientTestServerPW}, ""},
		{"https://127.0.0.1:6443", token.Token{Username: token.RoleServer}, token.RoleServer},
	} {
		_, err := Dial(ctx, c.url, c.tok, c.role)
		if err == nil {
			t.Errorf("Dial(%q, role %q) accepted", c.url, c.role)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error echoes URL credentials: %v", err)
		}
		noSecrets(t, err.Error())
	}
}

func TestClientRetryable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{&net.OpError{Op: "dial", Err: errors.New("no route")}, true},
		{&net.OpError{Op: "read", Err: syscall.ECONNRESET}, true},
		{syscall.EHOSTUNREACH, true},
		{io.ErrUnexpectedEOF, true},
		{context.DeadlineExceeded, true},
		{&net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}, true},
		{&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, false},
		{x509.HostnameError{}, false},
		{tls.RecordHeaderError{}, false},
		{errors.New("http: server gave HTTP response to HTTPS client"), false},
	} {
		if got := retryable(c.err); got != c.want {
			t.Errorf("retryable(%T) = %v, want %v", c.err, got, c.want)
		}
	}
}
