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
	"testing"

	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

// k3haBin is the binary under test, built once for the whole suite.
var k3haBin string

// testImage is a docker-archive of the test workload (testapp), built once
// and dropped into every node's air-gap images directory; testApp is the
// same program, for the test hosts themselves (an outside DNS server).
var (
	testImage   []byte
	testApp     string
	registryBin string // the test registry (test/e2e/registry)
	s3Bin       string // the test S3 server (test/e2e/s3server)
)

func TestMain(m *testing.M) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: kubectl is not on PATH; the suite checks k3ha with the machine's own kubectl as well as `k3ha kubectl`")
		os.Exit(1)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "k3ha-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Nodes run k3ha copied alone into an empty directory, on a PATH
	// without runc or containerd's tools: all they need is that one file.
	if k3haBin, err = cluster.Binary(filepath.Join(dir, "bin")); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if err := cluster.HideNodePrograms(filepath.Join(dir, "path")); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	registryBin = filepath.Join(dir, "registry")
	if err := cluster.BuildRegistry(registryBin); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	s3Bin = filepath.Join(dir, "s3server")
	if err := cluster.BuildS3Server(s3Bin); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	testApp = filepath.Join(dir, "testapp")
	if err := cluster.BuildTestApp(testApp); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if testImage, err = cluster.ImageOf(testApp, testImageRef); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

const testImageRef = "k3ha.invalid/e2e/testapp:1"

func newServer(t *testing.T, host *harness.Host, args ...string) *cluster.Server {
	return cluster.NewServer(t, k3haBin, host, args...)
}

func runK3ha(t *testing.T, host *harness.Host, args ...string) (string, int) {
	return cluster.RunK3ha(t, k3haBin, host, args...)
}

var tail = cluster.Tail

func kubectlCmd(s *cluster.Server, args ...string) *exec.Cmd { return s.KubectlCmd(args...) }
