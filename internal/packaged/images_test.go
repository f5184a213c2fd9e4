package packaged

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

// The versions pinned in Images are the ones components/*/go.mod build.
func TestImageVersionsMatchModules(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "components")
	dirs := map[string]string{
		"coredns": "coredns", "metrics-server": "metrics-server", "local-path-provisioner": "local-path-provisioner",
		"local-path-helper": "helpers",
	}
	for _, img := range Images {
		dir, ok := dirs[img.Name]
		if !ok {
			continue // k3ha's own program, versioned here
		}
		data, err := os.ReadFile(filepath.Join(root, dir, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		mf, err := modfile.Parse("go.mod", data, nil)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range mf.Require {
			if r.Mod.Path == img.Module {
				found = true
				if r.Mod.Version != img.Version {
					t.Errorf("%s: Images pins %s, components/%s/go.mod builds %s", img.Name, img.Version, dir, r.Mod.Version)
				}
			}
		}
		if !found {
			t.Errorf("%s: components/%s/go.mod does not require %s", img.Name, dir, img.Module)
		}
	}
	for _, img := range Images {
		if strings.ContainsAny(img.Version, "+ ") {
			t.Errorf("%s: version %q is not a valid image tag", img.Name, img.Version)
		}
	}
}
