package cluster

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/k3ha/k3ha/test/e2e/harness"
)

// BuildS3Server builds the test S3 server (versitygw, pinned in
// test/e2e/s3server) at path.
func BuildS3Server(path string) error {
	return staticBuild("s3server", "github.com/versity/versitygw/cmd/versitygw", path)
}

// S3Server serves a directory over S3 (plain HTTP) on a test host, with
// one bucket.
type S3Server struct {
	Host      *harness.Host
	Bucket    string
	AccessKey string
	SecretKey string
	Proc      *harness.Process
	bin, dir  string
	t         testing.TB
}

// StartS3Server runs bin on host with a bucket named bucket.
func StartS3Server(t testing.TB, bin string, host *harness.Host, bucket string) *S3Server {
	t.Helper()
	s := &S3Server{Host: host, Bucket: bucket, AccessKey: "k3ha-e2e", SecretKey: "k3ha-e2e-secret-key", bin: bin, dir: t.TempDir(), t: t}
	if err := os.MkdirAll(filepath.Join(s.dir, "root", bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	s.Start()
	return s
}

// Addr is the server's host:port.
func (s *S3Server) Addr() string { return net.JoinHostPort(s.Host.IP.String(), "9000") }

// Start (again) runs the server on its directory.
func (s *S3Server) Start() {
	s.t.Helper()
	s.Proc = s.Host.Start(s.t, filepath.Join(s.dir, "s3.log"), nil, s.bin,
		"--access", s.AccessKey, "--secret", s.SecretKey, "--port", ":9000",
		"posix", "--nometa", filepath.Join(s.dir, "root"))
	harness.WaitFor(s.t, time.Minute, "S3 server answers", func() (bool, error) {
		resp, err := http.Get("http://" + s.Addr() + "/")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return true, nil
	})
}

// Objects lists the names in the bucket (its directory).
func (s *S3Server) Objects() []string {
	entries, _ := os.ReadDir(filepath.Join(s.dir, "root", s.Bucket))
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// Flags are `k3ha etcd-snapshot`'s S3 flags (prefix "s3") or the server's
// (prefix "etcd-s3") for this server.
func (s *S3Server) Flags(prefix string) []string {
	return []string{"--" + prefix, "--" + prefix + "-endpoint", s.Addr(), "--" + prefix + "-insecure",
		"--" + prefix + "-bucket", s.Bucket, "--" + prefix + "-access-key", s.AccessKey, "--" + prefix + "-secret-key", s.SecretKey,
		"--" + prefix + "-timeout", "20s"}
}
