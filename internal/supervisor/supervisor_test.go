package supervisor

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testSupervisor() *Supervisor {
	s := &Supervisor{
		CACerts: []byte("PEM"),
		Secrets: func() (string, string) { return "server-secret", "agent-secret" },
		Bootstrap: func() (BootstrapFiles, error) {
			return BootstrapFiles{Files: map[string][]byte{"tls/server-ca.key": []byte("KEY")}}, nil
		},
		Members: func(context.Context) ([]Member, error) {
			return []Member{{Name: "s1", PeerURLs: []string{"https://10.0.0.1:2380"}}}, nil
		},
		APIServers: func(context.Context) ([]string, error) { return []string{"10.0.0.1:6443"}, nil },
	}
	s.Critical.ClusterCIDR = "10.42.0.0/16"
	return s
}

func TestAccess(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := testSupervisor().Wrap(api)
	cases := []struct {
		path, user, pass, remote string
		want                     int
	}{
		{PathCACerts, "", "", "10.0.0.9:1", 200},
		{PathPing, "", "", "10.0.0.9:1", 200},
		{PathReadyz, "", "", "10.0.0.9:1", 503},
		{PathConfig, "", "", "10.0.0.9:1", 401},
		{PathConfig, "node", "wrong", "10.0.0.9:1", 401},
		{PathConfig, "node", "agent-secret", "10.0.0.9:1", 200},
		{PathConfig, "server", "server-secret", "10.0.0.9:1", 200},
		{PathConfig, "server", "agent-secret", "10.0.0.9:1", 401},
		{PathServerBootstrap, "node", "agent-secret", "10.0.0.9:1", 403},
		{PathServerBootstrap, "node", "server-secret", "10.0.0.9:1", 403},
		{PathServerBootstrap, "server", "nope", "10.0.0.9:1", 401},
		{PathServerBootstrap, "server", "server-secret", "10.0.0.9:1", 200},
		{PathAPIServers, "node", "agent-secret", "10.0.0.9:1", 200},
		{PathDBInfo, "", "", "10.0.0.9:1", 401},
		{PathDBInfo, "node", "agent-secret", "10.0.0.9:1", 403},
		{PathDBInfo, "server", "server-secret", "10.0.0.9:1", 200},
		{PathDBInfo, "", "", "127.0.0.1:5555", 200},
		{"/api/v1/pods", "", "", "10.0.0.9:1", http.StatusTeapot},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", c.path, nil)
		r.RemoteAddr = c.remote
		if c.user != "" {
			r.SetBasicAuth(c.user, c.pass)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.want {
			t.Errorf("%s as %q from %s: %d, want %d", c.path, c.user, c.remote, w.Code, c.want)
		}
	}
}

func TestBodies(t *testing.T) {
	s := testSupervisor()
	s.SetReady(true)
	h := s.Wrap(http.NotFoundHandler())
	get := func(path string, v any) string {
		r := httptest.NewRequest("GET", path, nil)
		r.SetBasicAuth("server", "server-secret")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
		if v != nil {
			if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		return w.Body.String()
	}
	if got := get(PathReadyz, nil); got != "ok" {
		t.Fatalf("readyz %q", got)
	}
	if got := get(PathPing, nil); got != "pong" {
		t.Fatalf("ping %q", got)
	}
	var info DBInfo
	get(PathDBInfo, &info)
	if len(info.Members) != 1 || info.Members[0].Name != "s1" {
		t.Fatalf("dbinfo %+v", info)
	}
	var files BootstrapFiles
	get(PathServerBootstrap, &files)
	if string(files.Files["tls/server-ca.key"]) != "KEY" {
		t.Fatalf("bootstrap %+v", files)
	}
	var apis []string
	get(PathAPIServers, &apis)
	if len(apis) != 1 {
		t.Fatalf("apiservers %v", apis)
	}
}

func TestStaticFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "charts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "charts", "a-1.0.0.tgz"), []byte("archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(dir), "outside"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := testSupervisor()
	s.StaticDir = dir
	h := s.Wrap(http.NotFoundHandler())
	cases := []struct {
		path, user, pass string
		want             int
		body             string
	}{
		{"/static/charts/a-1.0.0.tgz", "node", "agent-secret", 200, "archive"},
		{"/static/charts/a-1.0.0.tgz", "server", "server-secret", 200, "archive"},
		{"/static/charts/a-1.0.0.tgz", "", "", 401, ""},
		{"/static/charts/a-1.0.0.tgz", "node", "wrong", 401, ""},
		{"/static/charts/", "node", "agent-secret", 404, ""},
		{"/static/charts/missing.tgz", "node", "agent-secret", 404, ""},
		// Escapes: anything but the file outside (0: any refusal).
		{"/static/../outside", "node", "agent-secret", 0, ""},
		{"/static/charts/..%2f..%2foutside", "node", "agent-secret", 0, ""},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", c.path, nil)
		if c.user != "" {
			r.SetBasicAuth(c.user, c.pass)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if c.want == 0 {
			if w.Code == 200 || strings.Contains(w.Body.String(), "secret") {
				t.Errorf("GET %s: %d %q, want a refusal", c.path, w.Code, w.Body.String())
			}
			continue
		}
		if w.Code != c.want || (c.body != "" && w.Body.String() != c.body) {
			t.Errorf("GET %s as %q: %d %q, want %d %q", c.path, c.user, w.Code, w.Body.String(), c.want, c.body)
		}
	}
}
