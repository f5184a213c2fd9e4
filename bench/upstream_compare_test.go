//go:build bench

package bench

// k3ha on SQLite and on embedded etcd against the upstream layout
// (upstream_test.go), measured in alternating rounds in one run, so that
// the shared machine's load weighs on all three alike.

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

const (
	// Three rounds: each layout starts first, second and third once.
	compareRoundsUp = 3
	// The 1-client creates come in slices that take turns between the
	// layouts; a round's 16-client creates are one run per layout, in the
	// one namespace the list reads.
	oneClientSlices  = 4
	oneClientCreates = 250
	// The 16-client creates take turns too, in slices that fill the one
	// namespace the list reads: a layout's tail latency is then not that of
	// whichever minute its one run fell in.
	sixteenSlices = 4
	idleCPUWindow = 60 * time.Second
	upstreamLists = 9
)

// layout is one way of running the control plane, started and stopped by
// the comparison.
type layout interface {
	start(t *testing.T) (readyz time.Duration)
	stop()
	target() target
	restConfig(t *testing.T) *rest.Config
}

// upstreamLayout is the four upstream programs.
type upstreamLayout struct{ u *upstream }

func (l upstreamLayout) start(t *testing.T) time.Duration {
	t0 := time.Now()
	l.u.start()
	return waitReadyz(t, l.u.host.IP.String(), t0, l.u.exited)
}
func (l upstreamLayout) stop()                                { l.u.stop() }
func (l upstreamLayout) target() target                       { return l.u.target() }
func (l upstreamLayout) restConfig(t *testing.T) *rest.Config { return l.u.restConfig(t) }

// k3haLayout is one k3ha server without an agent.
type k3haLayout struct{ s *cluster.Server }

func (l k3haLayout) start(t *testing.T) time.Duration {
	t0 := time.Now()
	l.s.Start()
	return waitReadyz(t, l.s.Host.IP.String(), t0, l.s.Proc.Exited)
}

// stop lets k3ha finish its own start first: its apiserver may answer
// /readyz a moment before k3ha has seen it and gone on.
func (l k3haLayout) stop() {
	l.s.WaitReady()
	l.s.Stop(stopTimeout)
}

func (l k3haLayout) target() target                       { return targets(l.s)[0] }
func (l k3haLayout) restConfig(t *testing.T) *rest.Config { return restConfig(t, l.s) }

// figures are one round's measurements of a layout.
type figures struct {
	fresh, restart time.Duration
	idle, loaded   memInfo
	idleCPU        time.Duration
	one, sixteen   loadResult
	list           time.Duration
}

// sumMem adds up the memory of a target's processes.
func sumMem(t *testing.T, tg target) memInfo {
	t.Helper()
	var sum memInfo
	for _, pid := range tg.pids {
		m, err := readMem(pid)
		if err != nil {
			t.Fatal(err)
		}
		sum.RSS, sum.Anon, sum.File = sum.RSS+m.RSS, sum.Anon+m.Anon, sum.File+m.File
	}
	return sum
}

func sumCPU(t *testing.T, tg target) time.Duration {
	t.Helper()
	var sum time.Duration
	for _, pid := range tg.pids {
		c, err := cpuTime(pid)
		if err != nil {
			t.Fatal(err)
		}
		sum += c
	}
	return sum
}

// measureRound runs one round: the layouts, each on a new host and data dir,
// run side by side, and every figure is taken from each in turn (in the
// round's order) within seconds, so that the shared machine's speed, which
// drifts by up to half over minutes, weighs on all of them alike. Start,
// memory 30 s after ready, CPU over the same idle minute, creates with 1
// client and then with 16 in slices taking turns, lists of 2,000 objects
// taking turns, memory after that load, then a restart of each in turn.
func measureRound(t *testing.T, order []string, layouts map[string]layout, round int) map[string]*figures {
	t.Helper()
	fs := map[string]*figures{}
	readyAt := map[string]time.Time{}
	for _, name := range order {
		fs[name] = &figures{fresh: layouts[name].start(t)}
		readyAt[name] = time.Now()
	}
	for _, name := range order {
		time.Sleep(time.Until(readyAt[name].Add(idleForRSS)))
		fs[name].idle = sumMem(t, layouts[name].target())
	}
	cpu0 := map[string]time.Duration{}
	for _, name := range order {
		cpu0[name] = sumCPU(t, layouts[name].target())
	}
	time.Sleep(idleCPUWindow)
	for _, name := range order {
		fs[name].idleCPU = sumCPU(t, layouts[name].target()) - cpu0[name]
	}

	cfgs := map[string]*rest.Config{}
	// load creates ConfigMaps from cm-<first> on, in ns, through one layout.
	load := func(name, ns string, clients, creates, first int) loadResult {
		return apiLoadFrom(t, []target{layouts[name].target()}, []*rest.Config{cfgs[name]}, ns, clients, creates, 0, first)
	}
	for _, name := range order {
		cfgs[name] = layouts[name].restConfig(t)
		load(name, "warmup", 16, 200, 0)
	}
	for slice := range oneClientSlices {
		for _, name := range order {
			fs[name].one = fs[name].one.add(load(name, fmt.Sprintf("one-%d-%d", round, slice), 1, oneClientCreates, 0))
		}
	}
	ns := fmt.Sprintf("sixteen-%d", round)
	perSlice := listObjects / sixteenSlices
	for slice := range sixteenSlices {
		for _, name := range order {
			fs[name].sixteen = fs[name].sixteen.add(load(name, ns, 16, perSlice, slice*perSlice))
		}
	}
	listers := map[string]dynamic.Interface{}
	for _, name := range order {
		dc, err := dynamic.NewForConfig(cfgs[name])
		if err != nil {
			t.Fatal(err)
		}
		listers[name] = dc
	}
	lists := map[string][]time.Duration{}
	for range upstreamLists {
		for _, name := range order {
			lists[name] = append(lists[name], timeList(t, name, listers[name], ns))
		}
	}
	for _, name := range order {
		fs[name].list = median(lists[name])
		fs[name].loaded = sumMem(t, layouts[name].target())
	}
	for _, name := range order {
		layouts[name].stop()
		fs[name].restart = layouts[name].start(t)
		layouts[name].stop()
	}
	return fs
}

// timeList times one list of a namespace's listObjects ConfigMaps.
func timeList(t *testing.T, name string, dc dynamic.Interface, ns string) time.Duration {
	t.Helper()
	begin := time.Now()
	list, err := dc.Resource(cmGVR).Namespace(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil || len(list.Items) < listObjects {
		t.Fatalf("%s: list %s: %v", name, ns, err)
	}
	return time.Since(begin)
}

// ownBinary copies the k3ha binary for one layout. Two servers side by side
// would otherwise map the same file's page cache: each would count the
// other's binary pages in its RssFile, and k3ha's page-out skips pages that
// another process maps, as one server per machine never has.
func ownBinary(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "k3ha-"+name)
	if err := cluster.CopyExecutable(k3haBin, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// add pools two runs of one load: their creates, time and latencies.
func (r loadResult) add(o loadResult) loadResult {
	r.clients, r.creates, r.conns = o.clients, r.creates+o.creates, r.conns+o.conns
	r.wall, r.serverCPU, r.clientCPU = r.wall+o.wall, r.serverCPU+o.serverCPU, r.clientCPU+o.clientCPU
	r.lat = append(r.lat, o.lat...)
	slices.Sort(r.lat)
	return r
}

func TestUpstreamCompare(t *testing.T) {
	sec := newSection("upstream", "Side by side with the upstream layout: k3ha on SQLite and on etcd vs four kubeadm-style processes")
	defer sec.write(t)
	upstreamBins(t) // built before any clock starts
	n := harness.NewNetwork(t)
	names := []string{"upstream", "k3ha SQLite", "k3ha etcd"}
	sqliteBin, etcdBin := ownBinary(t, "sqlite"), ownBinary(t, "etcd")
	results := map[string][]figures{}
	for round := range compareRoundsUp {
		// A new host and data dir per layout and round: every start in a
		// round is fresh, and the order rotates between rounds.
		layouts := map[string]layout{
			"upstream":    upstreamLayout{newUpstream(t, n.AddHost(t, fmt.Sprintf("up-%d", round)))},
			"k3ha SQLite": k3haLayout{cluster.NewServer(t, sqliteBin, n.AddHost(t, fmt.Sprintf("sq-%d", round)), "--disable-agent")},
			"k3ha etcd":   k3haLayout{cluster.NewServer(t, etcdBin, n.AddHost(t, fmt.Sprintf("et-%d", round)), "--disable-agent", "--cluster-init")},
		}
		order := append(slices.Clone(names[round%len(names):]), names[:round%len(names)]...)
		fs := measureRound(t, order, layouts, round)
		for _, name := range order {
			f := *fs[name]
			t.Logf("round %d %s: fresh %v restart %v idle RSS %s anon %s, loaded RSS %s anon %s, idle CPU %v, 1 client %.0f/s, 16 clients %.0f/s, list %v",
				round+1, name, f.fresh, f.restart, mb(f.idle.RSS), mb(f.idle.Anon), mb(f.loaded.RSS), mb(f.loaded.Anon),
				f.idleCPU, f.one.perSec(), f.sixteen.perSec(), f.list)
			results[name] = append(results[name], f)
		}
	}

	// Medians over the rounds (latencies over all of them).
	type row struct {
		fresh, restart, idleCPU, list time.Duration
		idleRSS, idleAnon, rss, anon  int64
		one, sixteen                  float64
		p50one, p99one, p50, p99      time.Duration
	}
	agg := map[string]row{}
	for _, name := range names {
		var r row
		var fresh, restart, cpu, list []time.Duration
		var idleRSS, idleAnon, rss, anon []int64
		var one, sixteen []float64
		var latOne, lat []time.Duration
		for _, f := range results[name] {
			fresh, restart, cpu, list = append(fresh, f.fresh), append(restart, f.restart), append(cpu, f.idleCPU), append(list, f.list)
			idleRSS, idleAnon = append(idleRSS, f.idle.RSS), append(idleAnon, f.idle.Anon)
			rss, anon = append(rss, f.loaded.RSS), append(anon, f.loaded.Anon)
			one, sixteen = append(one, f.one.perSec()), append(sixteen, f.sixteen.perSec())
			latOne, lat = append(latOne, f.one.lat...), append(lat, f.sixteen.lat...)
		}
		slices.Sort(latOne)
		slices.Sort(lat)
		r.fresh, r.restart, r.idleCPU, r.list = median(fresh), median(restart), median(cpu), median(list)
		r.idleRSS, r.idleAnon, r.rss, r.anon = median(idleRSS), median(idleAnon), median(rss), median(anon)
		r.one, r.sixteen = median(one), median(sixteen)
		r.p50one, r.p99one, r.p50, r.p99 = percentile(latOne, 50), percentile(latOne, 99), percentile(lat, 50), percentile(lat, 99)
		agg[name] = r
	}

	sec.printf("\nupstream: etcd, kube-apiserver, kube-controller-manager and kube-scheduler built from k3ha's go.mod\n")
	sec.printf("(`go build -trimpath -ldflags '-s -w'`, as bin/k3ha) and started at once with kubeadm's flags, their\n")
	sec.printf("certificates and kubeconfigs made before the clock starts (k3ha makes its own inside its start).\n")
	sec.printf("k3ha: one server with `--disable-agent`, on SQLite (the default) or embedded etcd (`--cluster-init`),\n")
	sec.printf("each from its own copy of the binary, so that the two do not share its pages as no single server does.\n")
	sec.printf("%d rounds; in each, the three layouts run side by side, each on a new host and data dir, and every\n", compareRoundsUp)
	sec.printf("figure is taken from each in turn, in an order that rotates between rounds, so that the shared machine's\n")
	sec.printf("speed, which drifts over minutes, weighs on all alike: start to the apiserver's /readyz (polled every\n")
	sec.printf("%v, the layouts started before it idling), memory %v after its ready (summed over the processes),\n", pollEvery, idleForRSS)
	sec.printf("CPU over the same idle %v, 200 warm-up creates, %d × %d ConfigMap creates by 1 client in slices taking\n", idleCPUWindow, oneClientSlices, oneClientCreates)
	sec.printf("turns, %d × %d by 16 clients in slices taking turns, %d lists of those %d (no resourceVersion) taking turns,\n", sixteenSlices, listObjects/sixteenSlices, upstreamLists, listObjects)
	sec.printf("memory after that load, then SIGTERM and a restart on the same data dir. Figures are medians of the\n")
	sec.printf("rounds; latencies are over all of them. Ratio: k3ha/upstream\n")
	sec.printf("(below 1 is better for k3ha, except creates/s, where above 1 is).\n")
	up := agg["upstream"]
	type metric struct {
		name string
		val  func(row) string
		num  func(row) float64
	}
	dur := func(name string, f func(row) time.Duration) metric {
		return metric{name, func(r row) string { return secs(f(r)) }, func(r row) float64 { return f(r).Seconds() }}
	}
	bytes := func(name string, f func(row) int64) metric {
		return metric{name, func(r row) string { return mb(f(r)) }, func(r row) float64 { return float64(f(r)) }}
	}
	rate := func(name string, f func(row) float64) metric {
		return metric{name, func(r row) string { return fmt.Sprintf("%.0f/s", f(r)) }, f}
	}
	latency := func(name string, p50, p99 func(row) time.Duration) metric {
		return metric{name, func(r row) string { return ms(p50(r)) + " / " + ms(p99(r)) }, func(r row) float64 { return p99(r).Seconds() }}
	}
	metrics := []metric{
		dur("fresh start to /readyz", func(r row) time.Duration { return r.fresh }),
		dur("restart to /readyz", func(r row) time.Duration { return r.restart }),
		bytes("VmRSS 30 s after ready", func(r row) int64 { return r.idleRSS }),
		bytes("RssAnon 30 s after ready", func(r row) int64 { return r.idleAnon }),
		dur("idle CPU over 60 s", func(r row) time.Duration { return r.idleCPU }),
		rate("creates/s, 1 client", func(r row) float64 { return r.one }),
		latency("create p50 / p99, 1 client", func(r row) time.Duration { return r.p50one }, func(r row) time.Duration { return r.p99one }),
		rate("creates/s, 16 clients", func(r row) float64 { return r.sixteen }),
		latency("create p50 / p99, 16 clients", func(r row) time.Duration { return r.p50 }, func(r row) time.Duration { return r.p99 }),
		metric{"list of 2,000", func(r row) string { return ms(r.list) }, func(r row) float64 { return r.list.Seconds() }},
		bytes("VmRSS after load", func(r row) int64 { return r.rss }),
		bytes("RssAnon after load", func(r row) int64 { return r.anon }),
	}
	var rows [][]string
	for _, m := range metrics {
		cells := []string{m.name}
		for _, name := range names {
			cells = append(cells, m.val(agg[name]))
		}
		for _, name := range names[1:] {
			cells = append(cells, fmt.Sprintf("**%.2f**", m.num(agg[name])/m.num(up)))
		}
		rows = append(rows, cells)
	}
	sec.table([]string{"figure", "upstream", "k3ha SQLite", "k3ha etcd", "ratio SQLite", "ratio etcd"}, rows)
	sec.printf("- the p99 ratio rows compare p99s; the creates/s rows are better above 1\n")
}
