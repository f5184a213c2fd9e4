package cluster

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// hiddenFromNodes are programs a k3ha node must not take from the
// distribution: it carries its own.
var hiddenFromNodes = []string{"runc", "containerd", "crictl", "ctr"}

// nodePath is the PATH node processes get; empty: the test's own.
var nodePath string

// HideNodePrograms makes dir a directory of links to every program on the
// test machine's PATH except those a node carries itself (runc, the
// containerd shims, crictl, ctr), and the PATH of every node started from
// now on: a node then proves it needs nothing else from the machine (call
// once, from TestMain).
func HideNodePrograms(dir string) error {
	err := PathWithout(dir, func(name string) bool {
		return slices.Contains(hiddenFromNodes, name) || strings.HasPrefix(name, "containerd-shim")
	})
	if err == nil {
		nodePath = dir
	}
	return err
}

// PathWithout makes dir a directory of links to the programs of the test's
// PATH, except those hide picks: a PATH without them.
func PathWithout(dir string, hide func(name string) bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if hide(e.Name()) {
				continue
			}
			// The first one on PATH wins, as in a lookup.
			if err := os.Symlink(filepath.Join(d, e.Name()), filepath.Join(dir, e.Name())); err != nil && !os.IsExist(err) {
				return err
			}
		}
	}
	return nil
}

// nodeEnv is the environment of a node process: its PATH, then env.
func nodeEnv(env []string) []string {
	if nodePath == "" {
		return env
	}
	return append([]string{"PATH=" + nodePath}, env...)
}
