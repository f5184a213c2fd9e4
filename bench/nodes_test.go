//go:build bench

package bench

// The node benchmarks: a server on SQLite with its agent, and a standalone
// `k3ha agent` on another host (network namespace) joining it. TestNodeReady
// times agent start to its Node Ready, fresh and restarted; TestPodStart
// times pod create to Running for a pre-imported image on either node;
// TestNodeRSS reads the memory of both nodes' processes, with a server
// without agent for comparison.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"

	"github.com/k3ha/k3ha/test/report"
)

const (
	agentRestarts   = 5
	agentFreshRuns  = 3 // the agent's first start, then one more on each of two new hosts
	podsPerNode     = 10
	nodePollEvery   = 100 * time.Millisecond
	nodeReadyWait   = 3 * time.Minute
	podRunningWait  = 2 * time.Minute
	podNamespace    = "default"
	benchImageRef   = "k3ha.invalid/bench/testapp:1"
	benchImageFile  = "testapp.tar"
	hostnameLabel   = "kubernetes.io/hostname"
	nodeReadyGoal   = 10 * time.Second
	podRunningGoal  = 5 * time.Second
	agentRSSGoal    = 150e6 // bytes of VmRSS of the agent
	singleRSSMarker = "single-rss"

	// Node names are cgroup names too (/k3ha/<node>), and the cleanups kill
	// what runs in them: these do not clash with the e2e tests' nodes.
	serverNodeName = "nb-server"
	agentNodeName  = "nb-agent"
)

// nodePhases are the log lines of a node's start, in the order a server
// with its agent writes them; a standalone agent writes those from "load
// balancer ready" on, "k3ha agent is ready" instead of "k3ha is ready".
var nodePhases = []string{
	"certificates ready",
	"datastore ready",
	"kube-apiserver ready",
	"controllers started",
	"load balancer ready",
	"node certificates ready",
	"payload unpacked",
	"containerd ready",
	"image imported",
	"images imported",
	"kubelet started",
	"k3ha agent is ready",
	"k3ha is ready",
	"waiting for the node's pod CIDR",
	"node has its pod CIDR",
	"wrote CNI config",
	"pod network configured",
}

var (
	imageOnce  sync.Once
	imageBytes []byte
	imageErr   error
)

// benchImage is the e2e test workload as an image archive, built once.
func benchImage(t *testing.T) []byte {
	t.Helper()
	imageOnce.Do(func() { imageBytes, imageErr = cluster.TestImage(benchImageRef) })
	if imageErr != nil {
		t.Fatal(imageErr)
	}
	return imageBytes
}

// binaryCopy puts a copy of k3ha (which carries its shim) into a directory of the
// test's own. An agent started from it maps other page-cache pages than the
// server, as on a machine of its own: the proportional set sizes (PSS) of
// the agent and its containerd then add up to what the two cost together.
func binaryCopy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := cluster.CopyExecutable(k3haBin, filepath.Join(dir, filepath.Base(k3haBin))); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, filepath.Base(k3haBin))
}

// nodeServer prepares a server with its agent (SQLite, the default) on h,
// with the test image in its air-gap images dir.
func nodeServer(t *testing.T, h *harness.Host, args ...string) *cluster.Server {
	t.Helper()
	s := cluster.NewServer(t, k3haBin, h, args...)
	if err := cluster.AddImage(s.DataDir(), benchImageFile, benchImage(t)); err != nil {
		t.Fatal(err)
	}
	return s
}

// nodeAgent prepares `k3ha agent` from bin on h, joining s with its agent
// token, with the test image in its air-gap images dir.
func nodeAgent(t *testing.T, bin string, h *harness.Host, s *cluster.Server) *cluster.Server {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(s.DataDir(), "server", "agent-token"))
	if err != nil {
		t.Fatalf("agent token of %s: %v", s.Name, err)
	}
	a := cluster.NewAgent(t, bin, h, s.URL(), strings.TrimSpace(string(tok)))
	if err := cluster.AddImage(a.DataDir(), benchImageFile, benchImage(t)); err != nil {
		t.Fatal(err)
	}
	return a
}

// nodeStart is one start of a node's k3ha process, seen from outside. All
// durations are from just before the fork.
type nodeStart struct {
	ready    time.Duration // this start's kubelet posted Ready=True
	status   time.Duration // this start's kubelet posted its first Ready condition, whatever its status
	found    time.Duration // the first Get that found the Node (fresh starts only)
	podCIDR  time.Duration // the first Get that showed spec.podCIDR (fresh starts only)
	notReady []string      // each distinct not-ready condition this start's kubelet posted, with when
	at       map[string]time.Duration
	took     time.Duration // took= of the process's own ready line
	mem      nodeMem       // right after Ready
	cpu      time.Duration // user+system of k3ha and its containerd until Ready
	stop     time.Duration // SIGTERM to exit of the previous process (restarts)
	load     string        // load average before / after
}

// readyCondition returns the Node's Ready condition, nil if it has none.
func readyCondition(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// waitForSecond returns once the clock's second is past after, so that a
// heartbeat (whole seconds in the API) at or after the start of the current
// second cannot be an earlier process's.
func waitForSecond(after time.Time) {
	for !time.Now().Truncate(time.Second).After(after) {
		time.Sleep(10 * time.Millisecond)
	}
}

// watchNodeStart polls the Node every nodePollEvery until the kubelet of
// the process started at t0 has posted Ready=True; times are from t0. Only
// conditions with a heartbeat from since on count: since is t0's second, so
// the Ready of the previous process, which stays on the Node after SIGTERM,
// does not.
func watchNodeStart(t *testing.T, cs kubernetes.Interface, node string, p *harness.Process, t0, since time.Time, fresh bool) nodeStart {
	t.Helper()
	r := nodeStart{found: -1, podCIDR: -1}
	deadline := time.Now().Add(nodeReadyWait)
	seen := map[string]bool{}
	tick := time.NewTicker(nodePollEvery)
	defer tick.Stop()
	var lastErr error
	for {
		if p.Exited() {
			t.Fatalf("%s exited before node %s was Ready:\n%s", p, node, cluster.Tail(p.Log(), 30))
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		cancel()
		now := time.Since(t0)
		switch {
		case err == nil:
			if fresh && r.found < 0 {
				r.found = now
			}
			if fresh && r.podCIDR < 0 && n.Spec.PodCIDR != "" {
				r.podCIDR = now
			}
			if c := readyCondition(n); c != nil && !c.LastHeartbeatTime.Time.Before(since) {
				if r.status == 0 {
					r.status = now
				}
				if c.Status == corev1.ConditionTrue {
					r.ready = now
					return r
				}
				if msg := c.Reason + ": " + c.Message; !seen[msg] {
					seen[msg] = true
					r.notReady = append(r.notReady, fmt.Sprintf("%s %s", secs(now), msg))
				}
			}
		case !apierrors.IsNotFound(err):
			lastErr = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s not Ready %v after its start (last error %v):\n%s", node, nodeReadyWait, lastErr, cluster.Tail(p.Log(), 30))
		}
		<-tick.C
	}
}

// heartbeat is when the Node's Ready condition was last posted.
func heartbeat(t *testing.T, cs kubernetes.Interface, node string) time.Time {
	t.Helper()
	n, err := cs.CoreV1().Nodes().Get(t.Context(), node, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("node %s: %v", node, err)
	}
	c := readyCondition(n)
	if c == nil {
		t.Fatalf("node %s has no Ready condition", node)
	}
	return c.LastHeartbeatTime.Time
}

// phaseTimes returns when each of the messages was last logged by one
// process (one start's log), from t0, and the took= of its ready line.
func phaseTimes(t *testing.T, log string, t0 time.Time) (map[string]time.Duration, time.Duration) {
	t.Helper()
	at := map[string]time.Duration{}
	var took time.Duration
	for _, line := range strings.Split(log, "\n") {
		for _, m := range nodePhases {
			if !strings.Contains(line, `msg="`+m+`"`) {
				continue
			}
			ts, err := time.Parse(time.RFC3339Nano, logField(line, "time"))
			if err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			at[m] = ts.Sub(t0)
			if m == "k3ha is ready" || m == "k3ha agent is ready" {
				if took, err = time.ParseDuration(logField(line, "took")); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
			}
		}
	}
	return at, took
}

// apiClient is a client of the server every Node is read through, made
// once the server's API answers.
type apiClient struct {
	s  *cluster.Server
	cs kubernetes.Interface
}

func (c *apiClient) get(t *testing.T) kubernetes.Interface {
	if c.cs == nil {
		c.cs = watchClient(t, c.s)
	}
	return c.cs
}

// startNode starts a node's process (a server with its agent, or an agent)
// and measures it until its Node is Ready.
func startNode(t *testing.T, api *apiClient, s *cluster.Server, fresh bool) nodeStart {
	t.Helper()
	load := report.LoadAvg()
	t0 := time.Now()
	s.Start()
	if s.Kubeconfig != "" {
		// A server: its API must answer before the Node can be read through it.
		harness.WaitFor(t, cluster.ReadyTimeout, s.Name+" ready", func() (bool, error) {
			if s.Proc.Exited() {
				t.Fatalf("%s exited while starting:\n%s", s.Name, cluster.Tail(s.Proc.Log(), 30))
			}
			return s.Ready()
		})
	}
	r := watchNodeStart(t, api.get(t), s.Name, s.Proc, t0, t0.Truncate(time.Second), fresh)
	r.mem = readNodeMem(t, s.PID())
	r.cpu = r.mem.cpu
	r.load = load + " / " + report.LoadAvg()
	// The ready line is written just after the kubelet starts, long before
	// the Node is Ready; wait for it all the same rather than assume.
	harness.WaitFor(t, 10*time.Second, s.Name+"'s ready log line", func() (bool, error) {
		r.at, r.took = phaseTimes(t, s.Proc.Log(), t0)
		_, server := r.at["k3ha is ready"]
		_, agent := r.at["k3ha agent is ready"]
		return server || agent, nil
	})
	return r
}

// TestNodeReady starts a server with its agent, then a standalone agent on
// another host: fresh (new data dir, new host), and restarted after SIGTERM
// on the same data dir. Each is timed from process start to the Node's
// Ready condition, posted by that start's kubelet.
func TestNodeReady(t *testing.T) {
	sec := newSection("nodes-ready", "Nodes: agent start to Node Ready")
	defer sec.write(t)
	n := harness.NewNetwork(t)
	agentBin := binaryCopy(t)

	s := nodeServer(t, n.AddHost(t, serverNodeName))
	api := &apiClient{s: s}
	srv := startNode(t, api, s, true)
	t.Logf("server %s: Node Ready after %v (readyz at %v)", s.Name, srv.ready, srv.at["k3ha is ready"])
	time.Sleep(settleBefore)

	var fresh, restarts []nodeStart
	a := nodeAgent(t, agentBin, n.AddHost(t, agentNodeName), s)
	r := startNode(t, api, a, true)
	t.Logf("agent fresh 1: Node Ready after %v (agent ready line at %v)", r.ready, r.at["k3ha agent is ready"])
	fresh = append(fresh, r)
	for i := range agentRestarts {
		time.Sleep(settleBefore)
		stop := a.Stop(stopTimeout)
		// Read once the process is gone: its last status is final.
		waitForSecond(heartbeat(t, api.get(t), a.Name))
		r := startNode(t, api, a, false)
		r.stop = stop
		t.Logf("agent restart %d: stopped in %v, Node Ready after %v (agent ready line at %v)", i+1, stop, r.ready, r.at["k3ha agent is ready"])
		restarts = append(restarts, r)
	}
	stops := []time.Duration{a.Stop(stopTimeout)}
	for i := 1; i < agentFreshRuns; i++ {
		time.Sleep(settleBefore)
		b := nodeAgent(t, agentBin, n.AddHost(t, fmt.Sprintf("nb-fresh%d", i+1)), s)
		r := startNode(t, api, b, true)
		t.Logf("agent fresh %d (%s): Node Ready after %v", i+1, b.Name, r.ready)
		fresh = append(fresh, r)
		stops = append(stops, b.Stop(stopTimeout))
	}
	for _, r := range restarts {
		stops = append(stops, r.stop)
	}
	s.Stop(stopTimeout)

	sec.printf("\nOne server (SQLite, with its agent) and `k3ha agent` on another host (network namespace) of the\n")
	sec.printf("same bridge, joining the server with its agent token; both on the same two cores. The agent runs\n")
	sec.printf("from a copy of the binary (as on a machine of its own, it shares no page cache with the server).\n")
	sec.printf("Each host's air-gap images dir holds the e2e test image (%s of docker-archive, imported at\n", mb(int64(len(benchImage(t)))))
	sec.printf("every start). The clock starts just before the fork; the Node is read through the server's API\n")
	sec.printf("with client-go every %v, and a start counts as Ready when the Node's Ready condition is True\n", nodePollEvery)
	sec.printf("with a heartbeat from that start's kubelet (at or after the start's second; heartbeats are whole\n")
	sec.printf("seconds, so a restart waits for the second after the previous heartbeat). Fresh: new data dir on a\n")
	sec.printf("new host and node name (the server keeps a node password per name); the agent's first start,\n")
	sec.printf("then %d more after the restarts, each stopped once Ready. Restart: SIGTERM, then start again on\n", agentFreshRuns-1)
	sec.printf("the same data dir at once, %v after the previous start was Ready; the Node stays Ready=True in\n", settleBefore)
	sec.printf("between (the controller-manager would mark it Unknown only after its grace period).\n")
	sec.printf("The server's own node is one fresh start of `k3ha server` (its Node is Ready after the API is up).\n")
	summary := func(label string, runs []nodeStart) []string {
		var ready, took []time.Duration
		var rss, sum []int64
		for _, r := range runs {
			ready, took = append(ready, r.ready), append(took, r.took)
			rss, sum = append(rss, r.mem.k3ha.RSS), append(sum, r.mem.k3ha.RSS+r.mem.ctrd.RSS)
		}
		return []string{label, fmt.Sprint(len(runs)), "**" + secs(median(ready)) + "**", secs(slices.Min(ready)),
			secs(slices.Max(ready)), secs(median(took)), mb(median(rss)), mb(median(sum)), secsList(ready)}
	}
	sec.table([]string{"series", "runs", "median to Node Ready", "min", "max", "median took= of the ready line",
		"VmRSS at Ready: k3ha", "+ its containerd", "samples (s)"},
		[][]string{summary("server with its agent, fresh", []nodeStart{srv}), summary("agent, fresh", fresh), summary("agent, restart", restarts)})
	fr, rr := medianOf(fresh, func(r nodeStart) time.Duration { return r.ready }), medianOf(restarts, func(r nodeStart) time.Duration { return r.ready })
	var all []time.Duration
	for _, r := range append(slices.Clone(fresh), restarts...) {
		all = append(all, r.ready)
	}
	sec.printf("- agent restart/fresh ratio of the medians: **%.2f**\n", rr.Seconds()/fr.Seconds())
	sec.printf("- goal: node Ready under %v; agent fresh median **%.2f×** the goal, restart median **%.2f×**, slowest of all %d starts %s (%.2f×)\n",
		nodeReadyGoal, fr.Seconds()/nodeReadyGoal.Seconds(), rr.Seconds()/nodeReadyGoal.Seconds(), len(all),
		secs(slices.Max(all)), slices.Max(all).Seconds()/nodeReadyGoal.Seconds())
	sec.printf("- server with its agent: /v1-k3ha/readyz ok after %s, its Node Ready after %s\n", secs(srv.at["k3ha is ready"]), secs(srv.ready))
	sec.printf("- agent SIGTERM to exit (all %d stops): median %s, max %s\n", len(stops), secs(median(stops)), secs(slices.Max(stops)))
	var cpuFresh, cpuRestart []time.Duration
	for _, r := range fresh {
		cpuFresh = append(cpuFresh, r.cpu)
	}
	for _, r := range restarts {
		cpuRestart = append(cpuRestart, r.cpu)
	}
	sec.printf("- CPU (user+system) of the agent and its containerd until Ready: fresh median %s, restart median %s\n", secs(median(cpuFresh)), secs(median(cpuRestart)))
	var loads []string
	for _, r := range append(slices.Clone(fresh), restarts...) {
		loads = append(loads, r.load)
	}
	sec.printf("- load average before/after each agent start (fresh, then restarts): %s\n", strings.Join(loads, "; "))

	sec.printf("\nWhere the time goes: median time after process start of each log line (k3ha's own, the\n")
	sec.printf("Kubernetes components log only errors) and of what the polls saw; n/a: not logged or not seen in\n")
	sec.printf("every start of that series (the pause image is imported only into a new containerd; a restarted\n")
	sec.printf("agent's Node exists and has its pod CIDR already).\n")
	var rows [][]string
	for _, p := range nodePhases {
		row := []string{p, phaseAt([]nodeStart{srv}, p), phaseAt(fresh, p), phaseAt(restarts, p)}
		if row[1] == "n/a" && row[2] == "n/a" && row[3] == "n/a" {
			continue
		}
		rows = append(rows, row)
	}
	for _, o := range []struct {
		name string
		f    func(nodeStart) time.Duration
	}{
		{"poll: the Node exists", func(r nodeStart) time.Duration { return r.found }},
		{"poll: the Node has spec.podCIDR", func(r nodeStart) time.Duration { return r.podCIDR }},
		{"poll: first Ready condition from this start's kubelet", func(r nodeStart) time.Duration { return r.status }},
		{"poll: **Ready=True**", func(r nodeStart) time.Duration { return r.ready }},
	} {
		rows = append(rows, []string{o.name, observedAt([]nodeStart{srv}, o.f), observedAt(fresh, o.f), observedAt(restarts, o.f)})
	}
	sec.table([]string{"event", "server with its agent (1 fresh start)", fmt.Sprintf("agent fresh (median of %d)", len(fresh)),
		fmt.Sprintf("agent restart (median of %d)", len(restarts))}, rows)
	between := func(runs []nodeStart, from, to func(nodeStart) time.Duration) time.Duration {
		return medianOf(runs, func(r nodeStart) time.Duration { return to(r) - from(r) })
	}
	logged := func(msg string) func(nodeStart) time.Duration {
		return func(r nodeStart) time.Duration { return r.at[msg] }
	}
	found := func(r nodeStart) time.Duration { return r.found }
	cidr := func(r nodeStart) time.Duration { return r.podCIDR }
	ready := func(r nodeStart) time.Duration { return r.ready }
	sec.printf("Intervals (medians over the series, each start's own difference):\n\n")
	for _, c := range []struct {
		name string
		runs []nodeStart
	}{{"server with its agent", []nodeStart{srv}}, {"agent, fresh", fresh}} {
		sec.printf("- %s: kubelet started → the Node exists %s; → the Node has its pod CIDR %s; pod CIDR on the Node →\n", c.name,
			ms(between(c.runs, logged("kubelet started"), found)), ms(between(c.runs, found, cidr)))
		sec.printf("  the agent has it (`node has its pod CIDR`; it asks every 2 s) **%s**; → pod network configured %s; → Ready=True %s\n",
			ms(between(c.runs, cidr, logged("node has its pod CIDR"))),
			ms(between(c.runs, logged("node has its pod CIDR"), logged("pod network configured"))),
			ms(between(c.runs, logged("pod network configured"), ready)))
	}
	sec.printf("- agent, restart: kubelet started → Ready=True **%s** (the CNI config and pod CIDR are there from before)\n",
		ms(between(restarts, logged("kubelet started"), ready)))
	if d := srv.podCIDR - srv.found; d > 2*time.Second {
		sec.printf("- the server's own Node waited %s for its pod CIDR, the fresh agent's %s: on a fresh server the\n", secs(d), ms(between(fresh, found, cidr)))
		sec.printf("  kube-controller-manager, which assigns pod CIDRs (node-ipam), takes its lease at once but builds\n")
		sec.printf("  all its controllers before any of them runs; a run with `--debug` shows node-ipam built and the\n")
		sec.printf("  controllers starting about 5 s after `controllers started`, in the same seconds as the agent's start.\n")
	}

	sec.printf("\nNot-ready conditions the kubelet posted before Ready (time after start: reason: message):\n\n")
	for _, c := range []struct {
		name string
		r    nodeStart
	}{{"server with its agent", srv}, {"agent, first fresh start", fresh[0]}, {"agent, first restart", restarts[0]}} {
		if len(c.r.notReady) == 0 {
			sec.printf("- %s: none (its first Ready condition was True)\n", c.name)
			continue
		}
		sec.printf("- %s: %s\n", c.name, mdEscape(strings.Join(c.r.notReady, "; ")))
	}
}

// mdEscape keeps text from the API from breaking Markdown.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "*", `\*`, "_", `\_`, "<", "&lt;").Replace(s)
}

// medianOf is the median of one figure of starts.
func medianOf(runs []nodeStart, f func(nodeStart) time.Duration) time.Duration {
	var ds []time.Duration
	for _, r := range runs {
		ds = append(ds, f(r))
	}
	return median(ds)
}

// phaseAt is the median time of a log line over starts, n/a unless every
// start logged it.
func phaseAt(runs []nodeStart, msg string) string {
	var ds []time.Duration
	for _, r := range runs {
		if d, ok := r.at[msg]; ok {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 || len(ds) < len(runs) {
		return "n/a"
	}
	return ms(median(ds))
}

// observedAt is the median of a polled figure, n/a unless every start has it.
func observedAt(runs []nodeStart, f func(nodeStart) time.Duration) string {
	var ds []time.Duration
	for _, r := range runs {
		if d := f(r); d > 0 {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 || len(ds) < len(runs) {
		return "n/a"
	}
	return ms(median(ds))
}

// podRun is one pod's way from create to Running and back to gone, seen
// through a watch opened before the create. All durations are from just
// before the create call, except deleted.
type podRun struct {
	created time.Duration // the create call answered
	bound   time.Duration // spec.nodeName set: scheduled
	started time.Duration // status.startTime set: the kubelet took the pod
	running time.Duration // phase Running: the container runs
	deleted time.Duration // delete call to the object gone
}

// benchPod is a pod of the pre-imported test image for node; a node
// selector pins it, so the scheduler places it like any pod.
func benchPod(name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"bench": "pod-start"}},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{hostnameLabel: node},
			Containers: []corev1.Container{{
				Name: "app", Image: benchImageRef, ImagePullPolicy: corev1.PullNever, Args: []string{"serve", ":8080"},
			}},
		},
	}
}

// runPod creates a pod on node, waits until it runs, deletes it and waits
// until it is gone.
func runPod(t *testing.T, cs kubernetes.Interface, name, node string) podRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), podRunningWait)
	defer cancel()
	pods := cs.CoreV1().Pods(podNamespace)
	w, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
	if err != nil {
		t.Fatalf("watch pod %s: %v", name, err)
	}
	defer w.Stop()
	var r podRun
	var last *corev1.Pod
	t0 := time.Now()
	if _, err := pods.Create(ctx, benchPod(name, node), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
	r.created = time.Since(t0)
	for r.running == 0 {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("the watch of pod %s ended before it ran", name)
			}
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				t.Fatalf("watch of pod %s: %s %v", name, ev.Type, ev.Object)
			}
			now := time.Since(t0)
			last = p
			if r.bound == 0 && p.Spec.NodeName != "" {
				r.bound = now
			}
			if r.started == 0 && p.Status.StartTime != nil {
				r.started = now
			}
			switch p.Status.Phase {
			case corev1.PodRunning:
				r.running = now
			case corev1.PodFailed, corev1.PodSucceeded:
				t.Fatalf("pod %s on %s ended: %s %s", name, node, p.Status.Phase, p.Status.Message)
			}
		case <-ctx.Done():
			t.Fatalf("pod %s on %s not Running within %v; last seen: %+v", name, node, podRunningWait, podState(last))
		}
	}
	t1 := time.Now()
	if err := pods.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete pod %s: %v", name, err)
	}
	for r.deleted == 0 {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("the watch of pod %s ended before it was gone", name)
			}
			if ev.Type == watch.Deleted {
				r.deleted = time.Since(t1)
			}
		case <-ctx.Done():
			t.Fatalf("pod %s on %s not gone within %v of its create", name, node, podRunningWait)
		}
	}
	return r
}

func podState(p *corev1.Pod) any {
	if p == nil {
		return "nothing"
	}
	return struct {
		Node       string
		Phase      corev1.PodPhase
		Conditions []corev1.PodCondition
		Containers []corev1.ContainerStatus
	}{p.Spec.NodeName, p.Status.Phase, p.Status.Conditions, p.Status.ContainerStatuses}
}

// watchClient is a clientset without client-go's overall request timeout,
// which would also end watches; each call has a context deadline instead.
func watchClient(t *testing.T, s *cluster.Server) kubernetes.Interface {
	t.Helper()
	cfg := restConfig(t, s)
	cfg.Timeout = 0
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestPodStart times pod create to Running for the pre-imported test image,
// pinned to the agent's node and to the server's, podsPerNode each, one pod
// at a time: create, wait Running, delete, wait gone.
func TestPodStart(t *testing.T) {
	sec := newSection("nodes-pods", "Nodes: pod create to Running (pre-imported image)")
	defer sec.write(t)
	n := harness.NewNetwork(t)
	agentBin := binaryCopy(t)
	s := nodeServer(t, n.AddHost(t, serverNodeName))
	s.Start()
	s.WaitReady()
	cs := watchClient(t, s)
	a := nodeAgent(t, agentBin, n.AddHost(t, agentNodeName), s)
	a.Start()
	for _, node := range []string{s.Name, a.Name} {
		p := s.Proc
		if node == a.Name {
			p = a.Proc
		}
		// Any Ready posted since the start counts: both are fresh.
		watchNodeStart(t, cs, node, p, time.Now(), time.Time{}, true)
	}
	// Pods need their namespace's default ServiceAccount and the root CA
	// ConfigMap their token volume mounts.
	harness.WaitFor(t, time.Minute, "the default ServiceAccount and kube-root-ca.crt", func() (bool, error) {
		if _, err := cs.CoreV1().ServiceAccounts(podNamespace).Get(t.Context(), "default", metav1.GetOptions{}); err != nil {
			return false, err
		}
		_, err := cs.CoreV1().ConfigMaps(podNamespace).Get(t.Context(), "kube-root-ca.crt", metav1.GetOptions{})
		return err == nil, err
	})
	time.Sleep(settleBefore)

	nodes := []string{a.Name, s.Name}
	warm := map[string]podRun{}
	for _, node := range nodes {
		warm[node] = runPod(t, cs, "warm-"+node, node)
		t.Logf("warm-up pod on %s: Running after %v", node, warm[node].running)
	}
	load := report.LoadAvg()
	runs := map[string][]podRun{}
	for i := range podsPerNode {
		order := slices.Clone(nodes)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, node := range order {
			r := runPod(t, cs, fmt.Sprintf("pod-%s-%02d", node, i+1), node)
			t.Logf("pod %d on %s: bound %v, kubelet %v, Running %v, gone %v after delete", i+1, node, r.bound, r.started, r.running, r.deleted)
			runs[node] = append(runs[node], r)
		}
	}
	load += " / " + report.LoadAvg()
	after := []nodeMem{readNodeMem(t, s.PID()), readNodeMem(t, a.PID())}

	sec.printf("\nThe setup of the Node Ready benchmark: a server (SQLite, with its agent) and `k3ha agent` on\n")
	sec.printf("another host, both Ready, the e2e test image imported from each one's air-gap images dir. Each pod\n")
	sec.printf("runs that image (`imagePullPolicy: Never`, the image's HTTP server) with a `%s` node\n", hostnameLabel)
	sec.printf("selector, so the scheduler places it; the default ServiceAccount token is mounted. One pod at a\n")
	sec.printf("time: a watch of the pod is opened, the clock starts, the pod is created, Running is the first watch\n")
	sec.printf("event with phase Running; then it is deleted (default grace period; the app exits on SIGTERM) and\n")
	sec.printf("the next starts once the watch saw it gone. A warm-up pod per node comes first (not counted);\n")
	sec.printf("then %d pods per node, the nodes alternating (agent first in odd rounds). \"kubelet\" is the first\n", podsPerNode)
	sec.printf("event with status.startTime (the kubelet took the pod); p90 is the nearest rank.\n")
	var rows [][]string
	med := map[string]time.Duration{}
	p90 := map[string]time.Duration{}
	for _, node := range nodes {
		var running, bound, started, deleted []time.Duration
		for _, r := range runs[node] {
			running, bound, started, deleted = append(running, r.running), append(bound, r.bound), append(started, r.started), append(deleted, r.deleted)
		}
		sorted := sortedCopy(running)
		med[node], p90[node] = median(running), percentile(sorted, 90)
		label := "agent (`k3ha agent`)"
		if node == s.Name {
			label = "server (with its agent)"
		}
		rows = append(rows, []string{label, fmt.Sprint(len(running)), "**" + secs(med[node]) + "**", secs(p90[node]),
			secs(sorted[0]), secs(sorted[len(sorted)-1]), ms(median(bound)), ms(median(started)), secs(warm[node].running),
			secs(median(deleted)), secsList(running)})
	}
	sec.table([]string{"node", "pods", "median create to Running", "p90", "min", "max", "median to bound", "median to kubelet",
		"warm-up pod", "median delete to gone", "samples (s)"}, rows)
	sec.printf("- agent/server ratio: median **%.2f**, p90 %.2f\n", med[a.Name].Seconds()/med[s.Name].Seconds(), p90[a.Name].Seconds()/p90[s.Name].Seconds())
	sec.printf("- goal: pod Running under %v; median on the agent **%.2f×** the goal, on the server **%.2f×**; p90 %.2f× and %.2f×\n",
		podRunningGoal, med[a.Name].Seconds()/podRunningGoal.Seconds(), med[s.Name].Seconds()/podRunningGoal.Seconds(),
		p90[a.Name].Seconds()/podRunningGoal.Seconds(), p90[s.Name].Seconds()/podRunningGoal.Seconds())
	sec.printf("- load average before/after the %d counted pods: %s\n", 2*podsPerNode, load)
	sec.printf("- VmRSS after the pods (%d pods ran on each node, all deleted): server %s + its containerd %s; agent %s + its containerd %s\n",
		podsPerNode+1, mb(after[0].k3ha.RSS), mb(after[0].ctrd.RSS), mb(after[1].k3ha.RSS), mb(after[1].ctrd.RSS))
}

// nodeMem is the memory of a node's k3ha process and of its containerd
// child (`k3ha containerd`), and what the two have used of the CPU.
type nodeMem struct {
	k3ha, ctrd       memInfo
	k3haPSS, ctrdPSS int64
	cpu              time.Duration
}

// readNodeMem reads the k3ha process pid and its containerd child.
func readNodeMem(t *testing.T, pid int) nodeMem {
	t.Helper()
	child, err := containerdChild(pid)
	if err != nil {
		t.Fatal(err)
	}
	var m nodeMem
	for _, p := range []struct {
		pid int
		mem *memInfo
		pss *int64
	}{{pid, &m.k3ha, &m.k3haPSS}, {child, &m.ctrd, &m.ctrdPSS}} {
		if *p.mem, err = readMem(p.pid); err != nil {
			t.Fatal(err)
		}
		if *p.pss, err = readPSS(p.pid); err != nil {
			t.Fatal(err)
		}
		cpu, err := cpuTime(p.pid)
		if err != nil {
			t.Fatal(err)
		}
		m.cpu += cpu
	}
	return m
}

// containerdChild finds the `k3ha containerd` child of pid.
func containerdChild(pid int) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The fields after the command name: state, then the parent's PID.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(pid) {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if args := strings.Split(string(cmdline), "\x00"); len(args) > 1 && args[1] == "containerd" {
			return child, nil
		}
	}
	return 0, fmt.Errorf("no containerd child of process %d", pid)
}

// readPSS is a process's proportional set size: its private pages plus its
// share of each page it maps together with other processes.
func readPSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("Pss in /proc/%d/smaps_rollup: %w", pid, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no Pss in /proc/%d/smaps_rollup", pid)
}

// singleRSS is the idle VmRSS line of the single-server memory benchmark
// in RESULTS.md, with its date, or "" when that section has not run.
func singleRSS() string {
	data, err := os.ReadFile(resultsFile)
	if err != nil {
		return ""
	}
	text := string(data)
	i := strings.Index(text, "<!-- "+singleRSSMarker+":start -->")
	j := strings.Index(text, "<!-- "+singleRSSMarker+":end -->")
	if i < 0 || j < i {
		return ""
	}
	var date, idle string
	for _, line := range strings.Split(text[i:j], "\n") {
		if v, ok := strings.CutPrefix(line, "- date: "); ok {
			date, _, _ = strings.Cut(v, " (")
		}
		if strings.HasPrefix(line, "| after ") {
			if f := strings.Split(line, "|"); len(f) > 3 {
				idle = fmt.Sprintf("%s %s (RssAnon %s)", strings.TrimSpace(f[1]), strings.Trim(strings.TrimSpace(f[2]), "*"), strings.TrimSpace(f[3]))
			}
		}
	}
	if idle == "" {
		return ""
	}
	return idle + ", measured " + date
}

// TestNodeRSS reads the memory of a server with its agent and of a
// standalone agent, each with its containerd child, right after its Node is
// Ready and after idling; a server without agent is measured the same way
// first, on the same binary.
func TestNodeRSS(t *testing.T) {
	sec := newSection("nodes-rss", "Nodes: memory of a server with its agent and of an agent alone")
	defer sec.write(t)
	n := harness.NewNetwork(t)
	agentBin := binaryCopy(t)

	// The comparison: the single-server benchmark's server, stopped before the others start.
	lone := cluster.NewServer(t, k3haBin, n.AddHost(t, "nb-noagent"), "--disable-agent")
	lr := timedStart(t, lone)
	time.Sleep(idleForRSS)
	loneIdle, err := readMem(lone.PID())
	if err != nil {
		t.Fatal(err)
	}
	lonePSS, err := readPSS(lone.PID())
	if err != nil {
		t.Fatal(err)
	}
	lone.Stop(stopTimeout)

	s := nodeServer(t, n.AddHost(t, serverNodeName))
	api := &apiClient{s: s}
	srv := startNode(t, api, s, true)
	time.Sleep(settleBefore)
	a := nodeAgent(t, agentBin, n.AddHost(t, agentNodeName), s)
	ag := startNode(t, api, a, true)
	time.Sleep(idleForRSS)
	srvIdle, agIdle := readNodeMem(t, s.PID()), readNodeMem(t, a.PID())

	sec.printf("\nFrom /proc/<pid>/status and smaps_rollup. The server (SQLite, fresh data dir) runs its agent in\n")
	sec.printf("its own process (kubelet, kube-proxy, load balancer, pod network) and containerd as a child process\n")
	sec.printf("(`k3ha containerd`, the same binary); so does `k3ha agent`, on another host and from its own copy\n")
	sec.printf("of the binary. Both have the e2e test image imported; no pods run. \"at Ready\" is right after the\n")
	sec.printf("process's Node became Ready; \"idle\" is %v after the agent's Ready (the server has then run %v\n", idleForRSS, settleBefore)
	sec.printf("longer). RssFile is mostly the mapped binary, which k3ha and its containerd map from the same file:\n")
	sec.printf("their VmRSS sum counts those pages twice, their PSS sum (each shared page split between the\n")
	sec.printf("processes mapping it) counts them once, and is what the pair costs on a machine of its own.\n")
	sec.printf("\"in 2 MB maps\" is the part of RssFile mapped in 2 MB pieces (FilePmdMapped, large page-cache folios).\n")
	row := func(name string, m memInfo, pss int64) []string {
		return []string{name, "**" + mb(m.RSS) + "**", mb(m.Anon), mb(m.File), mb(m.FilePmd), mb(pss), mb(m.HWM)}
	}
	sumRow := func(name string, m nodeMem) []string {
		return []string{name, "**" + mb(m.k3ha.RSS+m.ctrd.RSS) + "**", mb(m.k3ha.Anon + m.ctrd.Anon), mb(m.k3ha.File + m.ctrd.File),
			mb(m.k3ha.FilePmd + m.ctrd.FilePmd), "**" + mb(m.k3haPSS+m.ctrdPSS) + "**", ""}
	}
	var rows [][]string
	for _, c := range []struct {
		what, when string
		m          nodeMem
	}{
		{"server", fmt.Sprintf("at Ready (%s)", secs(srv.ready)), srv.mem},
		{"server", "idle", srvIdle},
		{"agent", fmt.Sprintf("at Ready (%s)", secs(ag.ready)), ag.mem},
		{"agent", "idle", agIdle},
	} {
		rows = append(rows,
			row(fmt.Sprintf("%s (k3ha), %s", c.what, c.when), c.m.k3ha, c.m.k3haPSS),
			row(fmt.Sprintf("its containerd, %s", c.when), c.m.ctrd, c.m.ctrdPSS),
			sumRow(fmt.Sprintf("%s + containerd, %s", c.what, c.when), c.m))
	}
	rows = append(rows, row(fmt.Sprintf("server `--disable-agent`, %v idle", idleForRSS), loneIdle, lonePSS))
	sec.table([]string{"process", "VmRSS", "RssAnon", "RssFile", "in 2 MB maps", "PSS", "VmHWM"}, rows)
	agentSum := agIdle.k3ha.RSS + agIdle.ctrd.RSS
	agentPSS := agIdle.k3haPSS + agIdle.ctrdPSS
	sec.printf("- goal: agent under %s; idle, the agent process alone is **%.2f×** the goal (RssAnon %.2f×), with its\n",
		mb(agentRSSGoal), float64(agIdle.k3ha.RSS)/agentRSSGoal, float64(agIdle.k3ha.Anon)/agentRSSGoal)
	sec.printf("  containerd %.2f× by VmRSS sum, **%.2f×** by PSS sum\n", float64(agentSum)/agentRSSGoal, float64(agentPSS)/agentRSSGoal)
	sec.printf("- what the agent adds to a server, idle: k3ha process %s − %s (`--disable-agent`, ready after %s) = **%s**\n",
		mb(srvIdle.k3ha.RSS), mb(loneIdle.RSS), secs(lr.ready), mb(srvIdle.k3ha.RSS-loneIdle.RSS))
	sec.printf("  (RssAnon %s), plus its containerd (%s VmRSS); PSS of server and containerd %s vs %s\n",
		mb(srvIdle.k3ha.Anon-loneIdle.Anon), mb(srvIdle.ctrd.RSS), mb(srvIdle.k3haPSS+srvIdle.ctrdPSS), mb(lonePSS))
	if line := singleRSS(); line != "" {
		sec.printf("- the single-server benchmark's `--disable-agent` server (section single-rss): %s\n", line)
	}
	sec.printf("- CPU (user+system) until Ready: server with its agent and containerd %s, agent and its containerd %s\n",
		secs(srv.cpu), secs(ag.cpu))
	a.Stop(stopTimeout)
	s.Stop(stopTimeout)
}
