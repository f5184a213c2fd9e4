package cluster

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/k3ha/k3ha/internal/pki"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

// BuildRegistry builds the test registry (test/e2e/registry, a module of
// its own around github.com/distribution/distribution) at path.
func BuildRegistry(path string) error { return staticBuild("registry", ".", path) }

// Registry is a distribution registry on a test host, with TLS from a CA
// of its own and one htpasswd user.
type Registry struct {
	Host     *harness.Host
	CAFile   string
	User     string
	Password string
	Proc     *harness.Process
	client   *http.Client
}

// StartRegistry runs the registry program bin on host.
func StartRegistry(t testing.TB, bin string, host *harness.Host) *Registry {
	t.Helper()
	dir := t.TempDir()
	ca, _, err := pki.LoadOrCreateCA(dir, "ca", "k3ha e2e registry CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "registry.crt"), filepath.Join(dir, "registry.key")
	if _, err := ca.EnsureLeaf(cert, key, pki.LeafSpec{CommonName: "registry", IPs: []net.IP{host.IP}, Usage: pki.ServerAuth}); err != nil {
		t.Fatal(err)
	}
	r := &Registry{Host: host, CAFile: filepath.Join(dir, "ca.crt"), User: "e2e", Password: "pull-secret-1"}
	hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	cfg := filepath.Join(dir, "config.yml")
	for path, content := range map[string]string{
		htpasswd: r.User + ":" + string(hash) + "\n",
		cfg: fmt.Sprintf(`version: 0.1
log: {level: info}
storage: {filesystem: {rootdirectory: %s}}
http: {addr: ":5000", secret: e2e-upload-state, tls: {certificate: %s, key: %s}}
auth: {htpasswd: {realm: k3ha-e2e, path: %s}}
`, filepath.Join(dir, "store"), cert, key, htpasswd),
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	r.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	r.Proc = host.Start(t, filepath.Join(dir, "registry.log"), nil, bin, cfg)
	harness.WaitFor(t, time.Minute, "registry answers", func() (bool, error) {
		resp, err := r.client.Get("https://" + r.Addr() + "/v2/")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusUnauthorized, fmt.Errorf("status %d", resp.StatusCode)
	})
	return r
}

// Addr is the registry's host:port.
func (r *Registry) Addr() string { return net.JoinHostPort(r.Host.IP.String(), "5000") }

// MirrorConfig writes a registries.yaml (K3s's format, for a node's
// --private-registry) that makes this registry the mirror of mirrorOf, with
// its CA and the given password for its user, and returns its path.
func (r *Registry) MirrorConfig(t testing.TB, mirrorOf, password string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registries.yaml")
	content := fmt.Sprintf(`mirrors:
  %s:
    endpoint: ["https://%s"]
configs:
  "%s":
    auth: {username: %s, password: %q}
    tls: {ca_file: %s}
`, mirrorOf, r.Addr(), r.Addr(), r.User, password, r.CAFile)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Push uploads an image archive (docker-archive, one layer) as repo:tag,
// through the registry's HTTP API.
func (r *Registry) Push(repo, tag string, archive []byte) error {
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		files[h.Name] = data
	}
	var manifest []struct {
		Config string
		Layers []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 || len(manifest[0].Layers) != 1 {
		return fmt.Errorf("archive manifest: %v %s", err, files["manifest.json"])
	}
	config, layer := files[manifest[0].Config], files[manifest[0].Layers[0]]
	configDigest, err := r.pushBlob(repo, config)
	if err != nil {
		return err
	}
	layerDigest, err := r.pushBlob(repo, layer)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": configDigest, "size": len(config)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layerDigest, "size": len(layer)}},
	})
	_, err = r.do("PUT", "https://"+r.Addr()+"/v2/"+repo+"/manifests/"+tag, "application/vnd.oci.image.manifest.v1+json", body, http.StatusCreated)
	return err
}

func (r *Registry) pushBlob(repo string, blob []byte) (string, error) {
	sum := sha256.Sum256(blob)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	resp, err := r.do("POST", "https://"+r.Addr()+"/v2/"+repo+"/blobs/uploads/", "", nil, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "http") {
		loc = "https://" + r.Addr() + loc
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	_, err = r.do("PUT", loc+sep+"digest="+digest, "application/octet-stream", blob, http.StatusCreated)
	return digest, err
}

func (r *Registry) do(method, url, contentType string, body []byte, want int) (*http.Response, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(r.User, r.Password)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, msg)
	}
	return resp, nil
}
