package supervisor

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
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
