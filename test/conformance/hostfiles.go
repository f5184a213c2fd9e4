//go:build conformance

package conformance

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/k3ha/k3ha/internal/agent/images"
)

// dynamicProgram is the program at path (inside root, "" for the host's
// own filesystem) placed at dest, with every shared library ldd says it
// loads, at the paths the loader looks them up by. Libraries under root
// win over the host's.
func dynamicProgram(root, path, dest string) ([]images.File, error) {
	src := filepath.Join(root, path)
	data, err := os.ReadFile(src)
	if err != nil {
		return nil, err
	}
	files := []images.File{{Path: dest, Mode: 0o755, Data: data}}
	ldd := exec.Command("ldd", src)
	if root != "" {
		ldd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+filepath.Join(root, "usr/lib/x86_64-linux-gnu")+":"+filepath.Join(root, "lib/x86_64-linux-gnu"))
	}
	out, err := ldd.Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", src, err)
	}
	libs, err := parseLdd(out)
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", src, err)
	}
	for _, lib := range libs {
		data, err := os.ReadFile(lib) // follows the links: the image gets plain files
		if err != nil {
			return nil, err
		}
		inImage := lib
		if root != "" && strings.HasPrefix(lib, root+"/") {
			inImage = strings.TrimPrefix(lib, root)
		}
		files = append(files, images.File{Path: inImage, Mode: 0o755, Data: data})
	}
	return files, nil
}

// parseLdd returns the files ldd resolved ("name => /path (addr)" and the
// loader's "/path (addr)"), and fails on any it could not find.
func parseLdd(out []byte) ([]string, error) {
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.Contains(line, "not found") {
			return nil, fmt.Errorf("a library is missing: %s", line)
		}
		if _, after, ok := strings.Cut(line, "=> "); ok {
			line = after
		}
		if p, _, _ := strings.Cut(line, " "); strings.HasPrefix(p, "/") {
			libs = append(libs, p)
		}
	}
	return libs, nil
}

// merge joins file lists; a later file replaces an earlier one at the same
// path (a layer over a base).
func merge(lists ...[]images.File) []images.File {
	var out []images.File
	at := map[string]int{}
	for _, list := range lists {
		for _, f := range list {
			p := filepath.Clean("/" + f.Path)
			if i, ok := at[p]; ok {
				out[i] = f
				continue
			}
			at[p] = len(out)
			out = append(out, f)
		}
	}
	return out
}
