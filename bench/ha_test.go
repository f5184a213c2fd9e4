//go:build bench

package bench

// The HA benchmarks: servers on embedded etcd, each on a host (network
// namespace) of its own, measured from outside like the single server.
// TestHAJoin forms three-server clusters from scratch (first server, then two
// joins) and reads each server's memory; TestHALeaderKill kills the etcd
// leader's server and measures how long writes through another server fail;
// TestHAConfigMapCreates runs the single server's ConfigMap load on SQLite, on
// one etcd member and on three, and raw etcd puts on the etcd clusters.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"

	"github.com/k3ha/k3ha/test/report"
)

const (
	haToken    = "bench-ha-secret"
	haRounds   = 3 // clusters formed from scratch by TestHAJoin
	killRounds = 3 // leader kills (and restarts) in TestHALeaderKill

	writeEvery    = 200 * time.Millisecond // a new write after a kill, each on its own
	statusEvery   = 20 * time.Millisecond  // etcd Status polls while a new leader is elected
	outageTimeout = time.Minute

	etcdClientPort = "2379"

	// A join's etcd start beyond this has waited for a publish retry.
	slowEtcdStart = 5 * time.Second

	// The goals of the HA issue, for this machine.
	joinGoal   = 10 * time.Second
	outageGoal = 3 * time.Second
	haRSSGoal  = 400e6 // bytes of VmRSS, per server
)

// haPhases are the log lines of an etcd server's start, in order. The first
// server logs no join lines.
var haPhases = []string{
	"join checks passed; bootstrap data received",
	"certificates ready",
	"starting etcd",
	"etcd join: added as learner",
	"etcd join: restarting etcd to publish again",
	"etcd ready",
	"etcd join: promoted to voting member",
	"datastore ready",
	"kube-apiserver ready",
	"k3ha is ready",
}

// haServer prepares a server on embedded etcd on h: it founds the cluster
// with --cluster-init when join is nil, else joins through join's port.
func haServer(t *testing.T, h *harness.Host, join *cluster.Server) *cluster.Server {
	t.Helper()
	args := []string{"--disable-agent"}
	if join == nil {
		args = append(args, "--cluster-init")
	} else {
		args = append(args, "--server", join.URL())
	}
	s := cluster.NewServer(t, k3haBin, h, args...)
	s.Env = []string{"K3HA_TOKEN=" + haToken}
	return s
}

// startCluster starts one server per host, each once the previous one is
// ready, the later ones joining the first, and waits for all to vote.
func startCluster(t *testing.T, hosts []*harness.Host) []*cluster.Server {
	t.Helper()
	var servers []*cluster.Server
	for _, h := range hosts {
		var join *cluster.Server
		if len(servers) > 0 {
			join = servers[0]
		}
		s := haServer(t, h, join)
		s.Start()
		s.WaitReady()
		servers = append(servers, s)
	}
	waitVoting(t, servers)
	return servers
}

// waitVoting waits until the members are exactly the servers, none a learner.
func waitVoting(t *testing.T, servers []*cluster.Server) {
	t.Helper()
	harness.WaitFor(t, time.Minute, fmt.Sprintf("%d voting etcd members", len(servers)), func() (bool, error) {
		ms, err := servers[0].Members()
		if err != nil {
			return false, err
		}
		voting := 0
		for _, m := range ms {
			if !m.IsLearner {
				voting++
			}
		}
		return len(ms) == len(servers) && voting == len(servers), fmt.Errorf("members: %+v", ms)
	})
}

// killServers ends servers whose shutdown is not measured; a cluster that
// loses quorum on the way down would only make SIGTERM slower.
func killServers(t *testing.T, servers []*cluster.Server) {
	t.Helper()
	for _, s := range servers {
		if err := s.Proc.Kill(); err != nil {
			t.Fatalf("kill %s: %v", s.Name, err)
		}
	}
}

// logTimes returns, for each message, when its first line in a start's log
// was written, from t0.
func logTimes(log string, t0 time.Time, msgs []string) (map[string]time.Duration, error) {
	at := map[string]time.Duration{}
	for _, line := range strings.Split(log, "\n") {
		for _, m := range msgs {
			if _, seen := at[m]; seen || !strings.Contains(line, `msg="`+m+`"`) {
				continue
			}
			ts, err := time.Parse(time.RFC3339Nano, logField(line, "time"))
			if err != nil {
				return nil, fmt.Errorf("log line %q: %w", line, err)
			}
			at[m] = ts.Sub(t0)
		}
	}
	if _, ok := at["k3ha is ready"]; !ok {
		return nil, errors.New("no 'k3ha is ready' line")
	}
	return at, nil
}

// medianAt is the median time of one log line over starts, "n/a" unless
// every start logged it.
func medianAt(starts []map[string]time.Duration, msg string) string {
	var ds []time.Duration
	for _, at := range starts {
		if d, ok := at[msg]; ok {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 || len(ds) < len(starts) {
		return "n/a"
	}
	return ms(median(ds))
}

func startSummary(label string, runs []startRun) []string {
	var ready, took []time.Duration
	var rss []int64
	for _, r := range runs {
		ready, took, rss = append(ready, r.ready), append(took, r.took), append(rss, r.mem.RSS)
	}
	return []string{label, fmt.Sprint(len(runs)), "**" + secs(median(ready)) + "**", secs(slices.Min(ready)),
		secs(slices.Max(ready)), secs(median(took)), mb(median(rss)), secsList(ready)}
}

func medianReady(runs []startRun) time.Duration {
	var ds []time.Duration
	for _, r := range runs {
		ds = append(ds, r.ready)
	}
	return median(ds)
}

func memRow(name string, m memInfo) []string {
	return []string{name, "**" + mb(m.RSS) + "**", mb(m.Anon), mb(m.File), mb(m.HWM)}
}

// TestHAJoin forms a three-server cluster from scratch haRounds times: the
// first server with --cluster-init, then two joins, each started once the
// previous server is ready and has settled. A fresh SQLite server per round
// gives the single-server figure of the same moment. The last cluster idles
// and each server's memory is read.
func TestHAJoin(t *testing.T) {
	sec := newSection("ha-join", "HA: first server, joins and memory per server")
	defer sec.write(t)
	n := harness.NewNetwork(t)
	sq := n.AddHost(t, "sqlite")
	hosts := []*harness.Host{n.AddHost(t, "s1"), n.AddHost(t, "s2"), n.AddHost(t, "s3")}

	// Warm-up (page cache of the binary), not counted.
	w := cluster.NewServer(t, k3haBin, sq, "--disable-agent")
	timedStart(t, w)
	w.Stop(stopTimeout)

	var sqlite []startRun
	starts := make([][]startRun, len(hosts))
	phaseAt := make([][]map[string]time.Duration, len(hosts))
	var roundLoad []string
	var last []*cluster.Server
	for round := range haRounds {
		before := report.LoadAvg()
		s := cluster.NewServer(t, k3haBin, sq, "--disable-agent")
		r := timedStart(t, s)
		s.Stop(stopTimeout)
		sqlite = append(sqlite, r)
		t.Logf("round %d: SQLite server ready after %v", round+1, r.ready)

		var servers []*cluster.Server
		for i, h := range hosts {
			var join *cluster.Server
			if i > 0 {
				join = servers[0]
			}
			s := haServer(t, h, join)
			t0 := time.Now()
			r := timedStart(t, s)
			at, err := logTimes(s.Proc.Log(), t0, haPhases)
			if err != nil {
				t.Fatalf("%s: %v", s.Name, err)
			}
			starts[i], phaseAt[i] = append(starts[i], r), append(phaseAt[i], at)
			servers = append(servers, s)
			t.Logf("round %d: %s ready after %v (took=%v), RSS %s", round+1, s.Name, r.ready, r.took, mb(r.mem.RSS))
			time.Sleep(settleBefore)
		}
		waitVoting(t, servers)
		roundLoad = append(roundLoad, before+" / "+report.LoadAvg())
		if round < haRounds-1 {
			killServers(t, servers)
		} else {
			last = servers
		}
	}
	// settleBefore has passed since the last join; idle as the single server does.
	time.Sleep(idleForRSS)
	idle := make([]memInfo, len(last))
	for i, s := range last {
		var err error
		if idle[i], err = readMem(s.PID()); err != nil {
			t.Fatal(err)
		}
	}
	killServers(t, last)

	sec.printf("\nEach round forms a new cluster on fresh data dirs: s1 starts with `--cluster-init`, s2 and s3 with\n")
	sec.printf("`--server https://<s1>:6443` and the token in `K3HA_TOKEN`; all `--disable-agent`, default etcd settings,\n")
	sec.printf("each server on its own host (network namespace) of one bridge, all on the same two cores. A server\n")
	sec.printf("starts %v after the previous one became ready. Ready is process start to `/v1-k3ha/readyz` = ok,\n", settleBefore)
	sec.printf("polled every %v, as for the single server; for a joining server that includes the join checks,\n", pollEvery)
	sec.printf("joining etcd as a learner, its promotion and the apiserver's start. Each round starts with a fresh\n")
	sec.printf("SQLite server (stopped before s1 starts) for comparison; a warm-up start (not counted) comes first.\n")
	sec.table([]string{"series", "runs", "median ready", "min", "max", "median took=", "median RSS at ready", "samples (s)"},
		[][]string{
			startSummary("SQLite server, fresh", sqlite),
			startSummary("s1: `--cluster-init`, fresh", starts[0]),
			startSummary("s2: joins", starts[1]),
			startSummary("s3: joins", starts[2]),
		})
	first, sqliteReady := medianReady(starts[0]), medianReady(sqlite)
	var joins []time.Duration
	for _, r := range append(slices.Clone(starts[1]), starts[2]...) {
		joins = append(joins, r.ready)
	}
	sec.printf("- first etcd server / SQLite server (medians): **%.2f**\n", first.Seconds()/sqliteReady.Seconds())
	sec.printf("- goal: joins under %v; median join (s2 and s3, %d joins) %s = **%.2f×** the goal, slowest %s (%.2f×)\n",
		joinGoal, len(joins), secs(median(joins)), median(joins).Seconds()/joinGoal.Seconds(),
		secs(slices.Max(joins)), slices.Max(joins).Seconds()/joinGoal.Seconds())
	sec.printf("- load average before/after each round: %s\n", strings.Join(roundLoad, "; "))

	sec.printf("\nWhere the time goes: median time of each log line after process start (n/a: not logged by that server).\n")
	var rows [][]string
	for _, p := range haPhases {
		rows = append(rows, []string{p, medianAt(phaseAt[0], p), medianAt(phaseAt[1], p), medianAt(phaseAt[2], p)})
	}
	sec.table([]string{"log line", "s1 (`--cluster-init`)", "s2 (join)", "s3 (join)"}, rows)
	var etcdStarts []string
	slowJoins, restarts := 0, 0
	for i := 1; i < len(hosts); i++ {
		var ds []time.Duration
		for _, at := range phaseAt[i] {
			if _, ok := at["etcd join: restarting etcd to publish again"]; ok {
				restarts++
			}
			d := at["etcd ready"] - at["starting etcd"]
			ds = append(ds, d)
			if d > slowEtcdStart {
				slowJoins++
			}
		}
		etcdStarts = append(etcdStarts, hosts[i].Name+": "+secsList(ds))
	}
	sec.printf("- `starting etcd` to `etcd ready` of each join, by round (s): %s\n", strings.Join(etcdStarts, "; "))
	sec.printf("- %d of %d joins restarted etcd once because the member's first publish arrived inside the snapshot\n", restarts, len(joins))
	sec.printf("  it received, so no local apply answered it; etcd itself would retry only after its request timeout\n")
	sec.printf("  (5 s + 2 × election timeout = 7 s); before k3ha restarted such a member, 3 of 6 joins here waited\n")
	sec.printf("  those 7 s (run at commit 73c9a7f9: joins took 9.8, 2.9, 10.0 s for s2 and 9.8, 3.0, 2.9 s for s3).\n")
	if slowJoins > 0 {
		sec.printf("- %d of %d joins spent over %v there. etcd's ReadyNotify waits until the new member has published\n", slowJoins, len(joins), slowEtcdStart)
		sec.printf("  itself through raft, and a publish that gets no answer is retried after etcd's request timeout,\n")
		sec.printf("  5 s + 2 × election timeout = 7 s; with `--debug` such a join logs `failed to publish local member\n")
		sec.printf("  to cluster through raft` (publish-timeout=7s) about 7 s after `starting etcd`, then publishes at once.\n")
	}

	sec.printf("\nMemory of the last round's servers (/proc/<pid>/status): at each one's own ready, and %v after\n", idleForRSS)
	sec.printf("the cluster was complete plus %v (VmHWM is the peak so far). RssFile is mostly the mapped binary;\n", settleBefore)
	sec.printf("the three processes map the same file, so here they share those pages (separate machines would not).\n")
	rows = nil
	var maxRSS, maxAnon int64
	for i, s := range last {
		rows = append(rows, memRow(s.Name+" at ready", starts[i][haRounds-1].mem))
	}
	for i, s := range last {
		rows = append(rows, memRow(s.Name+" idle", idle[i]))
		maxRSS, maxAnon = max(maxRSS, idle[i].RSS), max(maxAnon, idle[i].Anon)
	}
	sec.table([]string{"server", "VmRSS", "RssAnon", "RssFile", "VmHWM"}, rows)
	sec.printf("- goal: no server over %s; the largest idle VmRSS is %s = **%.2f×** the goal (largest RssAnon %.2f×)\n",
		mb(haRSSGoal), mb(maxRSS), float64(maxRSS)/haRSSGoal, float64(maxAnon)/haRSSGoal)
}

// memberStatus asks one member about itself over the client's existing
// connection (Maintenance.Status would dial a new one every call).
func memberStatus(ctx context.Context, c *clientv3.Client) (*clientv3.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	m := clientv3.NewMaintenanceFromMaintenanceClient(pb.NewMaintenanceClient(c.ActiveConnection()), c)
	return m.Status(ctx, "")
}

// leaderIndex returns which server's member leads, once all members agree.
func leaderIndex(t *testing.T, servers []*cluster.Server, clients []*clientv3.Client) int {
	t.Helper()
	leader := -1
	harness.WaitFor(t, time.Minute, "an etcd leader all members agree on", func() (bool, error) {
		leader = -1
		var leaders []uint64
		for i, c := range clients {
			st, err := memberStatus(t.Context(), c)
			if err != nil {
				return false, fmt.Errorf("status of %s: %w", servers[i].Name, err)
			}
			if st.Header.MemberId == st.Leader {
				leader = i
			}
			leaders = append(leaders, st.Leader)
		}
		agree := !slices.ContainsFunc(leaders, func(l uint64) bool { return l != leaders[0] })
		return agree && leader >= 0, fmt.Errorf("leaders seen: %x", leaders)
	})
	return leader
}

// election is when a surviving member first reported itself as the new leader.
type election struct {
	after time.Duration
	name  string
	err   error
}

// watchElection polls the survivors every statusEvery until one of them
// leads, timing it from since.
func watchElection(ctx context.Context, survivors []*cluster.Server, clients []*clientv3.Client, since time.Time) <-chan election {
	done := make(chan election, 1)
	go func() {
		tick := time.NewTicker(statusEvery)
		defer tick.Stop()
		for {
			for i, c := range clients {
				if st, err := memberStatus(ctx, c); err == nil && st.Leader == st.Header.MemberId {
					done <- election{after: time.Since(since), name: survivors[i].Name}
					return
				}
			}
			select {
			case <-ctx.Done():
				done <- election{err: fmt.Errorf("no new leader: %w", ctx.Err())}
				return
			case <-tick.C:
			}
		}
	}()
	return done
}

// outage is what the writes after a kill saw.
type outage struct {
	took time.Duration // kill to the answer of the first write that succeeded
	sent time.Duration // kill to when that write was sent
	name string        // the ConfigMap it created
	// The writes sent before it, which were in flight when it succeeded:
	// what a client that does not retry sees.
	earlier       int
	earlierFailed int
	earlierLast   time.Duration // kill to the last answer among them
	lastErr       string        // the last error any write got
}

// measureOutage starts a ConfigMap create through cs every writeEvery, each
// on its own, until one succeeds, then waits for the answers of those sent
// before it. A request in flight when the leader died waits for etcd's
// request timeout; a client that retries sees the next one, so none waits
// for another.
func measureOutage(t *testing.T, cs kubernetes.Interface, prefix string, since time.Time) outage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), outageTimeout)
	defer cancel()
	type answer struct {
		i          int
		sent, took time.Duration
		err        error
	}
	answers := make(chan answer, outageTimeout/writeEvery+1)
	tick := time.NewTicker(writeEvery)
	defer tick.Stop()
	var got []answer
	first := -1
	launched := 0
	for first < 0 {
		i := launched
		launched++
		go func() {
			sent := time.Since(since)
			_, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%03d", prefix, i)}}, metav1.CreateOptions{})
			answers <- answer{i: i, sent: sent, took: time.Since(since), err: err}
		}()
	wait:
		for {
			select {
			case a := <-answers:
				got = append(got, a)
				if a.err == nil && first < 0 {
					first = len(got) - 1
				}
			case <-ctx.Done():
				t.Fatalf("no write succeeded within %v of the kill", outageTimeout)
			case <-tick.C:
				break wait
			}
		}
	}
	// Every write has a client-side timeout, so all are answered in time.
	for len(got) < launched {
		select {
		case a := <-answers:
			got = append(got, a)
		case <-ctx.Done():
			t.Fatalf("%d of %d writes after the kill not answered within %v", launched-len(got), launched, outageTimeout)
		}
	}
	f := got[first]
	o := outage{took: f.took, sent: f.sent, name: fmt.Sprintf("%s-%03d", prefix, f.i)}
	for _, a := range got {
		if a.err != nil {
			o.lastErr = a.err.Error()
		}
		if a.i < f.i {
			o.earlier++
			o.earlierLast = max(o.earlierLast, a.took)
			if a.err != nil {
				o.earlierFailed++
			}
		}
	}
	return o
}

// TestHALeaderKill kills the etcd leader's server (SIGKILL) killRounds
// times, each time measuring how long writes through another server fail and
// when a new leader is elected, then restarts the killed server.
func TestHALeaderKill(t *testing.T) {
	sec := newSection("ha-failover", "HA: write outage after SIGKILL of the etcd leader's server")
	defer sec.write(t)
	n := harness.NewNetwork(t)
	servers := startCluster(t, []*harness.Host{n.AddHost(t, "s1"), n.AddHost(t, "s2"), n.AddHost(t, "s3")})
	time.Sleep(settleBefore)
	tlsCfg := cluster.EtcdTLS(t, servers[0])
	clients := make([]*clientv3.Client, len(servers))
	for i, s := range servers {
		clients[i] = cluster.EtcdClient(t, tlsCfg, s)
	}

	type killRound struct {
		killed, writer, elected string
		election                time.Duration
		out                     outage
		restart                 startRun
		load                    string
	}
	var rounds []killRound
	peak := make([]memInfo, len(servers))
	for round := range killRounds {
		li := leaderIndex(t, servers, clients)
		leader := servers[li]
		var survivors []*cluster.Server
		var survivorClients []*clientv3.Client
		for i, s := range servers {
			if i != li {
				survivors, survivorClients = append(survivors, s), append(survivorClients, clients[i])
			}
		}
		writer := survivors[0]
		cs := writer.Client()
		// One write first: the connection is up and the cluster takes writes.
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		_, err := cs.CoreV1().ConfigMaps("default").Create(ctx,
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("before-kill-%d", round+1)}}, metav1.CreateOptions{})
		cancel()
		if err != nil {
			t.Fatalf("write through %s before the kill: %v", writer.Name, err)
		}

		kr := killRound{killed: leader.Name, writer: writer.Name}
		before := report.LoadAvg()
		t0 := time.Now()
		if err := leader.Proc.Kill(); err != nil {
			t.Fatal(err)
		}
		ectx, ecancel := context.WithTimeout(t.Context(), outageTimeout)
		elected := watchElection(ectx, survivors, survivorClients, t0)
		kr.out = measureOutage(t, cs, fmt.Sprintf("after-kill-%d", round+1), t0)
		e := <-elected
		ecancel()
		if e.err != nil {
			t.Fatal(e.err)
		}
		kr.election, kr.elected = e.after, e.name
		kr.load = before + " / " + report.LoadAvg()
		t.Logf("round %d: SIGKILL of %s; %s leads after %v; first write through %s answered after %v (sent at %v); %d earlier writes answered by %v, %d failed; last error: %s",
			round+1, leader.Name, e.name, e.after, writer.Name, kr.out.took, kr.out.sent, kr.out.earlier, kr.out.earlierLast, kr.out.earlierFailed, kr.out.lastErr)

		// The killed server comes back on its data and must serve that write.
		kr.restart = timedStart(t, leader)
		lcs := leader.Client()
		harness.WaitFor(t, time.Minute, leader.Name+" serves "+kr.out.name, func() (bool, error) {
			_, err := lcs.CoreV1().ConfigMaps("default").Get(t.Context(), kr.out.name, metav1.GetOptions{})
			return err == nil, err
		})
		t.Logf("round %d: %s ready again after %v", round+1, leader.Name, kr.restart.ready)
		rounds = append(rounds, kr)
		time.Sleep(settleBefore)
		for i, s := range servers {
			m, err := readMem(s.PID())
			if err != nil {
				t.Fatal(err)
			}
			if m.RSS > peak[i].RSS {
				peak[i] = m
			}
		}
	}
	waitVoting(t, servers)
	killServers(t, servers)

	sec.printf("\nThree servers (`--disable-agent`, default etcd settings: heartbeat 100 ms, election timeout 1000 ms,\n")
	sec.printf("pre-vote), each on its own host. Each round finds the etcd leader (etcd Status of every member), writes\n")
	sec.printf("once through another server (the writer, connection up), sends SIGKILL to the leader's k3ha process and\n")
	sec.printf("from that moment starts a ConfigMap create through the writer's API every %v, each on its own (one\n", writeEvery)
	sec.printf("stuck in a request that was in flight at the kill would measure etcd's request timeout, not what a\n")
	sec.printf("retrying client sees). The write outage is kill to the answer of the first create that succeeded;\n")
	sec.printf("its resolution is the %v between writes. \"New leader\" is kill to the first etcd Status (polled every\n", writeEvery)
	sec.printf("%v from the root namespace) in which a survivor reports itself leader. Then the killed server is\n", statusEvery)
	sec.printf("started again on its data (ready = process start to readyz ok) and must serve the first write; the\n")
	sec.printf("next round starts %v later. The writes sent before the first good one are waited for too (client\n", settleBefore)
	sec.printf("timeout 10 s): they show what a client that sends once and waits sees.\n")
	var rows [][]string
	var outs, elections, restarts []time.Duration
	lastErr := "(none)"
	for i, r := range rounds {
		rows = append(rows, []string{fmt.Sprint(i + 1), r.killed, r.writer, r.elected, secs(r.election),
			"**" + secs(r.out.took) + "**", secs(r.out.sent),
			fmt.Sprintf("%d / %s / %d", r.out.earlier, secs(r.out.earlierLast), r.out.earlierFailed),
			secs(r.restart.ready), r.load})
		if r.out.lastErr != "" {
			lastErr = r.out.lastErr
		}
		outs, elections, restarts = append(outs, r.out.took), append(elections, r.election), append(restarts, r.restart.ready)
	}
	sec.table([]string{"round", "killed", "writes through", "new leader", "new leader after", "write outage",
		"first good write sent at", "writes before it / answered by / failed", "killed server ready again", "load avg before/after"}, rows)
	summary := func(ds []time.Duration) string {
		return fmt.Sprintf("median **%s** (min %s, max %s)", secs(median(ds)), secs(slices.Min(ds)), secs(slices.Max(ds)))
	}
	sec.printf("- write outage: %s\n", summary(outs))
	sec.printf("- new leader after: %s; outage minus election (medians): %s\n", summary(elections), ms(median(outs)-median(elections)))
	sec.printf("- killed server ready again: %s\n", summary(restarts))
	sec.printf("- goal: write outage under %v; the median is **%.2f×** the goal, the worst round %.2f×\n",
		outageGoal, median(outs).Seconds()/outageGoal.Seconds(), slices.Max(outs).Seconds()/outageGoal.Seconds())
	sec.printf("- the last error a write after a kill got: `%s`\n", strings.ReplaceAll(lastErr, "`", "'"))
	var memRows [][]string
	var maxRSS int64
	for i, s := range servers {
		memRows = append(memRows, memRow(s.Name, peak[i]))
		maxRSS = max(maxRSS, peak[i].RSS)
	}
	sec.printf("\nMemory: each server's highest VmRSS seen %v after each round (a restarted server is a new process).\n", settleBefore)
	sec.table([]string{"server", "VmRSS", "RssAnon", "RssFile", "VmHWM"}, memRows)
	sec.printf("- goal: no server over %s; the largest is %s = **%.2f×** the goal\n", mb(haRSSGoal), mb(maxRSS), float64(maxRSS)/haRSSGoal)
}

// workload is one kind of load: ConfigMap creates through the API or puts
// straight into etcd, by `clients` workers.
type workload struct {
	raw          bool
	clients, ops int
}

func (w workload) kind() string {
	if w.raw {
		return "etcd puts"
	}
	return "API creates"
}

// haSetup is a set of servers the loads run on.
type haSetup struct {
	name  string
	hosts []string
	etcd  bool
}

// setupResult holds a setup's figures.
type setupResult struct {
	setup     haSetup
	servers   []string
	results   [][]loadResult // per workload, per round
	valueSize int
	leader    string
	fsync     []string
	mem       []memInfo
	load      string
}

// TestHAConfigMapCreates runs the ConfigMap load of the single server on a
// SQLite server, a one-member etcd server and a three-server cluster (clients
// spread over the servers), and raw etcd puts of the same concurrency on the
// two etcd setups.
func TestHAConfigMapCreates(t *testing.T) {
	sec := newSection("ha-configmaps", "HA: ConfigMap creates on 3 servers vs 1, and raw etcd puts")
	defer sec.write(t)
	n := harness.NewNetwork(t)
	setups := []haSetup{
		{"1 server, SQLite", []string{"q1"}, false},
		{"1 server, etcd", []string{"e1"}, true},
		{"3 servers, etcd", []string{"s1", "s2", "s3"}, true},
	}
	workloads := []workload{{false, 1, 500}, {false, 16, 2000}, {true, 1, 500}, {true, 16, 2000}}
	var results []setupResult
	for _, su := range setups {
		results = append(results, runSetup(t, n, su, workloads))
	}

	sec.printf("\nThe load of the single-server benchmark: client-go dynamic client (JSON), admin kubeconfig, QPS 1000 /\n")
	sec.printf("burst 2000, one connection per client, from the root namespace; each ConfigMap has one 100-byte value.\n")
	sec.printf("On three servers the clients are spread over them (client i to server (i+round) mod 3, so the one\n")
	sec.printf("client of the 1-client load visits each server once), each server's apiserver writing to its own etcd\n")
	sec.printf("member. Raw puts: clientv3 with the etcd client certificate from s1's data dir, to the members' client\n")
	sec.printf("URLs (https://<ip>:%s), spread the same way, one client and connection per worker; each puts a new key\n", etcdClientPort)
	sec.printf("with a value the size of a stored ConfigMap (read back from /registry/configmaps). An API create is one\n")
	sec.printf("etcd transaction (put if absent) plus the apiserver's work. The setups run one after the other on fresh\n")
	sec.printf("data dirs, `--disable-agent`; each gets a warm-up (200 creates and, on etcd, 200 puts, 16 clients, not\n")
	sec.printf("counted), then %d rounds of the loads, alternating; ops/s is the median round (range in brackets),\n", loadRounds)
	sec.printf("latencies are over all rounds. Server CPU is user+system summed over the setup's k3ha processes; all\n")
	sec.printf("servers and the clients share the same two cores, so three servers here cost three times the CPU of\n")
	sec.printf("one on the same cores, unlike three machines.\n")
	var rows [][]string
	perSec := map[string]float64{} // "<setup>/<kind>/<clients>"
	for _, r := range results {
		for i, w := range workloads {
			if r.results[i] == nil {
				continue
			}
			var rates []float64
			var lat []time.Duration
			var wall, srv time.Duration
			for _, lr := range r.results[i] {
				rates = append(rates, lr.perSec())
				lat = append(lat, lr.lat...)
				wall, srv = wall+lr.wall, srv+lr.serverCPU
			}
			slices.Sort(lat)
			med := median(rates)
			perSec[fmt.Sprintf("%s/%s/%d", r.setup.name, w.kind(), w.clients)] = med
			nops := time.Duration(len(lat))
			rows = append(rows, []string{r.setup.name, w.kind(), fmt.Sprint(w.clients), fmt.Sprintf("%d × %d", len(r.results[i]), w.ops),
				fmt.Sprintf("**%.0f** (%.0f–%.0f)", med, slices.Min(rates), slices.Max(rates)),
				ms(percentile(lat, 50)), ms(percentile(lat, 99)), ms(lat[len(lat)-1]),
				secs(srv * 1000 / nops), fmt.Sprintf("%.0f%%", 100*srv.Seconds()/wall.Seconds())})
		}
	}
	sec.table([]string{"setup", "load", "clients", "rounds × ops", "ops/s", "p50", "p99", "max", "server CPU per 1000", "server CPU use"}, rows)

	ratio := func(a, b string) string {
		x, y := perSec[a], perSec[b]
		if x == 0 || y == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f", x/y)
	}
	sq, e1, e3 := setups[0].name, setups[1].name, setups[2].name
	for _, c := range []int{16, 1} {
		api := fmt.Sprintf("/API creates/%d", c)
		raw := fmt.Sprintf("/etcd puts/%d", c)
		sec.printf("- %d client(s), API creates/s: 3 servers / 1 SQLite server **%s**, 3 servers / 1 etcd server **%s**, 1 etcd / 1 SQLite server %s\n",
			c, ratio(e3+api, sq+api), ratio(e3+api, e1+api), ratio(e1+api, sq+api))
		sec.printf("- %d client(s), API creates / raw etcd puts: on 3 servers **%s**, on 1 etcd server %s; raw puts 3 members / 1 member %s\n",
			c, ratio(e3+api, e3+raw), ratio(e1+api, e1+raw), ratio(e3+raw, e1+raw))
	}
	sec.printf("- server CPU use is of one core (200%% = both)\n")

	sec.printf("\nPer setup: load average before/after, etcd leader during the loads, each member's fsync p99 as the\n")
	sec.printf("server measured it at start (`k3ha_etcd_disk_fsync_p99_seconds`; data dirs under /tmp), and each\n")
	sec.printf("server's memory after the loads.\n")
	rows = nil
	var largest []string
	for _, r := range results {
		var memText []string
		var maxRSS int64
		for i, name := range r.servers {
			memText = append(memText, fmt.Sprintf("%s %s (anon %s)", name, mb(r.mem[i].RSS), mb(r.mem[i].Anon)))
			maxRSS = max(maxRSS, r.mem[i].RSS)
		}
		largest = append(largest, fmt.Sprintf("%s %s (%.2f×)", r.setup.name, mb(maxRSS), float64(maxRSS)/haRSSGoal))
		leader, fsync, size := "n/a", "n/a", "n/a"
		if r.setup.etcd {
			leader, fsync, size = r.leader, strings.Join(r.fsync, ", "), fmt.Sprintf("%d B", r.valueSize)
		}
		rows = append(rows, []string{r.setup.name, r.load, leader, fsync, size, strings.Join(memText, ", ")})
	}
	sec.table([]string{"setup", "load avg before/after", "etcd leader", "fsync p99", "put value size", "VmRSS after the loads"}, rows)
	sec.printf("- goal: no server over %s; the largest VmRSS after the loads: %s\n", mb(haRSSGoal), strings.Join(largest, ", "))
}

// runSetup starts a setup's servers, runs the warm-up and the rounds of the
// workloads (raw puts only on etcd), reads memory and kills the servers.
func runSetup(t *testing.T, n *harness.Network, su haSetup, workloads []workload) setupResult {
	t.Helper()
	res := setupResult{setup: su, results: make([][]loadResult, len(workloads)), load: report.LoadAvg()}
	var hosts []*harness.Host
	for _, h := range su.hosts {
		hosts = append(hosts, n.AddHost(t, h))
	}
	var servers []*cluster.Server
	if su.etcd {
		servers = startCluster(t, hosts)
	} else {
		s := cluster.NewServer(t, k3haBin, hosts[0], "--disable-agent")
		s.Start()
		s.WaitReady()
		servers = []*cluster.Server{s}
	}
	for _, s := range servers {
		res.servers = append(res.servers, s.Name)
	}
	// The controllers' start-up burst would otherwise share the CPU with the warm-up.
	time.Sleep(settleBefore)
	cfgs := make([]*rest.Config, len(servers))
	for i, s := range servers {
		cfgs[i] = restConfig(t, s)
	}
	apiLoad(t, targets(servers...), cfgs, "bench-warmup", 16, 200, 0)

	var tlsCfg *tls.Config
	var etcdClients []*clientv3.Client
	var value string
	if su.etcd {
		tlsCfg = cluster.EtcdTLS(t, servers[0])
		for _, s := range servers {
			etcdClients = append(etcdClients, cluster.EtcdClient(t, tlsCfg, s))
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		got, err := etcdClients[0].Get(ctx, "/registry/configmaps/bench-warmup/", clientv3.WithPrefix(), clientv3.WithLimit(1))
		cancel()
		if err != nil || len(got.Kvs) == 0 {
			t.Fatalf("a stored ConfigMap under /registry/configmaps/bench-warmup/: %v (%d keys)", err, len(got.Kvs))
		}
		res.valueSize = len(got.Kvs[0].Value)
		value = strings.Repeat("x", res.valueSize)
		rawLoad(t, servers, tlsCfg, "/bench-raw/warmup/", value, 16, 200, 0)
		li := leaderIndex(t, servers, etcdClients)
		res.leader = servers[li].Name
		for _, s := range servers {
			res.fsync = append(res.fsync, s.Name+" "+fsyncP99(t, s))
		}
	}
	for round := range loadRounds {
		for i, w := range workloads {
			if w.raw && !su.etcd {
				continue
			}
			var r loadResult
			if w.raw {
				r = rawLoad(t, servers, tlsCfg, fmt.Sprintf("/bench-raw/c%d-r%d/", w.clients, round+1), value, w.clients, w.ops, round)
			} else {
				r = apiLoad(t, targets(servers...), cfgs, fmt.Sprintf("bench-c%d-r%d", w.clients, round+1), w.clients, w.ops, round)
			}
			res.results[i] = append(res.results[i], r)
		}
	}
	if su.etcd {
		li := leaderIndex(t, servers, etcdClients)
		if servers[li].Name != res.leader {
			res.leader += " then " + servers[li].Name
		}
	}
	for _, s := range servers {
		m, err := readMem(s.PID())
		if err != nil {
			t.Fatal(err)
		}
		res.mem = append(res.mem, m)
	}
	res.load += " / " + report.LoadAvg()
	killServers(t, servers)
	return res
}

// fsyncP99 is the server's k3ha_etcd_disk_fsync_p99_seconds from /metrics.
func fsyncP99(t *testing.T, s *cluster.Server) string {
	t.Helper()
	body, err := adminREST(t, s).Get().AbsPath("/metrics").DoRaw(t.Context())
	if err != nil {
		t.Fatalf("/metrics of %s: %v", s.Name, err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "k3ha_etcd_disk_fsync_p99_seconds "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("fsync gauge of %s: %q", s.Name, line)
			}
			return ms(time.Duration(f * float64(time.Second)))
		}
	}
	return "?"
}

// target is what a load runs against: a server's address and the
// processes whose CPU it costs (k3ha's one, or upstream's four).
type target struct {
	name, ip string
	pids     []int
}

// targets are k3ha servers as load targets.
func targets(servers ...*cluster.Server) []target {
	out := make([]target, 0, len(servers))
	for _, s := range servers {
		out = append(out, target{name: s.Name, ip: s.Host.IP.String(), pids: []int{s.PID()}})
	}
	return out
}

// runWorkers runs ops operations by `clients` workers that take the next
// number until all are done or one fails, timing each and summing the
// servers' CPU over the run.
func runWorkers(t *testing.T, servers []target, clients, ops int, op func(w int, i int64) error) loadResult {
	t.Helper()
	serverCPU := func() time.Duration {
		var sum time.Duration
		for _, s := range servers {
			sum += sumCPU(t, s)
		}
		return sum
	}
	var next atomic.Int64
	var failed atomic.Bool
	errs := make(chan error, clients)
	lat := make([][]time.Duration, clients)
	srv0, cli0 := serverCPU(), selfCPU()
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			for !failed.Load() {
				i := next.Add(1) - 1
				if i >= int64(ops) {
					return
				}
				b := time.Now()
				if err := op(w, i); err != nil {
					failed.Store(true)
					errs <- err
					return
				}
				lat[w] = append(lat[w], time.Since(b))
			}
		})
	}
	wg.Wait()
	r := loadResult{clients: clients, creates: ops, wall: time.Since(t0)}
	r.serverCPU, r.clientCPU = serverCPU()-srv0, selfCPU()-cli0
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	for _, l := range lat {
		r.lat = append(r.lat, l...)
	}
	slices.Sort(r.lat)
	if len(r.lat) != ops {
		t.Fatalf("%d operations answered, want %d", len(r.lat), ops)
	}
	return r
}

// connsTo counts established TCP connections from the root namespace to
// the servers' port, to show that each worker has a connection of its own.
func connsTo(servers []target, port string) int {
	total := 0
	for _, s := range servers {
		out, err := exec.Command("ss", "-Htn", "state", "established", "dst", net.JoinHostPort(s.ip, port)).Output()
		if err != nil {
			return -1
		}
		if text := strings.TrimSpace(string(out)); text != "" {
			total += len(strings.Split(text, "\n"))
		}
	}
	return total
}

// apiLoad creates `creates` ConfigMaps in a new namespace through the API,
// worker w talking to servers[(w+offset) mod len], each with a client and
// connection of its own; then lists them through the last server.
func apiLoad(t *testing.T, servers []target, cfgs []*rest.Config, ns string, clients, creates, offset int) loadResult {
	t.Helper()
	return apiLoadFrom(t, servers, cfgs, ns, clients, creates, offset, 0)
}

// apiLoadFrom is apiLoad into a namespace that already holds the ConfigMaps
// cm-00000 up to cm-<first-1> of earlier loads (none: it creates the namespace).
func apiLoadFrom(t *testing.T, servers []target, cfgs []*rest.Config, ns string, clients, creates, offset, first int) loadResult {
	t.Helper()
	ctx := t.Context()
	admin, err := dynamic.NewForConfig(cfgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if first == 0 {
		nsObj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}
		if _, err := admin.Resource(nsGVR).Create(ctx, nsObj, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create namespace %s: %v", ns, err)
		}
	}
	conns0 := connsTo(servers, "6443")
	workers := make([]dynamic.ResourceInterface, clients)
	for w := range workers {
		c := rest.CopyConfig(cfgs[(w+offset)%len(servers)])
		// A Dial of its own keeps client-go from sharing one connection.
		c.Dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		dc, err := dynamic.NewForConfig(c)
		if err != nil {
			t.Fatal(err)
		}
		workers[w] = dc.Resource(cmGVR).Namespace(ns)
		// Connects (TLS handshake) before the clock starts; the namespace
		// may take a moment to reach another server's cache.
		harness.WaitFor(t, 30*time.Second, "list configmaps in "+ns, func() (bool, error) {
			_, err := workers[w].List(ctx, metav1.ListOptions{Limit: 1})
			return err == nil, err
		})
	}
	conns := connsTo(servers, "6443") - conns0

	value := strings.Repeat("x", 100)
	r := runWorkers(t, servers, clients, creates, func(w int, i int64) error {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": fmt.Sprintf("cm-%05d", int64(first)+i), "labels": map[string]any{"bench": "load"}},
			"data":     map[string]any{"value": value},
		}}
		if _, err := workers[w].Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create configmap %s/cm-%05d: %w", ns, int64(first)+i, err)
		}
		return nil
	})
	r.conns = conns
	last, err := dynamic.NewForConfig(cfgs[len(cfgs)-1])
	if err != nil {
		t.Fatal(err)
	}
	list, err := last.Resource(cmGVR).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: "bench=load"})
	if err != nil {
		t.Fatalf("list configmaps in %s: %v", ns, err)
	}
	if len(list.Items) != first+creates {
		t.Fatalf("%s: %d ConfigMaps listed through %s, want %d", ns, len(list.Items), servers[len(servers)-1].name, first+creates)
	}
	t.Logf("%s on %d server(s): %d clients (%d new connections), %d creates in %v: %.0f/s, p50 %v, p99 %v; server CPU %v, client CPU %v",
		ns, len(servers), clients, conns, creates, r.wall.Round(time.Millisecond), r.perSec(),
		percentile(r.lat, 50), percentile(r.lat, 99), r.serverCPU, r.clientCPU)
	return r
}

// rawLoad puts `puts` new keys under prefix straight into etcd, worker w
// talking to the member of servers[(w+offset) mod len] with a client and
// connection of its own; then counts the keys.
func rawLoad(t *testing.T, servers []*cluster.Server, tlsCfg *tls.Config, prefix, value string, clients, puts, offset int) loadResult {
	t.Helper()
	ctx := t.Context()
	conns0 := connsTo(targets(servers...), etcdClientPort)
	workers := make([]*clientv3.Client, clients)
	for w := range workers {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   []string{cluster.EtcdURL(servers[(w+offset)%len(servers)])},
			TLS:         tlsCfg.Clone(),
			DialTimeout: 10 * time.Second,
			Logger:      zap.NewNop(),
		})
		if err != nil {
			t.Fatalf("etcd client: %v", err)
		}
		defer c.Close()
		// Connects before the clock starts.
		if _, err := c.Get(ctx, prefix+"connect"); err != nil {
			t.Fatalf("etcd get through %s: %v", c.Endpoints()[0], err)
		}
		workers[w] = c
	}
	conns := connsTo(targets(servers...), etcdClientPort) - conns0

	r := runWorkers(t, targets(servers...), clients, puts, func(w int, i int64) error {
		key := fmt.Sprintf("%scm-%05d", prefix, i)
		if _, err := workers[w].Put(ctx, key, value); err != nil {
			return fmt.Errorf("etcd put %s through %s: %w", key, workers[w].Endpoints()[0], err)
		}
		return nil
	})
	r.conns = conns
	got, err := workers[0].Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatalf("count keys under %s: %v", prefix, err)
	}
	if got.Count != int64(puts) {
		t.Fatalf("%d keys under %s, want %d", got.Count, prefix, puts)
	}
	t.Logf("%s on %d member(s): %d clients (%d new connections), %d puts of %d bytes in %v: %.0f/s, p50 %v, p99 %v; server CPU %v, client CPU %v",
		prefix, len(servers), clients, conns, puts, len(value), r.wall.Round(time.Millisecond), r.perSec(),
		percentile(r.lat, 50), percentile(r.lat, 99), r.serverCPU, r.clientCPU)
	return r
}
