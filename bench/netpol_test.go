//go:build bench

package bench

// The network policy benchmark: how long after a NetworkPolicy is created
// (and deleted) new connections stop (and start again) getting through.

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/k3ha/k3ha/test/e2e/harness"
)

const (
	policyRounds     = 10
	policyGoal       = 2 * time.Second
	policySectionKey = "network-policy"
	denyWebYAML      = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-web}
spec:
  podSelector: {matchLabels: {bench: web}}
  policyTypes: [Ingress]
`
)

// probeEvent is one line of testapp probe: when the deciding connection
// attempt began and whether it got through.
type probeEvent struct {
	at time.Time
	up bool
}

// TestPolicyEnforcement: a client pod on the server's node opens a new
// connection every 20 ms to a pod on the agent's node; each round creates
// a default-deny policy for that pod, waits for the first refused
// connection, deletes the policy and waits for the first one let through.
func TestPolicyEnforcement(t *testing.T) {
	sec := newSection(policySectionKey, "Network policy: create or delete to enforcement")
	n := harness.NewNetwork(t)
	sh, ah := n.AddHost(t, "pb-server"), n.AddHost(t, "pb-agent")
	s := nodeServer(t, sh)
	s.Start()
	s.WaitReady()
	a := nodeAgent(t, k3haBin, ah, s)
	a.Start()
	defer s.Stop(30 * time.Second)
	defer a.Stop(30 * time.Second)
	webIP := sinkAndClient(t, s, "pb-server", "pb-agent", "bench: web")

	probe := s.KubectlCmd("exec", "client", "--", "/app", "probe", webIP+":"+sinkPort)
	stdout, err := probe.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := probe.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = probe.Process.Kill(); _ = probe.Wait() }()
	events := make(chan probeEvent, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 2 {
				continue
			}
			if ns, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				events <- probeEvent{at: time.Unix(0, ns), up: f[1] == "up"}
			}
		}
		close(events)
	}()
	wait := func(up bool) time.Time {
		t.Helper()
		timeout := time.After(time.Minute)
		for {
			select {
			case e, ok := <-events:
				if !ok {
					t.Fatal("probe ended")
				}
				if e.up == up {
					return e.at
				}
			case <-timeout:
				t.Fatalf("no connection %v within a minute", map[bool]string{true: "let through", false: "refused"}[up])
			}
		}
	}
	wait(true)
	var rows [][]string
	var enforce, lift []float64
	for round := 1; round <= policyRounds; round++ {
		t0 := time.Now()
		kubectlApply(t, s, denyWebYAML)
		down := wait(false).Sub(t0)
		t1 := time.Now()
		s.MustKubectl("delete", "networkpolicy", "deny-web")
		up := wait(true).Sub(t1)
		enforce, lift = append(enforce, down.Seconds()), append(lift, up.Seconds())
		rows = append(rows, []string{strconv.Itoa(round), fmt.Sprintf("%.2f", down.Seconds()), fmt.Sprintf("%.2f", up.Seconds())})
		t.Logf("round %d: enforced after %s, lifted after %s", round, down.Round(time.Millisecond), up.Round(time.Millisecond))
	}
	sec.printf(`
A server with its agent and an agent, each on its own host (the pod-network setup, vxlan). A
client pod on the server's node runs ` + "`/app probe`" + `: a new TCP connection to a pod on the agent's
node every 20 ms (200 ms connect timeout), reporting when the outcome changes. Each round starts
` + "`kubectl apply`" + ` of a default-deny ingress policy selecting that pod and takes the time until
the first connection attempt that was refused; then ` + "`kubectl delete`" + ` and the time until the first
one that got through. Both include kubectl's own start; "lifted" also includes the wait of the
refused attempt still in flight (up to 0.22 s: its 200 ms timeout and the 20 ms pause). Seconds:
`)
	sec.table([]string{"round", "create → enforced", "delete → lifted"}, rows)
	sec.printf("- median: enforced after **%.2f s**, lifted after **%.2f s**; max %.2f s / %.2f s\n",
		median(enforce), median(lift), maxOf(enforce), maxOf(lift))
	sec.printf("- goal: enforcement under %.0f s; the slowest round took %.2f s (%.2f× the goal)\n",
		policyGoal.Seconds(), maxOf(enforce), maxOf(enforce)/policyGoal.Seconds())
	sec.write(t)
}

func maxOf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}
