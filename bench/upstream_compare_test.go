//go:build bench

package bench

// k3ha on SQLite and on embedded etcd against the upstream layout
// (upstream_test.go), measured in alternating rounds in one run, so that
// the shared machine's load weighs on all three alike.

import (
	"context"
	"fmt"
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
	compareRoundsUp = 2
	idleCPUWindow   = 60 * time.Second
	upstreamLists   = 5
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

// measureLayout runs one round on a fresh layout: start, idle memory and CPU,
// creates with 1 and 16 clients, a list of 2,000 objects, memory after
// that load, then a restart.
func measureLayout(t *testing.T, l layout, round int) figures {
	t.Helper()
	var f figures
	f.fresh = l.start(t)
	time.Sleep(idleForRSS)
	tg := l.target()
	f.idle = sumMem(t, tg)
	cpu0 := sumCPU(t, tg)
	time.Sleep(idleCPUWindow)
	f.idleCPU = sumCPU(t, tg) - cpu0

	cfg := l.restConfig(t)
	load := func(ns string, clients, creates int) loadResult {
		return apiLoad(t, []target{tg}, []*rest.Config{cfg}, ns, clients, creates, 0)
	}
	load("warmup", 16, 200)
	f.one = load(fmt.Sprintf("one-%d", round), 1, 500)
	ns := fmt.Sprintf("sixteen-%d", round)
	f.sixteen = load(ns, 16, listObjects)
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var lists []time.Duration
	for range upstreamLists {
		begin := time.Now()
		list, err := dc.Resource(cmGVR).Namespace(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil || len(list.Items) < listObjects {
			t.Fatalf("list %s: %v", ns, err)
		}
		lists = append(lists, time.Since(begin))
	}
	f.list = median(lists)
	f.loaded = sumMem(t, tg)
	l.stop()
	f.restart = l.start(t)
	l.stop()
	return f
}

func TestUpstreamCompare(t *testing.T) {
	sec := newSection("upstream", "Side by side with the upstream layout: k3ha on SQLite and on etcd vs four kubeadm-style processes")
	defer sec.write(t)
	upstreamBins(t) // built before any clock starts
	n := harness.NewNetwork(t)
	names := []string{"upstream", "k3ha SQLite", "k3ha etcd"}
	results := map[string][]figures{}
	for round := range compareRoundsUp {
		// A new host and data dir per layout and round: every start in a
		// round is fresh, and the order rotates between rounds.
		layouts := map[string]layout{
			"upstream":    upstreamLayout{newUpstream(t, n.AddHost(t, fmt.Sprintf("up-%d", round)))},
			"k3ha SQLite": k3haLayout{cluster.NewServer(t, k3haBin, n.AddHost(t, fmt.Sprintf("sq-%d", round)), "--disable-agent")},
			"k3ha etcd":   k3haLayout{cluster.NewServer(t, k3haBin, n.AddHost(t, fmt.Sprintf("et-%d", round)), "--disable-agent", "--cluster-init")},
		}
		for i := range names {
			name := names[(i+round)%len(names)]
			f := measureLayout(t, layouts[name], round)
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
	sec.printf("k3ha: one server with `--disable-agent`, on SQLite (the default) or embedded etcd (`--cluster-init`).\n")
	sec.printf("%d rounds; in each, every layout runs on a new host and data dir, in an order that rotates: start to\n", compareRoundsUp)
	sec.printf("the apiserver's /readyz (polled every %v), memory %v after ready (summed over the processes),\n", pollEvery, idleForRSS)
	sec.printf("CPU over the next %v, 200 warm-up creates, 500 ConfigMap creates by 1 client and %d by 16, %d\n", idleCPUWindow, listObjects, upstreamLists)
	sec.printf("lists of those %d (no resourceVersion), memory after that load, then SIGTERM and a restart on the\n", listObjects)
	sec.printf("same data dir. Figures are medians of the rounds; latencies are over all of them. Ratio: k3ha/upstream\n")
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
