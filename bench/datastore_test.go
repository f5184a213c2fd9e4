//go:build bench

package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

const (
	migrationRuns = 3
	compareRounds = 3
	listRuns      = 20
)

// migrationFigures are one migration's figures from the server's log.
type migrationFigures struct {
	keys         int
	copied       time.Duration // "migration copied every key" took=: the new etcd's start and the copy
	etcdStart    time.Duration // etcd_start= of that line
	total        time.Duration // "migrated SQLite data into etcd" took=
	startToReady time.Duration // process start to readyz, migration included
}

var (
	migratedRE = regexp.MustCompile(`msg="migrated SQLite data into etcd" keys=(\d+) .*took=(\S+)`)
	copiedRE   = regexp.MustCompile(`msg="migration copied every key; verifying" keys=\d+ bytes=\d+ took=(\S+) etcd_start=(\S+)`)
)

func parseMigration(log string) (migrationFigures, error) {
	var f migrationFigures
	m := migratedRE.FindStringSubmatch(log)
	c := copiedRE.FindStringSubmatch(log)
	if m == nil || c == nil {
		return f, fmt.Errorf("no migration lines in the log")
	}
	var err error
	if f.keys, err = strconv.Atoi(m[1]); err != nil {
		return f, err
	}
	if f.total, err = time.ParseDuration(m[2]); err != nil {
		return f, err
	}
	if f.copied, err = time.ParseDuration(c[1]); err != nil {
		return f, err
	}
	f.etcdStart, err = time.ParseDuration(c[2])
	return f, err
}

// TestMigrationTime fills a SQLite server with 1,000 and 10,000 ConfigMaps
// and measures its restart with --cluster-init: the migration into etcd
// (copy, verify, move into place) and the whole start to ready. Each size
// is migrated migrationRuns times from a copy of the same data dir.
func TestMigrationTime(t *testing.T) {
	sec := newSection("migrate-time", "Migration: SQLite to embedded etcd on restart with --cluster-init")
	defer sec.write(t)
	n := harness.NewNetwork(t)
	h := n.AddHost(t, "bench")

	type row struct {
		objects int
		keys    int
		dbSize  int64
		runs    []migrationFigures
	}
	var rows []row
	for _, objects := range []int{1000, 10000} {
		s := cluster.NewServer(t, k3haBin, h, "--disable-agent")
		timedStart(t, s)
		cfg := restConfig(t, s)
		createLoad(t, s, cfg, fmt.Sprintf("migrate-%d", objects), 16, objects)
		s.Stop(stopTimeout)
		db := filepath.Join(s.DataDir(), "server", "db", "state.db")
		st, err := os.Stat(db)
		if err != nil {
			t.Fatal(err)
		}
		// Each run migrates a fresh copy of the stopped server's data dir.
		pristine := filepath.Join(s.Dir, "pristine")
		if out, err := exec.Command("cp", "-a", s.DataDir(), pristine).CombinedOutput(); err != nil {
			t.Fatalf("copy the data dir: %v\n%s", err, out)
		}
		r := row{objects: objects, dbSize: st.Size()}
		s.Args = append(s.Args, "--cluster-init")
		for run := range migrationRuns {
			if run > 0 {
				if err := os.RemoveAll(s.DataDir()); err != nil {
					t.Fatal(err)
				}
				if out, err := exec.Command("cp", "-a", pristine, s.DataDir()).CombinedOutput(); err != nil {
					t.Fatalf("restore the data dir: %v\n%s", err, out)
				}
			}
			sr := timedStart(t, s)
			f, err := parseMigration(s.Proc.Log())
			if err != nil {
				t.Fatalf("%v:\n%s", err, cluster.Tail(s.Proc.Log(), 30))
			}
			f.startToReady = sr.ready
			r.keys = f.keys
			r.runs = append(r.runs, f)
			t.Logf("%d objects, run %d: %d keys migrated in %v (copy %v), ready after %v", objects, run+1, f.keys, f.total, f.copied, sr.ready)
			// The migrated server serves every object.
			list, err := dynamic.NewForConfig(restConfig(t, s))
			if err != nil {
				t.Fatal(err)
			}
			got, err := list.Resource(cmGVR).Namespace(fmt.Sprintf("migrate-%d", objects)).List(context.Background(), metav1.ListOptions{LabelSelector: "bench=load"})
			if err != nil {
				t.Fatalf("after the migration: list ConfigMaps: %v", err)
			}
			if len(got.Items) != objects {
				t.Fatalf("after the migration: %d ConfigMaps listed, want %d", len(got.Items), objects)
			}
			s.Stop(stopTimeout)
		}
		rows = append(rows, r)
	}

	sec.printf("\nA single server on SQLite gets N ConfigMaps (100-byte value each, created through the API by\n")
	sec.printf("16 clients), is stopped with SIGTERM and started again with `--cluster-init`. The migration\n")
	sec.printf("copies every key (the ConfigMaps plus everything Kubernetes keeps: RBAC, namespaces, leases...)\n")
	sec.printf("into a new etcd member in a staging dir, reads both sides again to compare keys and SHA-256 of\n")
	sec.printf("values, then moves the etcd data into place. Figures from the server's log; %d runs per size, each\n", migrationRuns)
	sec.printf("from a copy of the same stopped data dir; median (min–max).\n")
	var table [][]string
	for _, r := range rows {
		var total, start, copied, ready []time.Duration
		for _, f := range r.runs {
			total, start, ready = append(total, f.total), append(start, f.etcdStart), append(ready, f.startToReady)
			copied = append(copied, f.copied-f.etcdStart)
		}
		table = append(table, []string{fmt.Sprint(r.objects), fmt.Sprint(r.keys), mb(r.dbSize),
			fmt.Sprintf("**%s** (%s–%s)", secs(median(total)), secs(slices.Min(total)), secs(slices.Max(total))),
			secs(median(start)), secs(median(copied)), secs(median(total) - median(start) - median(copied)),
			fmt.Sprintf("%.0f", float64(r.keys)/median(copied).Seconds()),
			secs(median(ready))})
	}
	sec.table([]string{"ConfigMaps", "keys migrated", "SQLite file", "migration", "new etcd's start", "copy", "verify and move", "keys/s copied", "start to ready (with migration)"}, table)
	last := rows[len(rows)-1]
	var total []time.Duration
	for _, f := range last.runs {
		total = append(total, f.total)
	}
	sec.printf("- goal: 10,000 objects in under 10 s; the median is %.2f× the goal\n", median(total).Seconds()/10)
}

// dsResult is one datastore's figures.
type dsResult struct {
	name    string
	creates []loadResult
	lists   []time.Duration // full list of listObjects ConfigMaps, sorted
	cached  []time.Duration // the same with resourceVersion=0 (watch cache), sorted
}

const listObjects = 2000

// TestDatastoreCompare runs the same load against a server on each
// datastore: SQLite (the default), embedded etcd (--cluster-init) and
// PostgreSQL (--datastore-endpoint, a database of the benchmark's own on
// another test host). ConfigMap creates/s through the API, and the latency
// of listing 2,000 ConfigMaps.
func TestDatastoreCompare(t *testing.T) {
	sec := newSection("datastores", "Datastores: SQLite vs embedded etcd vs PostgreSQL through the API")
	defer sec.write(t)
	n := harness.NewNetwork(t)
	pg := cluster.NewPostgres(t, n.AddHost(t, "pg"))
	pg.Start()

	var results []dsResult
	for _, ds := range []struct {
		name, host string
		args       []string
	}{
		{"SQLite", "sqlite", nil},
		{"embedded etcd", "etcd", []string{"--cluster-init"}},
		{"PostgreSQL " + pgVersion(t), "onpg", []string{"--datastore-endpoint", pg.DSN("k3ha")}},
	} {
		s := cluster.NewServer(t, k3haBin, n.AddHost(t, ds.host), append([]string{"--disable-agent"}, ds.args...)...)
		timedStart(t, s)
		time.Sleep(settleBefore)
		cfg := restConfig(t, s)
		r := dsResult{name: ds.name}
		createLoad(t, s, cfg, "warmup", 16, 200)
		for round := range compareRounds {
			r.creates = append(r.creates, createLoad(t, s, cfg, fmt.Sprintf("load-%d", round+1), 16, listObjects))
		}
		dc, err := dynamic.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		cms := dc.Resource(cmGVR).Namespace("load-1")
		for _, rv := range []string{"", "0"} {
			var lat []time.Duration
			for range listRuns {
				begin := time.Now()
				list, err := cms.List(context.Background(), metav1.ListOptions{ResourceVersion: rv})
				took := time.Since(begin)
				// Plus the namespace's kube-root-ca.crt.
				if err != nil || len(list.Items) < listObjects {
					t.Fatalf("list on %s (resourceVersion=%q): %d items, %v", ds.name, rv, len(list.Items), err)
				}
				lat = append(lat, took)
			}
			slices.Sort(lat)
			if rv == "" {
				r.lists = lat
			} else {
				r.cached = lat
			}
		}
		t.Logf("%s: lists p50 %v, cached p50 %v", ds.name, percentile(r.lists, 50), percentile(r.cached, 50))
		results = append(results, r)
		s.Stop(stopTimeout)
	}

	sec.printf("\nOne server (`--disable-agent`) per datastore, started fresh, %v of rest, then 200 warm-up creates.\n", settleBefore)
	sec.printf("Creates: %d rounds of %d ConfigMaps (100-byte value) by 16 clients, each round into a new namespace;\n", compareRounds, listObjects)
	sec.printf("creates/s is the median round (range), latencies over all rounds. Lists: %d full lists of the first\n", listRuns)
	sec.printf("round's %d ConfigMaps, one after another, by one client (JSON): as kubectl lists (no resourceVersion:\n", listObjects)
	sec.printf("a consistent read) and with resourceVersion=0 (whatever the apiserver's watch cache holds).\n")
	sec.printf("PostgreSQL (Debian's, default settings, fsync on) runs on a test host of its own, reached over the\n")
	sec.printf("test bridge; SQLite and etcd are inside the k3ha process.\n")
	var table [][]string
	for _, r := range results {
		var rates []float64
		var lat []time.Duration
		for _, c := range r.creates {
			rates = append(rates, c.perSec())
			lat = append(lat, c.lat...)
		}
		slices.Sort(lat)
		table = append(table, []string{r.name,
			fmt.Sprintf("**%.0f** (%.0f–%.0f)", median(rates), slices.Min(rates), slices.Max(rates)),
			ms(percentile(lat, 50)), ms(percentile(lat, 99)),
			"**" + ms(percentile(r.lists, 50)) + "**", ms(percentile(r.lists, 90)),
			ms(percentile(r.cached, 50)), ms(percentile(r.cached, 90))})
	}
	sec.table([]string{"datastore", "creates/s", "create p50", "create p99", "list 2000 p50", "list p90", "list rv=0 p50", "list rv=0 p90"}, table)
}

// pgVersion is the major version of the PostgreSQL the benchmark runs.
func pgVersion(t *testing.T) string {
	dir, err := cluster.PostgresBinDir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Base(filepath.Dir(dir))
}
