//go:build bench

// Package bench measures a single k3ha server on real processes: start to
// ready, memory, API throughput and build times. The tests measure and do not
// assert timings (the machine is shared), but fail on real errors; their
// figures go into RESULTS.md. Run with `make bench`.
package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

var (
	k3haBin    string
	binVersion string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "k3ha-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if k3haBin, err = cluster.Binary(dir); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	out, err := exec.Command(k3haBin, "--version").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: k3ha --version:", err)
		return 1
	}
	binVersion, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
	return m.Run()
}

const (
	startRuns    = 5
	pollEvery    = 20 * time.Millisecond
	idleForRSS   = 30 * time.Second
	stopTimeout  = 30 * time.Second
	settleBefore = 5 * time.Second // lets post-start work finish before a restart
	loadRounds   = 3
)

// phases are k3ha's own start-up log lines, in order.
var phases = []string{"certificates ready", "datastore ready", "kube-apiserver ready", "controllers started", "k3ha is ready"}

// startRun is one measured start.
type startRun struct {
	ready time.Duration            // process start to /v1-k3ha/readyz = ok, seen from outside
	took  time.Duration            // the took= of "k3ha is ready" (measured inside server.Run)
	at    map[string]time.Duration // each phase line's time, from process start
	mem   memInfo                  // right after ready
}

// timedStart starts s and polls readyz every pollEvery; the clock starts just
// before the fork, so it includes exec, runtime and package initialisation.
func timedStart(t *testing.T, s *cluster.Server) startRun {
	t.Helper()
	t0 := time.Now()
	s.Start()
	for {
		if s.Proc.Exited() {
			t.Fatalf("%s exited while starting:\n%s", s.Name, cluster.Tail(s.Proc.Log(), 30))
		}
		if ok, _ := s.Ready(); ok {
			break
		}
		if time.Since(t0) > cluster.ReadyTimeout {
			t.Fatalf("%s not ready after %v:\n%s", s.Name, cluster.ReadyTimeout, cluster.Tail(s.Proc.Log(), 30))
		}
		time.Sleep(pollEvery)
	}
	r := startRun{ready: time.Since(t0)}
	var err error
	if r.mem, err = readMem(s.PID()); err != nil {
		t.Fatal(err)
	}
	// readyz flips just before the log line is written.
	harness.WaitFor(t, 5*time.Second, "the 'k3ha is ready' log line", func() (bool, error) {
		r.took, r.at, err = parseStartLog(s.Proc.Log(), t0)
		return err == nil, err
	})
	return r
}

// parseStartLog reads the phase lines of one start's log (slog text format).
func parseStartLog(log string, t0 time.Time) (time.Duration, map[string]time.Duration, error) {
	at := map[string]time.Duration{}
	var took time.Duration
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, p := range phases {
			if !strings.Contains(line, `msg="`+p+`"`) {
				continue
			}
			ts, err := time.Parse(time.RFC3339Nano, logField(line, "time"))
			if err != nil {
				return 0, nil, fmt.Errorf("log line %q: %w", line, err)
			}
			at[p] = ts.Sub(t0)
			if p == "k3ha is ready" {
				if took, err = time.ParseDuration(logField(line, "took")); err != nil {
					return 0, nil, fmt.Errorf("log line %q: %w", line, err)
				}
			}
		}
	}
	if _, ok := at["k3ha is ready"]; !ok {
		return 0, nil, fmt.Errorf("no 'k3ha is ready' line yet")
	}
	return took, at, nil
}

// logField returns the unquoted value of key=value in a slog text line.
func logField(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// TestStartToReady measures process start to /v1-k3ha/readyz = ok, fresh
// (new data dir) and restarted (SIGTERM, same data dir).
func TestStartToReady(t *testing.T) {
	sec := newSection("single-ready", "Single server: process start to /v1-k3ha/readyz ok")
	defer sec.write(t)
	n := harness.NewNetwork(t)
	h := n.AddHost(t, "bench")

	// The first start is a warm-up (page cache of the 200 MB binary) and
	// the server the restarts work on; it is not counted.
	rs := cluster.NewServer(t, k3haBin, h, "--disable-agent")
	warm := timedStart(t, rs)
	t.Logf("warm-up start: ready after %v", warm.ready)
	time.Sleep(settleBefore)

	var restarts, fresh []startRun
	var stops []time.Duration
	for i := range startRuns {
		stops = append(stops, rs.Stop(stopTimeout))
		r := timedStart(t, rs)
		t.Logf("restart %d: ready after %v (took=%v), RSS %s", i+1, r.ready, r.took, mb(r.mem.RSS))
		restarts = append(restarts, r)
		time.Sleep(settleBefore)
	}
	stops = append(stops, rs.Stop(stopTimeout))

	for i := range startRuns {
		s := cluster.NewServer(t, k3haBin, h, "--disable-agent")
		r := timedStart(t, s)
		t.Logf("fresh %d: ready after %v (took=%v), RSS %s", i+1, r.ready, r.took, mb(r.mem.RSS))
		fresh = append(fresh, r)
		// Stopped at once: what follows readiness does not matter to the next fresh start.
		stops = append(stops, s.Stop(stopTimeout))
	}

	sec.printf("\nThe clock starts just before fork/exec (`ip netns exec` execs k3ha in place), so it\n")
	sec.printf("includes loading the binary and Go package initialisation; readyz is polled every %v.\n", pollEvery)
	sec.printf("Fresh: new data dir each time (certificates, token and database created). Restart: SIGTERM,\n")
	sec.printf("then start again on the same data dir, %v after the previous start became ready.\n", settleBefore)
	sec.printf("A warm-up start (not counted) comes first. `took=` is the server's own figure from the\n")
	sec.printf("`k3ha is ready` log line, measured from the start of server.Run.\n")
	var rows [][]string
	for _, series := range []struct {
		name string
		runs []startRun
	}{{"fresh", fresh}, {"restart", restarts}} {
		var ready, took []time.Duration
		var rss []int64
		for _, r := range series.runs {
			ready = append(ready, r.ready)
			took = append(took, r.took)
			rss = append(rss, r.mem.RSS)
		}
		s := sortedCopy(ready)
		rows = append(rows, []string{series.name, fmt.Sprint(len(ready)), "**" + secs(median(ready)) + "**",
			secs(s[0]), secs(s[len(s)-1]), secs(median(took)), mb(median(rss)), secsList(ready)})
	}
	sec.table([]string{"series", "runs", "median ready", "min", "max", "median took=", "median RSS at ready", "samples (s)"}, rows)

	med := func(runs []startRun, f func(startRun) time.Duration) time.Duration {
		var ds []time.Duration
		for _, r := range runs {
			ds = append(ds, f(r))
		}
		return median(ds)
	}
	ratio := func(a, b time.Duration) string { return fmt.Sprintf("%.2f", a.Seconds()/b.Seconds()) }
	fr, rr := med(fresh, func(r startRun) time.Duration { return r.ready }), med(restarts, func(r startRun) time.Duration { return r.ready })
	sec.printf("- restart/fresh ratio of the medians: **%s**\n", ratio(rr, fr))
	sec.printf("- goal: at most 3 s; fresh median is %s the goal, restart median %s\n", ratio(fr, 3*time.Second)+"×", ratio(rr, 3*time.Second)+"×")
	sec.printf("- SIGTERM to exit (all %d stops): median %s, max %s\n", len(stops), secs(median(stops)), secs(slices.Max(stops)))

	sec.printf("\nWhere the time goes: median time of each log line after process start. \"before server.Run\"\n")
	sec.printf("is the `k3ha is ready` time minus `took=`: exec, runtime and package init, flag parsing.\n")
	rows = nil
	before := func(r startRun) time.Duration { return r.at["k3ha is ready"] - r.took }
	rows = append(rows, []string{"before server.Run", ms(med(fresh, before)), ms(med(restarts, before))})
	// A phase line the server stopped logging shows as n/a, not as 0 ms.
	phase := func(runs []startRun, p string) string {
		var ds []time.Duration
		for _, r := range runs {
			if d, ok := r.at[p]; ok {
				ds = append(ds, d)
			}
		}
		if len(ds) < len(runs) {
			return "n/a"
		}
		return ms(median(ds))
	}
	for _, p := range phases {
		rows = append(rows, []string{p, phase(fresh, p), phase(restarts, p)})
	}
	sec.table([]string{"log line", "fresh", "restart"}, rows)
}

// TestRSS reads the server's memory right after ready and after idling, and
// the Go runtime's view of it; then a heap profile from a restart with
// profiling switched on, to show where the memory goes.
func TestRSS(t *testing.T) {
	sec := newSection("single-rss", "Single server: memory after ready")
	defer sec.write(t)
	n := harness.NewNetwork(t)
	s := cluster.NewServer(t, k3haBin, n.AddHost(t, "bench"), "--disable-agent")
	r := timedStart(t, s)
	time.Sleep(idleForRSS)
	idle, err := readMem(s.PID())
	if err != nil {
		t.Fatal(err)
	}
	metrics := goMetrics(t, s)

	sec.printf("\nFrom /proc/<pid>/status of the one k3ha process (fresh data dir, `--disable-agent`).\n")
	sec.printf("RssFile is mostly the mapped binary (shared, reclaimable); RssAnon is the heap, stacks and runtime.\n")
	row := func(when string, m memInfo) []string {
		return []string{when, "**" + mb(m.RSS) + "**", mb(m.Anon), mb(m.File), mb(m.FilePmd), mb(m.Shmem), mb(m.HWM)}
	}
	sec.printf("\"in 2 MB maps\" is the part of RssFile mapped in 2 MB pieces (FilePmdMapped): with large page-cache\n")
	sec.printf("folios a single touched byte maps 2 MB of the binary, so nearly all of it counts as resident.\n")
	sec.table([]string{"when", "VmRSS", "RssAnon", "RssFile", "in 2 MB maps", "RssShmem", "VmHWM (peak)"},
		[][]string{row(fmt.Sprintf("right after ready (%s)", secs(r.ready)), r.mem), row(fmt.Sprintf("after %v idle", idleForRSS), idle)})
	sec.printf("- goal: at most 300 MB; after idling VmRSS is %.2f× the goal (RssAnon alone %.2f×)\n",
		float64(idle.RSS)/300e6, float64(idle.Anon)/300e6)
	if len(metrics) > 0 {
		sec.printf("\nGo runtime after idling (kube-apiserver /metrics, which covers the whole process):\n")
		var rows [][]string
		for _, k := range goMetricNames {
			if v, ok := metrics[k]; ok {
				val := mb(int64(v))
				if !strings.HasSuffix(k, "_bytes") {
					val = strconv.FormatFloat(v, 'f', -1, 64)
				}
				rows = append(rows, []string{k, val})
			}
		}
		sec.table([]string{"metric", "value"}, rows)
	}

	// Profiling is off by default; it only adds handlers, and Go samples
	// heap allocations either way, so the profile shows the usual process.
	s.Stop(stopTimeout)
	s.Args = append(s.Args, "--kube-apiserver-arg", "profiling=true")
	timedStart(t, s)
	time.Sleep(idleForRSS)
	prof := filepath.Join(t.TempDir(), "heap.pb.gz")
	body, err := adminREST(t, s).Get().AbsPath("/debug/pprof/heap").DoRaw(context.Background())
	if err != nil {
		t.Fatalf("heap profile: %v", err)
	}
	if err := os.WriteFile(prof, body, 0o644); err != nil {
		t.Fatal(err)
	}
	after, _ := readMem(s.PID())
	top := pprof(t, "-top", "-sample_index=inuse_space", "-nodecount=25", prof)
	sec.printf("\nHeap profile (in-use space, sampled, as of the last GC) of a restart with\n")
	sec.printf("`--kube-apiserver-arg profiling=true`, %v after ready (VmRSS then %s).\n", idleForRSS, mb(after.RSS))
	rows, total := focusRows(t, prof, "inuse_space", heapAreas)
	sec.printf("Live heap (%s in the profile) by area: the allocations whose stack passes through the\n", total)
	sec.printf("named code; areas overlap.\n")
	sec.table([]string{"area", "pprof -focus", "live heap"}, rows)
	sec.printf("Top 25 by own allocation (`go tool pprof -top` on `/debug/pprof/heap` of such a server):\n\n```\n%s```\n", pprofTop(top))

	// Each goroutine costs at least a stack; this shows who runs them.
	gor := filepath.Join(t.TempDir(), "goroutine.pb.gz")
	body, err = adminREST(t, s).Get().AbsPath("/debug/pprof/goroutine").DoRaw(context.Background())
	if err != nil {
		t.Fatalf("goroutine profile: %v", err)
	}
	if err := os.WriteFile(gor, body, 0o644); err != nil {
		t.Fatal(err)
	}
	rows, total = focusRows(t, gor, "goroutine", goroutineAreas)
	sec.printf("\nThe same server's %s goroutines by area (overlapping):\n", total)
	sec.table([]string{"area", "pprof -focus", "goroutines"}, rows)
	s.Stop(stopTimeout)
}

// heapAreas attribute the live heap to parts of the process.
type area struct{ name, focus string }

var heapAreas = []area{
	{"everything kube-apiserver set up", `controlplane\.\(\*APIServer\)`},
	{"OpenAPI v2/v3 definitions and specs", `kube-openapi|routes\.OpenAPI`},
	{"REST handler installation", `endpoints\.\(\*APIInstaller\)`},
	{"watch cache", `apiserver/pkg/storage/cacher`},
	{"etcd client and gRPC (apiserver to kine)", `google\.golang\.org/grpc|go\.etcd\.io`},
	{"kine", `k3s-io/kine`},
	{"informers (client-go cache)", `client-go/tools/cache`},
	{"package initialisation", `runtime\.doInit`},
}

var goroutineAreas = []area{
	{"gRPC between the apiserver's etcd clients and kine", `google\.golang\.org/grpc`},
	{"gRPC connections accepted by kine (one keepalive each)", `transport\.\(\*http2Server\)\.keepalive`},
	{"watch cache", `apiserver/pkg/storage/cacher`},
	{"informers (client-go cache)", `client-go/tools/cache`},
	{"work queues", `client-go/util/workqueue`},
	{"HTTP/2 of loopback clients and the API server", `golang\.org/x/net/http2`},
}

func pprof(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"tool", "pprof"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// pprofFocus sums the samples matching focus ("52MB (52%)") and returns the
// profile's total, from the summary line pprof prints when it shows every
// matching node: "Showing nodes accounting for 52MB, 52% of 99MB total".
func pprofFocus(t *testing.T, prof, index, focus string) (sum, total string) {
	t.Helper()
	out := pprof(t, "-top", "-sample_index="+index, "-nodecount=1000000", "-focus", focus, prof)
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Showing nodes accounting for "); ok {
			part, rest, _ := strings.Cut(v, " of ")
			return strings.Replace(part, ", ", " (", 1) + ")", strings.TrimSuffix(rest, " total")
		}
	}
	t.Fatalf("no summary in pprof output:\n%s", out)
	return "", ""
}

// focusRows attributes a profile to areas; the pipes of a regexp must be
// escaped inside a Markdown table.
func focusRows(t *testing.T, prof, index string, areas []area) (rows [][]string, total string) {
	t.Helper()
	for _, a := range areas {
		sum, tot := pprofFocus(t, prof, index, a.focus)
		rows = append(rows, []string{a.name, "`" + strings.ReplaceAll(a.focus, "|", `\|`) + "`", sum})
		total = tot
	}
	return rows, total
}

// pprofTop drops pprof's preamble lines that name temporary files.
func pprofTop(out string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(out, "\n") {
		if strings.HasPrefix(line, "File:") || strings.HasPrefix(line, "Build ID:") || strings.HasPrefix(line, "Main binary filename") {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}

var goMetricNames = []string{
	"go_memstats_heap_alloc_bytes", "go_memstats_heap_inuse_bytes", "go_memstats_heap_idle_bytes",
	"go_memstats_heap_released_bytes", "go_memstats_stack_inuse_bytes", "go_memstats_sys_bytes",
	"go_memstats_next_gc_bytes", "go_goroutines", "process_resident_memory_bytes",
}

// goMetrics picks the Go runtime figures out of the apiserver's /metrics.
func goMetrics(t *testing.T, s *cluster.Server) map[string]float64 {
	t.Helper()
	body, err := adminREST(t, s).Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && slices.Contains(goMetricNames, f[0]) {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				m[f[0]] = v
			}
		}
	}
	return m
}

// restConfig is the admin kubeconfig pointed at the host's address, with
// client-side rate limiting out of the way.
func restConfig(t *testing.T, s *cluster.Server) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags(s.URL(), s.Kubeconfig)
	if err != nil {
		t.Fatalf("admin kubeconfig: %v", err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	cfg.Timeout = 30 * time.Second
	return cfg
}

// adminREST is a raw client for the non-resource paths (/metrics, /debug/pprof).
func adminREST(t *testing.T, s *cluster.Server) rest.Interface {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(restConfig(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return dc.RESTClient()
}

var (
	nsGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	cmGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
)

// loadResult is one run of concurrent ConfigMap creates.
type loadResult struct {
	clients, creates int
	conns            int
	wall             time.Duration
	lat              []time.Duration // sorted
	serverCPU        time.Duration
	clientCPU        time.Duration
}

func (r loadResult) perSec() float64 { return float64(r.creates) / r.wall.Seconds() }

// TestConfigMapCreates measures ConfigMap creates/s through the API with 1 and
// 16 concurrent clients, after a warm-up.
func TestConfigMapCreates(t *testing.T) {
	sec := newSection("single-configmaps", "Single server: ConfigMap creates through the API")
	defer sec.write(t)
	n := harness.NewNetwork(t)
	s := cluster.NewServer(t, k3haBin, n.AddHost(t, "bench"), "--disable-agent")
	timedStart(t, s)
	cfg := restConfig(t, s)
	// The controllers' start-up burst (RBAC bootstrap, service accounts) would
	// otherwise share the CPU with the first run.
	time.Sleep(settleBefore)

	createLoad(t, s, cfg, "bench-warmup", 16, 200)
	// Runs of a second or two are at the mercy of the shared machine, so
	// each load runs loadRounds times, alternating, and the median counts.
	loads := []struct{ clients, creates int }{{1, 500}, {16, 2000}}
	results := make([][]loadResult, len(loads))
	total := 200
	for round := range loadRounds {
		for i, l := range loads {
			ns := fmt.Sprintf("bench-c%d-r%d", l.clients, round+1)
			results[i] = append(results[i], createLoad(t, s, cfg, ns, l.clients, l.creates))
			total += l.creates
		}
	}
	mem, err := readMem(s.PID())
	if err != nil {
		t.Fatal(err)
	}
	var dbSize int64
	if st, err := os.Stat(filepath.Join(s.DataDir(), "server", "db", "state.db")); err == nil {
		dbSize = st.Size()
	}

	sec.printf("\nclient-go dynamic client (JSON), admin kubeconfig, QPS 1000 / burst 2000, one connection per\n")
	sec.printf("client, from the root namespace to the server's host address. Each ConfigMap has one 100-byte value.\n")
	sec.printf("Warm-up first: 200 creates with 16 clients, not counted. Then %d rounds of each load, alternating,\n", loadRounds)
	sec.printf("each into a new namespace; creates/s is the median round (range in brackets), latencies are over all\n")
	sec.printf("rounds. CPU is user+system; the clients run on the same two cores as the server.\n")
	var rows [][]string
	perSec := make([]float64, len(loads))
	for i, l := range loads {
		var rates []float64
		var lat []time.Duration
		var wall, srv, cli time.Duration
		for _, r := range results[i] {
			rates = append(rates, r.perSec())
			lat = append(lat, r.lat...)
			wall, srv, cli = wall+r.wall, srv+r.serverCPU, cli+r.clientCPU
		}
		slices.Sort(lat)
		perSec[i] = median(rates)
		n := time.Duration(len(lat))
		rows = append(rows, []string{fmt.Sprint(l.clients), fmt.Sprintf("%d × %d", len(results[i]), l.creates),
			fmt.Sprintf("**%.0f** (%.0f–%.0f)", perSec[i], slices.Min(rates), slices.Max(rates)),
			ms(percentile(lat, 50)), ms(percentile(lat, 99)), ms(lat[len(lat)-1]),
			secs(srv * 1000 / n), secs(cli * 1000 / n), fmt.Sprintf("%.0f%%", 100*srv.Seconds()/wall.Seconds())})
	}
	sec.table([]string{"clients", "rounds × creates", "creates/s", "p50", "p99", "max", "server CPU per 1000", "client CPU per 1000", "server CPU use"}, rows)
	sec.printf("- 16-client/1-client throughput ratio (medians): **%.2f**\n", perSec[1]/perSec[0])
	sec.printf("- server CPU use is of one core (200%% = both)\n")
	sec.printf("- after the runs (%d ConfigMaps): VmRSS %s (RssAnon %s), SQLite file %s\n", total, mb(mem.RSS), mb(mem.Anon), mb(dbSize))
	s.Stop(stopTimeout)
}

// createLoad creates `creates` ConfigMaps in a new namespace of the one
// server with `clients` workers, each its own client and connection.
func createLoad(t *testing.T, s *cluster.Server, cfg *rest.Config, ns string, clients, creates int) loadResult {
	t.Helper()
	return apiLoad(t, targets(s), []*rest.Config{cfg}, ns, clients, creates, 0)
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestWarmBuild times `make build` after touching cmd/k3ha/main.go. Go's
// cache is keyed on content, not mtime, so every package comes from the
// cache and the cost is the cache check plus the link (the Makefile stamps
// the build time into -ldflags, so the link always runs). It runs last
// because it replaces bin/k3ha.
func TestWarmBuild(t *testing.T) {
	sec := newSection("single-build", "Build: warm (relink)")
	defer sec.write(t)
	root := repoRoot()
	main := filepath.Join(root, "cmd", "k3ha", "main.go")
	const runs = 3
	var walls, cpus []time.Duration
	var peak int64
	for i := range runs {
		now := time.Now()
		if err := os.Chtimes(main, now, now); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("make", "-C", root, "build")
		begin := time.Now()
		out, err := cmd.CombinedOutput()
		wall := time.Since(begin)
		if err != nil {
			t.Fatalf("make build: %v\n%s", err, out)
		}
		// wait4's usage covers make and everything it waited for (go, compile, link);
		// ru_maxrss is then the largest single process of them.
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		walls, cpus = append(walls, wall), append(cpus, cpu)
		peak = max(peak, ru.Maxrss*1024)
		t.Logf("warm build %d: %v wall, %v CPU, peak RSS %s", i+1, wall.Round(time.Millisecond), cpu.Round(time.Millisecond), mb(ru.Maxrss*1024))
	}
	var size int64
	if st, err := os.Stat(filepath.Join(root, "bin", "k3ha")); err == nil {
		size = st.Size()
	}
	sec.printf("\n`make build` after touching cmd/k3ha/main.go, %d times. Go's build cache is keyed on file content, so\n", runs)
	sec.printf("every package comes from the cache; the link always runs because the Makefile stamps the build\n")
	sec.printf("time into -ldflags. Peak RSS is the largest single process of the build (the linker).\n")
	sec.table([]string{"runs", "median wall", "min", "max", "median CPU (user+sys)", "CPU/wall", "peak RSS", "binary size"},
		[][]string{{fmt.Sprint(runs), "**" + secs(median(walls)) + "**", secs(slices.Min(walls)), secs(slices.Max(walls)),
			secs(median(cpus)), fmt.Sprintf("%.2f", median(cpus).Seconds()/median(walls).Seconds()), mb(peak), mb(size)}})
	sec.printf("The cold build (empty GOCACHE) is measured by bench/coldbuild.sh; see its section.\n")
}
