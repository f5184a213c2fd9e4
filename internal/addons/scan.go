package addons

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
)

// Extensions of the files that hold manifests.
var extensions = []string{".yaml", ".yml", ".json"}

// SkipSuffix marks a file not to write or apply: X.yaml.skip beside X.yaml.
const SkipSuffix = ".skip"

// Scanner keeps the Addons in step with one server's manifests directory.
// It runs on every server, so a file dropped on any of them reaches the
// cluster; it only writes Addons, the lease holder applies them.
type Scanner struct {
	Dir    string
	Server string // this server's node name
	Client dynamic.Interface
	// pushed is the checksum of each file as this server last pushed it (or
	// found it already in the cluster): a file is pushed again only when it
	// changes here, so servers whose copies differ do not overwrite each
	// other over and over.
	pushed map[string]string
}

// ScanEvery is how often the directory is read: a new or changed file
// reaches the cluster within this and one apply.
const ScanEvery = 2 * time.Second

// Run scans until ctx ends.
func (s *Scanner) Run(ctx context.Context) {
	s.pushed = map[string]string{}
	t := time.NewTicker(ScanEvery)
	defer t.Stop()
	for {
		s.scan(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Scanner) scan(ctx context.Context) {
	files, err := Files(s.Dir)
	if err != nil {
		slog.Warn("cannot read the manifests directory", "dir", s.Dir, "err", err)
		return
	}
	for name, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			slog.Warn("cannot read a manifest", "file", path, "err", err)
			continue
		}
		sum := checksum(data)
		if s.pushed[name] == sum {
			continue
		}
		if err := s.push(ctx, name, Spec{Source: path, Server: s.Server, Checksum: sum, Content: string(data)}); err != nil {
			if ctx.Err() == nil {
				slog.Warn("cannot record a manifest in the cluster; retrying", "file", path, "err", err)
			}
			continue
		}
		s.pushed[name] = sum
	}
}

// push writes the Addon's spec unless the cluster has that content already.
func (s *Scanner) push(ctx context.Context, name string, spec Spec) error {
	addons := s.Client.Resource(Resource)
	cur, err := addons.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		obj, err := object(name, spec)
		if err != nil {
			return err
		}
		if _, err := addons.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return err
		}
		slog.Info("manifest recorded", "addon", name, "file", spec.Source)
		return nil
	}
	if err != nil {
		return err
	}
	a, err := fromUnstructured(cur)
	if err != nil {
		return err
	}
	if a.Spec.Checksum == spec.Checksum {
		return nil
	}
	obj, err := object(name, spec)
	if err != nil {
		return err
	}
	cur.Object["spec"] = obj.Object["spec"]
	if _, err := addons.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return err
	}
	slog.Info("manifest changed", "addon", name, "file", spec.Source)
	return nil
}

// Files lists the manifests of dir by Addon name: files with a manifest
// extension, unless a X.skip file stands beside X.
func Files(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	present := map[string]bool{}
	for _, e := range entries {
		present[e.Name()] = true
	}
	out := map[string]string{}
	for _, e := range entries {
		file := e.Name()
		if e.IsDir() || !hasManifestExt(file) || present[file+SkipSuffix] || strings.HasPrefix(file, ".") {
			continue
		}
		name := AddonName(file)
		if other, dup := out[name]; dup {
			slog.Warn("two manifests map to one addon name; using the first", "addon", name, "used", other, "ignored", file)
			continue
		}
		out[name] = filepath.Join(dir, file)
	}
	return out, nil
}

func hasManifestExt(file string) bool {
	for _, ext := range extensions {
		if strings.HasSuffix(file, ext) {
			return true
		}
	}
	return false
}

// AddonName is the Addon's name for a file: its base name without the
// extension, made a valid object name.
func AddonName(file string) string {
	base := strings.ToLower(strings.TrimSuffix(file, filepath.Ext(file)))
	b := []byte(base)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			b[i] = '-'
		}
	}
	name := strings.Trim(string(b), "-.")
	if name == "" {
		name = "manifest"
	}
	return name
}

func checksum(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
