package main

import (
	"os"
	"path/filepath"
	"testing"
)

// The local path provisioner's setup and teardown scripts, as k3ha ships them.
func TestProvisionerScripts(t *testing.T) {
	dir := t.TempDir()
	vol := filepath.Join(dir, "storage", "pvc-1_default_data")
	setup := filepath.Join(dir, "setup")
	if err := os.WriteFile(setup, []byte("#!/bin/sh\nset -eu\nmkdir -m 0777 -p \"${VOL_DIR}\"\nchmod 700 \"${VOL_DIR}/..\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VOL_DIR", vol)
	if code := run([]string{setup, "-p", vol, "-s", "1024", "-m", "Filesystem", "-a", "create"}); code != 0 {
		t.Fatalf("setup exit %d", code)
	}
	st, err := os.Stat(vol)
	if err != nil || !st.IsDir() || st.Mode().Perm() != 0o777 {
		t.Fatalf("volume dir: %v %v", st, err)
	}
	if st, _ := os.Stat(filepath.Dir(vol)); st.Mode().Perm() != 0o700 {
		t.Fatalf("parent mode %v", st.Mode())
	}
	if code := run([]string{"-c", `set -eu; rm -rf "${VOL_DIR}"`}); code != 0 {
		t.Fatalf("teardown exit %d", code)
	}
	if _, err := os.Stat(vol); !os.IsNotExist(err) {
		t.Fatalf("volume dir left: %v", err)
	}
	if code := run([]string{"-c", "exit 3"}); code != 3 {
		t.Fatalf("exit status %d, want 3", code)
	}
	if code := run([]string{filepath.Join(dir, "missing")}); code != 127 {
		t.Fatalf("missing script: %d", code)
	}
}
