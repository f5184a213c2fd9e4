package packaged

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

// The versions pinned in Images and Programs are the ones the go.mod files build.
func TestVersionsMatchModules(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "components")
	check := func(name, goMod, module, version string) {
		data, err := os.ReadFile(goMod)
		if err != nil {
			t.Fatal(err)
		}
		mf, err := modfile.Parse("go.mod", data, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range mf.Require {
			if r.Mod.Path == module {
				if r.Mod.Version != version {
					t.Errorf("%s: pinned at %s, %s builds %s", name, version, goMod, r.Mod.Version)
				}
				return
			}
		}
		t.Errorf("%s: %s does not require %s", name, goMod, module)
	}
	dirs := map[string]string{
		"coredns": "coredns", "metrics-server": "metrics-server", "local-path-provisioner": "local-path-provisioner",
		"local-path-helper": "helpers", "traefik": "traefik",
	}
	for _, img := range Images {
		if dir, ok := dirs[img.Name]; ok { // else k3ha's own program, versioned here
			check(img.Name, filepath.Join(root, dir, "go.mod"), img.Module, img.Version)
		}
	}
	for _, p := range Programs {
		goMod := filepath.Join(root, "..", "go.mod")
		if p.Dir != "" {
			goMod = filepath.Join(root, p.Dir, "go.mod")
		}
		check(p.Name, goMod, p.Module, p.Version)
	}
	for _, img := range Images {
		if strings.ContainsAny(img.Version, "+ ") {
			t.Errorf("%s: version %q is not a valid image tag", img.Name, img.Version)
		}
	}
}
