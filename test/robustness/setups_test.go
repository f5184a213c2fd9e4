//go:build robustness

package robustness

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

// The setups run after the unit tests of this package (files run in name
// order), so a failure's output ends with them.

const token = "robustness-secret"

// TestEtcd runs the clients against three servers on embedded etcd, with an
// agent joined to the first.
func TestEtcd(t *testing.T) {
	anomalies := repeatAtEnd(t)
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
	sys := newSystem(t, "etcd", servers, anomalies)
	sys.agent = agent
	sys.waitNodeReady(agent.Name, time.Now())
	runScenarios(t, sys, etcdFaults, etcdRegressions)
}

// TestPostgres runs the clients against two servers sharing one PostgreSQL
// database through kine.
func TestPostgres(t *testing.T) {
	anomalies := repeatAtEnd(t)
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
	sys := newSystem(t, "postgres", servers, anomalies)
	sys.db = db
	runScenarios(t, sys, postgresFaults, postgresRegressions)
}

// repeatAtEnd returns where runs put the anomalies they found; the test
// logs them again once every process has printed its log's tail, so the
// end of the output (all a CI excerpt keeps) says what broke.
func repeatAtEnd(t *testing.T) *[]string {
	var found []string
	t.Cleanup(func() {
		if len(found) > maxRepeated {
			found = append(found[:maxRepeated], fmt.Sprintf("... and %d more", len(found)-maxRepeated))
		}
		if len(found) > 0 {
			t.Logf("anomalies, repeated after the logs:\n%s", strings.Join(found, "\n"))
		}
	})
	return &found
}

const maxRepeated = 20
