//go:build robustness

package robustness

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/k3ha/k3ha/test/e2e/cluster"
)

var (
	flagDuration = flag.Duration("robustness.duration", 0,
		"inject faults in random order for this long (0: the short profile, each fault once in a fixed order)")
	flagSeed = flag.Int64("robustness.seed", 0,
		"seed of the fault order and of the clients' choices (0: from the clock); printed for replay")
	flagClients = flag.Int("robustness.clients", 8, "clients, spread over every server's API")
	flagResults = flag.String("robustness.results", "",
		"after a passing run, add its figures to this RESULTS.md (section robustness)")
	flagOut = flag.String("robustness.out", "",
		"where a failed run saves its history, porcupine's visualisation and the logs (default: bin/robustness-failures of the repository)")
)

// k3haBin is the binary under test, built once for the whole suite.
var k3haBin string

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "k3ha-robustness-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "robustness:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if k3haBin, err = cluster.Binary(filepath.Join(dir, "bin")); err != nil {
		fmt.Fprintln(os.Stderr, "robustness:", err)
		return 1
	}
	if err := cluster.HideNodePrograms(filepath.Join(dir, "path")); err != nil {
		fmt.Fprintln(os.Stderr, "robustness:", err)
		return 1
	}
	return m.Run()
}
