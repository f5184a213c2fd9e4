//go:build e2e

// Package e2e starts real k3ha processes, each in its own network namespace
// with its own address, and checks what users see: kubectl, the supervisor
// port, restarts, kills and partitions.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// k3haBin is the binary under test, built once for the whole suite.
var k3haBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	k3haBin = os.Getenv("K3HA_BIN")
	if k3haBin == "" {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		build := exec.Command("make", "-C", root, "build")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: building k3ha failed:", err)
			return 1
		}
		k3haBin = filepath.Join(root, "bin", "k3ha")
	}
	if _, err := exec.LookPath("kubectl"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: kubectl is not on PATH; the suite checks k3ha with the machine's own kubectl as well as `k3ha kubectl`")
		return 1
	}
	return m.Run()
}
