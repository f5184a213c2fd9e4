package cluster

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/k3ha/k3ha/internal/agent/images"
)

// BuildTestApp builds testapp as a static binary at path.
func BuildTestApp(path string) error { return staticBuild(".", "./testapp", path) }

// staticBuild builds the package pkg of the module in dir (relative to
// test/e2e) as a static program at path.
func staticBuild(dir, pkg, path string) error {
	_, file, _, _ := runtime.Caller(0)
	build := exec.Command("go", "build", "-o", path, pkg)
	build.Dir = filepath.Join(filepath.Dir(file), "..", dir)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", dir, err, out)
	}
	return nil
}

// TestImage builds testapp as a static binary and packs it as an image
// archive named ref.
func TestImage(ref string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "k3ha-testapp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "testapp")
	if err := BuildTestApp(bin); err != nil {
		return nil, err
	}
	return ImageOf(bin, ref)
}

// ImageOf packs the testapp binary at bin as an image archive named ref.
func ImageOf(bin, ref string) ([]byte, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	img := images.ImageFromBinary(ref, runtime.GOARCH, data, "serve", ":8080")
	if err := images.WriteArchive(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// AddImage puts an image archive into the node's air-gap images directory,
// which the agent imports at start.
func AddImage(dataDir, name string, archive []byte) error {
	dir := filepath.Join(dataDir, "agent", "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name), archive, 0o644)
}
