//go:build robustness

package robustness

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
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

const token = "robustness-secret"

// TestEtcd runs the clients against three servers on embedded etcd, with an
// agent joined to the first.
func TestEtcd(t *testing.T) {
	n := harness.NewNetwork(t)
	var servers []*cluster.Server
	for i := range 3 {
		args := []string{"--disable-agent"}
		if i == 0 {
			args = append(args, "--cluster-init")
		} else {
			args = append(args, "--server", servers[0].URL())
		}
		s := cluster.NewServer(t, k3haBin, n.AddHost(t, fmt.Sprintf("s%d", i+1)), args...)
		s.Env = []string{"K3HA_TOKEN=" + token}
		s.Start()
		s.WaitReady()
		servers = append(servers, s)
	}
	agent := cluster.NewAgent(t, k3haBin, n.AddHost(t, "a1"), servers[0].URL(), token)
	agent.Start()
	sys := newSystem(t, "etcd", servers)
	sys.agent = agent
	sys.waitNodeReady(agent.Name, time.Now())
	runScenarios(t, sys, etcdFaults, etcdRegressions)
}

// TestPostgres runs the clients against two servers sharing one PostgreSQL
// database through kine.
func TestPostgres(t *testing.T) {
	n := harness.NewNetwork(t)
	db := cluster.NewPostgres(t, n.AddHost(t, "db"))
	db.Start()
	var servers []*cluster.Server
	for i := range 2 {
		s := cluster.NewServer(t, k3haBin, n.AddHost(t, fmt.Sprintf("s%d", i+1)),
			"--disable-agent", "--datastore-endpoint", db.DSN("k3ha"))
		s.Env = []string{"K3HA_TOKEN=" + token}
		s.Start()
		s.WaitReady()
		servers = append(servers, s)
	}
	sys := newSystem(t, "postgres", servers)
	sys.db = db
	runScenarios(t, sys, postgresFaults, postgresRegressions)
}
