package robustness

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/anishathalye/porcupine"
	"k8s.io/apimachinery/pkg/watch"
)

// linearizable checks the history against the model; a check that runs out
// of time counts as a failure too, since it proved nothing.
func linearizable(history []porcupine.Operation, timeout time.Duration) (string, porcupine.LinearizationInfo) {
	res, info := porcupine.CheckOperationsVerbose(model.ToModel(), history, timeout)
	switch res {
	case porcupine.Ok:
		return "", info
	case porcupine.Illegal:
		return "the history is not linearizable", info
	}
	return fmt.Sprintf("porcupine could not decide within %v whether the history is linearizable", timeout), info
}

// finalState is what a quorum read of each key returned after the last recovery.
type finalState map[string]output

// lostWrites finds acknowledged writes the final state contradicts: a key
// that exists must carry the newest acknowledged write or a later one, and
// a key that is gone must have had a delete that could come after its
// newest acknowledged write.
func lostWrites(history []porcupine.Operation, final finalState) []string {
	type write struct {
		value string
		rv    int64
		call  int64
	}
	newest := map[string]write{}
	for _, op := range history {
		in, out := op.Input.(input), op.Output.(output)
		if out.Unknown || out.Result != "" || (in.Kind != opCreate && in.Kind != opUpdate) {
			continue
		}
		rv, err := strconv.ParseInt(out.RV, 10, 64)
		if err != nil {
			continue
		}
		if w, ok := newest[in.Key]; !ok || rv > w.rv {
			newest[in.Key] = write{value: in.Value, rv: rv, call: op.Call}
		}
	}
	var problems []string
	for key, w := range newest {
		got, ok := final[key]
		if !ok {
			continue // not read at the end: nothing to compare
		}
		if got.Exists {
			rv, _ := strconv.ParseInt(got.RV, 10, 64)
			if rv < w.rv {
				problems = append(problems, fmt.Sprintf("lost write: %s=%s was acknowledged at rv %d, the end state is %s at rv %d", key, w.value, w.rv, got.Value, rv))
			}
			continue
		}
		deleted := false
		for _, op := range history {
			in, out := op.Input.(input), op.Output.(output)
			if in.Key == key && in.Kind == opDelete && (out.Unknown || out.Result == "") && op.Return > w.call {
				deleted = true
				break
			}
		}
		if !deleted {
			problems = append(problems, fmt.Sprintf("lost write: %s=%s was acknowledged at rv %d and the key is gone, with no delete after it", key, w.value, w.rv))
		}
	}
	sort.Strings(problems)
	return problems
}

// written is every value a client sent in a create or update, answered or not.
func written(history []porcupine.Operation) map[string]bool {
	values := map[string]bool{}
	for _, op := range history {
		if in := op.Input.(input); in.Kind == opCreate || in.Kind == opUpdate {
			values[in.Value] = true
		}
	}
	return values
}

// watchSpan is what one watcher covered: events from start (exclusive) to
// end (inclusive), except inside the gaps its relists explain.
type watchSpan struct {
	server     string
	events     []event
	start, end int64
	gaps       [][2]int64
}

func (w *watcher) span() watchSpan {
	w.mu.Lock()
	defer w.mu.Unlock()
	end := w.last
	if end < 0 {
		end = -end
	}
	return watchSpan{server: w.server, events: append([]event(nil), w.events...), start: w.start, end: end, gaps: append([][2]int64(nil), w.relists...)}
}

func (s watchSpan) covers(rv int64) bool {
	if rv <= s.start || rv > s.end {
		return false
	}
	for _, g := range s.gaps {
		if rv > g[0] && rv <= g[1] {
			return false
		}
	}
	return true
}

// compareWatches holds the watchers against each other and against what
// was written: an event at a version must be the same everywhere, any
// watcher covering that version must have it, and its value must be one a
// client sent.
func compareWatches(spans []watchSpan, sent map[string]bool) []string {
	var problems []string
	seen := map[int64]event{}
	from := map[int64]string{}
	for _, s := range spans {
		for _, e := range s.events {
			if e.Type != string(watch.Deleted) && !sent[e.Value] {
				problems = append(problems, fmt.Sprintf("%s: event %s %s=%q at rv %d carries a value no client sent", s.server, e.Type, e.Key, e.Value, e.RV))
			}
			if other, ok := seen[e.RV]; ok && (other.Key != e.Key || other.Type != e.Type || other.Value != e.Value) {
				problems = append(problems, fmt.Sprintf("rv %d is %s %s=%q on %s but %s %s=%q on %s", e.RV, e.Type, e.Key, e.Value, s.server, other.Type, other.Key, other.Value, from[e.RV]))
			}
			if _, ok := seen[e.RV]; !ok {
				seen[e.RV], from[e.RV] = e, s.server
			}
		}
	}
	for _, s := range spans {
		have := map[int64]bool{}
		for _, e := range s.events {
			have[e.RV] = true
		}
		for rv, e := range seen {
			if s.covers(rv) && !have[rv] {
				problems = append(problems, fmt.Sprintf("%s: missed %s %s=%q at rv %d that %s saw", s.server, e.Type, e.Key, e.Value, rv, from[rv]))
			}
		}
	}
	sort.Strings(problems)
	return problems
}

// checkOrder finds events out of order or repeated, and acknowledged writes
// the watcher covered but did not see, or saw with another key or value.
func checkOrder(s watchSpan, acked map[string]ackedWrite) []string {
	var problems []string
	byRV := map[int64]event{}
	var prev int64
	for i, e := range s.events {
		if e.RV <= prev {
			problems = append(problems, fmt.Sprintf("%s: event %d (%s %s rv %d) after rv %d: out of order or repeated", s.server, i, e.Type, e.Key, e.RV, prev))
		}
		prev = e.RV
		byRV[e.RV] = e
	}
	for value, a := range acked {
		rv, err := strconv.ParseInt(a.rv, 10, 64)
		if err != nil || !s.covers(rv) {
			continue
		}
		e, ok := byRV[rv]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: missed the acknowledged write %s=%s at rv %d", s.server, a.key, value, rv))
		case e.Key != a.key || e.Value != value || e.Type == string(watch.Deleted):
			problems = append(problems, fmt.Sprintf("%s: rv %d is %s %s=%s in the watch, a write of %s=%s in the history", s.server, rv, e.Type, e.Key, e.Value, a.key, value))
		}
	}
	sort.Strings(problems)
	return problems
}
