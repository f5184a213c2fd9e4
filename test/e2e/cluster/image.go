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

// TestImage builds testapp as a static binary and packs it as an image
// archive named ref.
func TestImage(ref string) ([]byte, error) {
	_, file, _, _ := runtime.Caller(0)
	dir, err := os.MkdirTemp("", "k3ha-testapp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "testapp")
	build := exec.Command("go", "build", "-o", bin, "./testapp")
	build.Dir = filepath.Join(filepath.Dir(file), "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build testapp: %w\n%s", err, out)
	}
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
