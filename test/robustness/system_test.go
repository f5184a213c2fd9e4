//go:build robustness

package robustness

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

// recoverTimeout bounds every wait for the cluster to heal.
const recoverTimeout = 3 * time.Minute

// system is the cluster under test: servers, and an agent or a database
// depending on the datastore.
type system struct {
	t       *testing.T
	name    string
	servers []*cluster.Server
	agent   *cluster.Server   // etcd: joined to servers[0]
	db      *cluster.Postgres // postgres
	probes  []kubernetes.Interface
	probeN  int
	turn    int // which server the next fault of a leaderless datastore hits
	// anomalies collects what the runs found, for the end of the output.
	anomalies *[]string
}

func newSystem(t *testing.T, name string, servers []*cluster.Server, anomalies *[]string) *system {
	s := &system{t: t, name: name, servers: servers, anomalies: anomalies}
	for _, srv := range servers {
		s.probes = append(s.probes, srv.Client())
	}
	return s
}

// leader is the server whose etcd member leads, once exactly one says so.
func (s *system) leader() int {
	s.t.Helper()
	leader := -1
	harness.WaitFor(s.t, recoverTimeout, "exactly one etcd leader", func() (bool, error) {
		var leaders []int
		for i, srv := range s.servers {
			ok, err := srv.IsEtcdLeader()
			if err != nil {
				return false, fmt.Errorf("%s: %w", srv.Name, err)
			}
			if ok {
				leaders = append(leaders, i)
			}
		}
		if len(leaders) != 1 {
			return false, fmt.Errorf("leaders: %v", leaders)
		}
		leader = leaders[0]
		return true, nil
	})
	return leader
}

// other is a server that is not i.
func (s *system) other(i int) int { return (i + 1) % len(s.servers) }

// probe writes a ConfigMap of its own (outside the clients' label) through
// server i: the proof that it serves writes.
func (s *system) probe(i int) error {
	s.probeN++
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	name := fmt.Sprintf("probe-%s-%d", s.servers[i].Name, s.probeN)
	_, err := s.probes[i].CoreV1().ConfigMaps(namespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err == nil {
		_ = s.probes[i].CoreV1().ConfigMaps(namespace).Delete(ctx, name, metav1.DeleteOptions{})
	}
	return err
}

// waitWritable waits until every server but those in except serves a write.
func (s *system) waitWritable(msg string, except ...int) {
	s.t.Helper()
	harness.WaitFor(s.t, recoverTimeout, msg, func() (bool, error) {
		for i := range s.servers {
			if slices.Contains(except, i) {
				continue
			}
			if err := s.probe(i); err != nil {
				return false, fmt.Errorf("%s: %w", s.servers[i].Name, err)
			}
		}
		return true, nil
	})
}

// waitHealthy waits until every server is ready and serves a write, and the
// agent's node (if any) is Ready.
func (s *system) waitHealthy() {
	s.t.Helper()
	for _, srv := range s.servers {
		srv.WaitReady()
	}
	s.waitWritable("every server serves writes")
	if s.agent != nil {
		s.waitNodeReady(s.agent.Name, time.Time{})
	}
}

// kill sends SIGKILL to server i and reaps it.
func (s *system) kill(i int) {
	s.t.Helper()
	if err := s.servers[i].Proc.Kill(); err != nil {
		s.t.Fatal(err)
	}
}

// restart starts server i again on its data (it waits for ready later).
func (s *system) restart(i int) { s.servers[i].Start() }

// waitNodeReady waits until node is Ready and has renewed its lease after
// since, as seen through any server that answers.
func (s *system) waitNodeReady(node string, since time.Time) {
	s.t.Helper()
	harness.WaitFor(s.t, recoverTimeout, fmt.Sprintf("node %s Ready, its lease renewed after %s", node, since.Format(time.StampMilli)), func() (bool, error) {
		var lastErr error
		for _, c := range s.probes {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			lease, err := c.CoordinationV1().Leases("kube-node-lease").Get(ctx, node, metav1.GetOptions{})
			var n *corev1.Node
			if err == nil {
				n, err = c.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
			}
			cancel()
			if err != nil {
				lastErr = err
				continue
			}
			if lease.Spec.RenewTime == nil || !lease.Spec.RenewTime.After(since) {
				return false, fmt.Errorf("lease renewed at %v", lease.Spec.RenewTime)
			}
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady {
					return c.Status == corev1.ConditionTrue, fmt.Errorf("Ready=%s: %s", c.Status, c.Message)
				}
			}
			return false, fmt.Errorf("no Ready condition")
		}
		return false, lastErr
	})
}
