package helm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/repo"
)

// maxArchive bounds what a chart or index download may be.
const maxArchive = 64 << 20

// Fetcher downloads chart archives and repository indexes.
type Fetcher struct {
	// Self is this server's API address (host:port); requests to it trust
	// CAs and carry the credentials Auth returns, so charts under
	// /static/charts/ need no network beyond the cluster.
	Self string
	CAs  *x509.CertPool
	Auth func() (user, password string)
	// TempDir holds repository indexes while they are read.
	TempDir string

	self, other *http.Client
}

// Archive returns the chart archive src names.
func (f *Fetcher) Archive(ctx context.Context, src Source) ([]byte, error) {
	if src.Inline != nil {
		return src.Inline, nil
	}
	if !src.FromRepo() {
		return f.get(ctx, src.URL)
	}
	chartURL, err := f.findInRepo(ctx, src)
	if err != nil {
		return nil, err
	}
	return f.get(ctx, chartURL)
}

// findInRepo reads the repository's index for the chart's archive URL.
func (f *Fetcher) findInRepo(ctx context.Context, src Source) (string, error) {
	base := src.URL
	if base[len(base)-1] != '/' {
		base += "/"
	}
	data, err := f.get(ctx, base+"index.yaml")
	if err != nil {
		return "", fmt.Errorf("repository %s: %w", src.URL, err)
	}
	tmp, err := os.CreateTemp(f.TempDir, "index-*.yaml")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	idx, err := repo.LoadIndexFile(tmp.Name())
	if err != nil {
		return "", fmt.Errorf("repository %s: index: %w", src.URL, err)
	}
	cv, err := idx.Get(src.Name, src.Version)
	if err != nil {
		return "", fmt.Errorf("repository %s has no chart %q version %q", src.URL, src.Name, src.Version)
	}
	if len(cv.URLs) == 0 {
		return "", fmt.Errorf("repository %s: chart %q %s has no URL", src.URL, src.Name, cv.Version)
	}
	return repo.ResolveReferenceURL(base, cv.URLs[0])
}

func (f *Fetcher) get(ctx context.Context, rawURL string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("chart URL %q: %w", rawURL, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	client := f.client(false)
	if u.Host == f.Self {
		client = f.client(true)
		if f.Auth != nil {
			req.SetBasicAuth(f.Auth())
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound && u.Host == f.Self {
		return nil, fmt.Errorf("get %s: %s: put the archive into <data-dir>/server/static/%s on the server holding the lease kube-system/k3ha, or on every server",
			rawURL, resp.Status, strings.TrimPrefix(u.Path, "/static/"))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get %s: %s", rawURL, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxArchive+1))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", rawURL, err)
	}
	if len(data) > maxArchive {
		return nil, fmt.Errorf("get %s: larger than %d MiB", rawURL, maxArchive>>20)
	}
	return data, nil
}

func (f *Fetcher) client(self bool) *http.Client {
	if self {
		if f.self == nil {
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.TLSClientConfig = &tls.Config{RootCAs: f.CAs, MinVersion: tls.VersionTLS12}
			f.self = &http.Client{Transport: t, Timeout: time.Minute}
		}
		return f.self
	}
	if f.other == nil {
		f.other = &http.Client{Timeout: time.Minute}
	}
	return f.other
}
