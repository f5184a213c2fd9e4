//go:build bench

package bench

// The packaged components: how soon after a new server's start the cluster
// DNS answers, and what the components cost in memory on a node, against
// the same server with all of them disabled.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

const (
	dnsRuns         = 3
	dnsPollEvery    = 100 * time.Millisecond
	dnsGoal         = 10 * time.Second
	packagedRSSGoal = 150e6
	packagedNode    = "pk-server"
	allPackaged     = "coredns,local-storage,metrics-server,servicelb,traefik"
	// Traefik has a benchmark of its own (ingress_test.go); these figures
	// stay those of the four components they always measured.
	withoutTraefik = "traefik"
)

var (
	testAppOnce sync.Once
	testAppPath string
	testAppErr  error
)

// testApp is the e2e workload program, for queries from a test host.
func testApp(t *testing.T) string {
	t.Helper()
	testAppOnce.Do(func() {
		dir, err := os.MkdirTemp("", "k3ha-bench-testapp-")
		if err != nil {
			testAppErr = err
			return
		}
		testAppPath = filepath.Join(dir, "testapp")
		testAppErr = cluster.BuildTestApp(testAppPath)
	})
	if testAppErr != nil {
		t.Fatal(testAppErr)
	}
	return testAppPath
}

// waitDNS polls the cluster DNS from the server's host until it answers the
// kubernetes Service's name, and returns when that was, from t0.
func waitDNS(t *testing.T, s *cluster.Server, t0 time.Time) time.Duration {
	t.Helper()
	app := testApp(t)
	for {
		if s.Proc.Exited() {
			t.Fatalf("%s exited:\n%s", s.Name, cluster.Tail(s.Proc.Log(), 30))
		}
		out, err := s.Host.Run(t, app, "query", "10.43.0.10:53", "kubernetes.default.svc.cluster.local")
		if err == nil && strings.TrimSpace(out) == "10.43.0.1" {
			return time.Since(t0)
		}
		if time.Since(t0) > 3*time.Minute {
			t.Fatalf("no DNS answer 3 minutes after the start: %v %s", err, out)
		}
		time.Sleep(dnsPollEvery)
	}
}

// podMem sums the memory of a node's pod processes by program.
func podMem(t *testing.T, node string) map[string]memInfo {
	t.Helper()
	out := map[string]memInfo{}
	for _, pid := range cluster.NodeProcesses(node) {
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		prog := filepath.Base(strings.SplitN(string(cmd), "\x00", 2)[0])
		m, err := readMem(pid)
		if err != nil {
			continue
		}
		sum := out[prog]
		sum.RSS += m.RSS
		sum.Anon += m.Anon
		sum.File += m.File
		out[prog] = sum
	}
	return out
}

func TestPackagedComponents(t *testing.T) {
	sec := newSection("packaged", "Packaged components: server start to cluster DNS answering, and their memory")
	defer sec.write(t)
	n := harness.NewNetwork(t)

	// DNS: fresh servers with their agent, each on a new data dir.
	var dns, ready []time.Duration
	for i := 0; i < dnsRuns; i++ {
		s := cluster.NewServer(t, k3haBin, n.AddHost(t, fmt.Sprintf("pk-dns%d", i)))
		t0 := time.Now()
		s.Start()
		d := waitDNS(t, s, t0)
		r, _, err := parseStartLog(s.Proc.Log(), t0)
		if err != nil {
			t.Fatal(err)
		}
		dns, ready = append(dns, d), append(ready, r)
		s.Stop(stopTimeout)
	}

	// Memory: the components' containers on an idle node with a
	// LoadBalancer Service (so servicelb's forwarder runs) and a bound
	// local-path volume, against the same server with all disabled.
	s := cluster.NewServer(t, k3haBin, n.AddHost(t, packagedNode), "--disable", withoutTraefik)
	s.Start()
	s.WaitReady()
	waitDNS(t, s, time.Now())
	if out, err := s.Kubectl("create", "service", "loadbalancer", "pk-lb", "--tcp=8082:8082"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	harness.WaitFor(t, 3*time.Minute, "metrics, forwarder and provisioner running", func() (bool, error) {
		out, err := s.Kubectl("get", "pods", "-n", "kube-system", "--no-headers")
		running := strings.Count(out, "Running")
		return running >= 4 && !strings.Contains(out, "ContainerCreating"), fmt.Errorf("%v:\n%s", err, out)
	})
	time.Sleep(idleForRSS)
	with := podMem(t, packagedNode)
	withK3ha, err := readMem(s.PID())
	if err != nil {
		t.Fatal(err)
	}
	s.Stop(stopTimeout)

	bare := cluster.NewServer(t, k3haBin, n.AddHost(t, "pk-bare"), "--disable", allPackaged)
	bare.Start()
	bare.WaitReady()
	harness.WaitFor(t, 2*time.Minute, "the bare node Ready", func() (bool, error) {
		out, err := bare.Kubectl("get", "nodes", "--no-headers")
		return strings.Contains(out, " Ready "), fmt.Errorf("%v: %s", err, out)
	})
	time.Sleep(idleForRSS)
	bareK3ha, err := readMem(bare.PID())
	if err != nil {
		t.Fatal(err)
	}
	barePods := podMem(t, "pk-bare")
	bare.Stop(stopTimeout)

	sec.printf("\nDNS: %d fresh servers (SQLite, with their agent), each on a new host and data dir. The clock starts\n", dnsRuns)
	sec.printf("just before the fork; the server's host asks 10.43.0.10 for kubernetes.default.svc.cluster.local every\n")
	sec.printf("%v until the answer is the Service's IP. \"k3ha ready\" is the server's own `took=`.\n", dnsPollEvery)
	sec.table([]string{"series", "runs", "median to DNS answer", "min", "max", "median k3ha ready", "samples (s)"},
		[][]string{{"fresh", fmt.Sprint(dnsRuns), "**" + secs(median(dns)) + "**", secs(slices.Min(dns)), secs(slices.Max(dns)), secs(median(ready)), secsList(dns)}})
	sec.printf("- goal: DNS within %s of the first server's start: median is **%.2f×** the goal\n\n", secs(dnsGoal), float64(median(dns))/float64(dnsGoal))

	sec.printf("Memory: one server with its agent (`--disable traefik`, see the Ingress section), %v idle after CoreDNS\n", idleForRSS)
	sec.printf("answered and the pods of a LoadBalancer\n")
	sec.printf("Service ran; VmRSS of each pod's processes on the node (from /proc, by program), against the same\n")
	sec.printf("server started with `--disable %s`.\n", allPackaged)
	var progs []string
	for p := range with {
		progs = append(progs, p)
	}
	sort.Strings(progs)
	var rows [][]string
	var total int64
	for _, p := range progs {
		m := with[p]
		rows = append(rows, []string{p, mb(m.RSS), mb(m.Anon), mb(m.File)})
		total += m.RSS
	}
	var bareTotal int64
	for _, m := range barePods {
		bareTotal += m.RSS
	}
	rows = append(rows, []string{"**all pods**", "**" + mb(total) + "**", "", ""})
	sec.table([]string{"pod program", "VmRSS", "RssAnon", "RssFile"}, rows)
	sec.printf("- pods with all components disabled: %s (%d programs)\n", mb(bareTotal), len(barePods))
	sec.printf("- k3ha process: %s with the components (RssAnon %s), %s without (RssAnon %s): the deploy, node-hosts and\n",
		mb(withK3ha.RSS), mb(withK3ha.Anon), mb(bareK3ha.RSS), mb(bareK3ha.Anon))
	sec.printf("  servicelb controllers and the components' watches cost the server %s\n", mb(withK3ha.RSS-bareK3ha.RSS))
	sec.printf("- goal: the components under %s on a node: their pods use **%.2f×** the goal\n", mb(packagedRSSGoal), float64(total-bareTotal)/packagedRSSGoal)
}
