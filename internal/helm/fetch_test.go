package helm

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// A chart picked from a repository's index, and an archive on this
// server's own address, fetched with the server's token and CA.
func TestFetcher(t *testing.T) {
	archive := []byte("chart archive")
	var auth []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		auth = append(auth, r.URL.Path+" "+user+":"+pass)
		switch r.URL.Path {
		case "/repo/index.yaml":
			_, _ = w.Write([]byte(`apiVersion: v1
entries:
  demo:
  - name: demo
    version: 1.2.0
    urls: [charts/demo-1.2.0.tgz]
  - name: demo
    version: 1.1.0
    urls: [charts/demo-1.1.0.tgz]
`))
		case "/repo/charts/demo-1.2.0.tgz", "/static/charts/mine.tgz":
			_, _ = w.Write(archive)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	f := &Fetcher{Self: u.Host, CAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs,
		Auth: func() (string, string) { return "server", "secret" }, TempDir: t.TempDir()}
	ctx := context.Background()

	src, err := ResolveSource(ChartSpec{Chart: "demo", Repo: srv.URL + "/repo"}, u.Host)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.Archive(ctx, src); err != nil || string(got) != string(archive) {
		t.Fatalf("newest demo from the repository: %q %v", got, err)
	}
	src, _ = ResolveSource(ChartSpec{Chart: "demo", Repo: srv.URL + "/repo", Version: "9.9.9"}, u.Host)
	if _, err := f.Archive(ctx, src); err == nil || !strings.Contains(err.Error(), `no chart "demo" version "9.9.9"`) {
		t.Fatalf("a missing version: %v", err)
	}
	src, _ = ResolveSource(ChartSpec{Chart: "https://%{KUBERNETES_API}%/static/charts/mine.tgz"}, u.Host)
	if got, err := f.Archive(ctx, src); err != nil || string(got) != string(archive) {
		t.Fatalf("static chart: %q %v", got, err)
	}
	src, _ = ResolveSource(ChartSpec{Chart: "https://%{KUBERNETES_API}%/static/charts/missing.tgz"}, u.Host)
	if _, err := f.Archive(ctx, src); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("a missing archive: %v", err)
	}
	for _, a := range auth {
		if !strings.HasSuffix(a, " server:secret") {
			t.Errorf("request to this server without its token: %s", a)
		}
	}

	// Another host never gets the token.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("the server's token was sent to another host")
		}
		_, _ = w.Write(archive)
	}))
	defer other.Close()
	if got, err := f.Archive(ctx, Source{URL: other.URL + "/c.tgz"}); err != nil || string(got) != string(archive) {
		t.Fatalf("archive from another host: %q %v", got, err)
	}
}
