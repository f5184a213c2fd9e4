package version

import (
	"os"
	"testing"

	"golang.org/x/mod/modfile"
)

// The conformance suite (conformance/, a module of its own) must be the
// one of the Kubernetes k3ha embeds: same k8s.io/kubernetes, same staging
// modules.
func TestConformanceModuleMatches(t *testing.T) {
	main, conf := parseMod(t, "../../go.mod"), parseMod(t, "../../conformance/go.mod")
	if got, want := required(conf, "k8s.io/kubernetes"), required(main, "k8s.io/kubernetes"); got == "" || got != want {
		t.Errorf("conformance/go.mod requires k8s.io/kubernetes %q, k3ha embeds %q", got, want)
	}
	replaced := map[string]string{}
	for _, r := range conf.Replace {
		replaced[r.Old.Path] = r.New.Version
	}
	for _, r := range main.Replace {
		if got := replaced[r.Old.Path]; got != r.New.Version {
			t.Errorf("conformance/go.mod replaces %s with %q, go.mod with %q: copy go.mod's replace block", r.Old.Path, got, r.New.Version)
		}
	}
}

func parseMod(t *testing.T, path string) *modfile.File {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse(path, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func required(f *modfile.File, path string) string {
	for _, r := range f.Require {
		if r.Mod.Path == path {
			return r.Mod.Version
		}
	}
	return ""
}
