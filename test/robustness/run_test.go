//go:build robustness

package robustness

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

const (
	numKeys = 8                      // ConfigMaps the clients share: few, so they contend
	pace    = 100 * time.Millisecond // between one client's operations: about 10 per second each
	settle  = 5 * time.Second        // of load before the first fault and after each recovery
	// checkTimeout bounds porcupine; a history it cannot decide fails the run.
	checkTimeout = 10 * time.Minute
)

// runStats is what a run did, for the log and RESULTS.md.
type runStats struct {
	seed                 int64
	took                 time.Duration
	faults               []string
	ops, failed, unknown int
	events, relists      int
	checkTook            time.Duration
}

// runScenarios runs the main scenario (every fault once in order, or
// random faults for -robustness.duration), then each regression, on the
// same cluster; each starts from ConfigMaps of its own.
func runScenarios(t *testing.T, s *system, faults []fault, regressions []regression) {
	seed := *flagSeed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	if stats, ok := runScenario(t, s, "main", seed, faults, *flagDuration); ok {
		recordRun(t, s.name, stats)
	}
	for i, r := range regressions {
		t.Logf("regression %d: %s", i+1, r.defect)
		runScenario(t, s, fmt.Sprintf("regression%d", i+1), r.seed, r.faults, 0)
	}
}

// runScenario runs the clients and watchers while it injects faults, then
// checks what they saw; ok tells whether it found nothing wrong.
func runScenario(t *testing.T, s *system, name string, seed int64, faults []fault, duration time.Duration) (runStats, bool) {
	t.Logf("%s: seed %d: replay with -robustness.seed=%d", name, seed, seed)
	rng := rand.New(rand.NewSource(seed))
	keys := make([]string, numKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s-%d", name, i)
	}
	begin := time.Now()
	rec := newRecorder()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var clients, watches sync.WaitGroup
	for i := range *flagClients {
		w := &worker{id: i, client: s.servers[i%len(s.servers)].Client(), rec: rec,
			rng: rand.New(rand.NewSource(seed + int64(i) + 1)), keys: keys, pace: pace}
		clients.Go(func() { w.run(ctx) })
	}
	watchCtx, stopWatches := context.WithCancel(context.Background())
	defer stopWatches()
	var watchers []*watcher
	for _, srv := range s.servers {
		w := &watcher{server: srv.Name, client: watchClient(t, srv)}
		watchers = append(watchers, w)
		watches.Go(func() { w.run(watchCtx) })
	}

	stats := runStats{seed: seed}
	holdUntil(time.Now().Add(settle))
	for i := 0; ; i++ {
		var f fault
		switch {
		case duration == 0 && i < len(faults):
			f = faults[i]
		case duration > 0 && time.Since(begin) < duration:
			f = faults[rng.Intn(len(faults))]
		}
		if f.run == nil {
			break
		}
		t.Logf("%s: fault %d at %s: %s", name, i+1, time.Since(begin).Round(time.Second), f.name)
		f.run(s)
		s.waitHealthy()
		stats.faults = append(stats.faults, f.name)
		holdUntil(time.Now().Add(settle))
	}
	stop()
	clients.Wait()
	problems := waitWatchesCaughtUp(t, watchers, rec)
	stopWatches()
	watches.Wait()
	final := finalReads(t, s, rec, keys)
	stats.took = time.Since(begin)

	history := rec.history()
	spans := make([]watchSpan, len(watchers))
	for i, w := range watchers {
		spans[i] = w.span()
		stats.events += len(spans[i].events)
		stats.relists += len(spans[i].gaps)
		if len(w.errs) > 0 {
			t.Logf("%s: watch through %s ended %d times, last: %s", name, w.server, len(w.errs), w.errs[len(w.errs)-1])
		}
	}
	for _, op := range history {
		out := op.Output.(output)
		stats.ops++
		switch {
		case out.Unknown:
			stats.unknown++
		case out.Result != "":
			stats.failed++
		}
	}
	checkStart := time.Now()
	lin, info := linearizable(history, checkTimeout)
	stats.checkTook = time.Since(checkStart)
	if lin != "" {
		problems = append(problems, lin)
	}
	problems = append(problems, lostWrites(history, final)...)
	for _, sp := range spans {
		problems = append(problems, checkOrder(sp, rec.ackedWrites())...)
	}
	problems = append(problems, compareWatches(spans, written(history))...)

	t.Logf("%s on %s: %s, %d faults, %d operations (%d refused: conflict, exists or not found; %d of unknown outcome), %d watch events, %d relists; porcupine took %s",
		name, s.name, stats.took.Round(time.Second), len(stats.faults), stats.ops, stats.failed, stats.unknown, stats.events, stats.relists, stats.checkTook.Round(time.Millisecond))
	if len(problems) > 0 {
		dir := saveFailure(t, s, name, seed, history, info, lin != "", spans, problems)
		report := func(line string) {
			t.Errorf("%s", line)
			*s.anomalies = append(*s.anomalies, line)
		}
		for _, p := range problems {
			report(name + ": " + p)
		}
		report(fmt.Sprintf("%s: %d anomalies; history, visualisation and logs in %s; replay with -robustness.seed=%d", name, len(problems), dir, seed))
		return stats, false
	}
	return stats, true
}

// watchClient has no client-side timeout: a watch lasts as long as the
// server keeps it.
func watchClient(t *testing.T, s *cluster.Server) kubernetes.Interface {
	cfg, err := clientcmd.BuildConfigFromFlags(s.URL(), s.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// waitWatchesCaughtUp gives every watcher time to reach the newest
// acknowledged write; one that never does has stalled.
func waitWatchesCaughtUp(t *testing.T, watchers []*watcher, rec *recorder) []string {
	newest := rec.newestAckedRV()
	deadline := time.Now().Add(2 * time.Minute)
	var problems []string
	for _, w := range watchers {
		for w.span().end < newest && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if end := w.span().end; end < newest {
			problems = append(problems, fmt.Sprintf("%s: the watch stalled at rv %d; the newest acknowledged write is rv %d", w.server, end, newest))
		}
	}
	return problems
}

// finalReads reads every key through every server once the cluster has
// healed, into the history; the first server's answers are the end state.
func finalReads(t *testing.T, s *system, rec *recorder, keys []string) finalState {
	final := finalState{}
	for i, srv := range s.servers {
		c := srv.Client()
		for _, k := range keys {
			harness.WaitFor(t, recoverTimeout, fmt.Sprintf("a final read of %s through %s", k, srv.Name), func() (bool, error) {
				call := rec.now()
				cm, err := c.CoreV1().ConfigMaps(namespace).Get(context.Background(), k, metav1.GetOptions{})
				out := output{}
				switch {
				case err == nil:
					out = output{Exists: true, Value: cm.Data["v"], RV: cm.ResourceVersion}
				case outcome(err).Result != resNotFound:
					return false, err
				}
				rec.add(1000+i, input{Kind: opGet, Key: k}, call, out)
				if i == 0 {
					final[k] = out
				}
				return true, nil
			})
		}
	}
	return final
}
