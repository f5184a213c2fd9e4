package packaged

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"text/template"

	"github.com/k3ha/k3ha/internal/pki"
)

//go:embed manifests/*.yaml
var manifestFS embed.FS

// Values fill the manifests' templates.
type Values struct {
	ClusterDNS    string
	ClusterDomain string
	// StoragePath is where local-path volumes live on every node.
	StoragePath string
	// Registry is --system-default-registry: images are named under it
	// instead of k3ha's own (never pulled) registry.
	Registry string
}

// Image is the reference of the packaged image name, for the templates.
func (v Values) Image(name string) string { return ImageByName(name).RefIn(v.Registry) }

// ImageRepo is the packaged image's repository, for a chart's values.
func (v Values) ImageRepo(name string) string { return ImageByName(name).RepoIn(v.Registry) }

// ImageTag is the packaged image's tag, for a chart's values.
func (v Values) ImageTag(name string) string { return ImageByName(name).Version }

// ChartFile is the packaged chart's archive name under static/charts.
func (v Values) ChartFile(name string) (string, error) { return ChartFile(name) }

// Manifest renders the manifest of a packaged component; ok is false for
// components without one.
func Manifest(component string, v Values) (data []byte, ok bool, err error) {
	text, err := manifestFS.ReadFile("manifests/" + component + ".yaml")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	t, err := template.New(component).Option("missingkey=error").Parse(string(text))
	if err != nil {
		return nil, false, fmt.Errorf("manifest %s: %w", component, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return nil, false, fmt.Errorf("manifest %s: %w", component, err)
	}
	return b.Bytes(), true, nil
}

// SkipSuffix beside a manifest (coredns.yaml.skip) stops k3ha from writing
// or applying it, so users can keep their own version.
const SkipSuffix = ".skip"

// WriteManifests writes the enabled components' manifests into dir and
// removes the disabled ones', as every server does at start. A manifest
// with a .skip file beside it is left alone.
func WriteManifests(dir string, v Values, enabled, disabled []string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("manifests dir: %w", err)
	}
	for _, c := range slices.Concat(enabled, disabled) {
		path := filepath.Join(dir, c+".yaml")
		if _, err := os.Stat(path + SkipSuffix); err == nil {
			slog.Info("packaged manifest skipped", "file", path, "because", path+SkipSuffix)
			continue
		}
		if slices.Contains(disabled, c) {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove disabled component's manifest: %w", err)
			}
			continue
		}
		data, ok, err := Manifest(c, v)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, data) {
			continue
		}
		if err := pki.WriteFileAtomic(path, data, 0o600); err != nil {
			return fmt.Errorf("write manifest: %w", err)
		}
	}
	return nil
}
