package snapshot

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/k3ha/k3ha/internal/config"
)

// S3 is a bucket (and folder) snapshots are uploaded to.
type S3 struct {
	cfg    config.S3
	client *minio.Client
}

// NewS3 connects to the bucket of cfg; a missing bucket is an error (k3ha
// never creates buckets).
func NewS3(ctx context.Context, cfg config.S3) (*S3, error) {
	if cfg.Bucket == "" {
		return nil, fmt.Errorf("S3: no bucket given (--etcd-s3-bucket)")
	}
	if cfg.AccessKey == "" {
		cfg.AccessKey = os.Getenv("AWS_ACCESS_KEY_ID")
	}
	if cfg.SecretKey == "" {
		cfg.SecretKey = os.Getenv("AWS_SECRET_ACCESS_KEY")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableCompression = true
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: cfg.SkipSSLVerify} //nolint:gosec // the user's choice
	if cfg.EndpointCA != "" {
		pem, err := os.ReadFile(cfg.EndpointCA)
		if err != nil {
			return nil, fmt.Errorf("S3 endpoint CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("S3 endpoint CA %s holds no certificate", cfg.EndpointCA)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       !cfg.Insecure,
		Region:       cfg.Region,
		BucketLookup: minio.BucketLookupPath,
		Transport:    tr,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 %s: %w", cfg.Endpoint, err)
	}
	s := &S3{cfg: cfg, client: client}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	ok, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("S3 %s: %w", cfg.Endpoint, err)
	}
	if !ok {
		return nil, fmt.Errorf("S3 %s: bucket %s does not exist", cfg.Endpoint, cfg.Bucket)
	}
	return s, nil
}

func (s *S3) timeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.cfg.Timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.cfg.Timeout)
}

func (s *S3) key(name string) string { return path.Join(s.cfg.Folder, name) }

// Location names an object as s3://bucket/key.
func (s *S3) Location(name string) string { return "s3://" + s.cfg.Bucket + "/" + s.key(name) }

// Upload copies a local snapshot file into the bucket.
func (s *S3) Upload(ctx context.Context, file string) (*S3Object, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	name := filepath.Base(file)
	obj := &S3Object{Endpoint: s.cfg.Endpoint, Bucket: s.cfg.Bucket, Key: s.key(name)}
	_, err := s.client.FPutObject(ctx, s.cfg.Bucket, obj.Key, file, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		obj.Error = err.Error()
		return obj, fmt.Errorf("upload %s to %s: %w", name, s.Location(name), err)
	}
	return obj, nil
}

// List lists the snapshots in the bucket's folder, newest first.
func (s *S3) List(ctx context.Context) ([]Info, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	prefix := s.cfg.Folder
	if prefix != "" {
		prefix = strings.TrimSuffix(prefix, "/") + "/"
	}
	var out []Info
	for o := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("list %s: %w", s.Location(""), o.Err)
		}
		name := path.Base(o.Key)
		if strings.HasPrefix(name, ".") {
			continue
		}
		created := o.LastModified
		if t, ok := createdAt(name); ok {
			created = t
		}
		out = append(out, Info{Name: name, Size: o.Size, Created: created, Location: s.Location(name),
			S3: &S3Object{Endpoint: s.cfg.Endpoint, Bucket: s.cfg.Bucket, Key: o.Key}})
	}
	slices.SortFunc(out, func(a, b Info) int { return b.Created.Compare(a.Created) })
	return out, nil
}

// Delete removes an object.
func (s *S3) Delete(ctx context.Context, name string) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	return s.client.RemoveObject(ctx, s.cfg.Bucket, s.key(name), minio.RemoveObjectOptions{})
}

// Download fetches an object into dir and returns the local path.
func (s *S3) Download(ctx context.Context, name, dir string) (string, error) {
	if err := ValidName(name); err != nil {
		return "", err
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	dst := filepath.Join(dir, name)
	if err := s.client.FGetObject(ctx, s.cfg.Bucket, s.key(name), dst, minio.GetObjectOptions{}); err != nil {
		return "", fmt.Errorf("download %s: %w", s.Location(name), err)
	}
	return dst, nil
}

// Prune keeps the keep newest objects whose name starts with prefix.
func (s *S3) Prune(ctx context.Context, prefix string, keep int) ([]string, error) {
	if keep < 1 {
		return nil, nil
	}
	all, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	var deleted []string
	n := 0
	for _, o := range all {
		if !strings.HasPrefix(o.Name, prefix+"-") {
			continue
		}
		if n++; n <= keep {
			continue
		}
		if err := s.Delete(ctx, o.Name); err != nil {
			return deleted, err
		}
		deleted = append(deleted, o.Name)
	}
	return deleted, nil
}
