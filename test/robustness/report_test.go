//go:build robustness

package robustness

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/k3ha/k3ha/test/report"
)

// repoRoot is two levels up from this package, where go test runs.
func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..")
}

// recordedOp is one operation as saved for a failed run.
type recordedOp struct {
	Client int     `json:"client"`
	CallMS float64 `json:"callMs"`
	// ReturnMS is absent for an operation of unknown outcome.
	ReturnMS *float64 `json:"returnMs,omitempty"`
	Input    input    `json:"input"`
	Output   output   `json:"output"`
}

// saveFailure writes what is needed to understand a failed run: the
// problems, the seed, the history, porcupine's visualisation, what each
// watcher saw and every log of the cluster. It returns the directory.
func saveFailure(t *testing.T, s *system, scenario string, seed int64, history []porcupine.Operation, info porcupine.LinearizationInfo,
	illegal bool, spans []watchSpan, problems []string) string {
	root := *flagOut
	if root == "" {
		root = filepath.Join(repoRoot(), "bin", "robustness-failures")
	}
	dir := filepath.Join(root, fmt.Sprintf("%s-%s-%s-%d", time.Now().UTC().Format("20060102-150405"), s.name, scenario, seed))
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Errorf("saving the failed run: %v", err)
		return dir
	}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Errorf("saving %s: %v", name, err)
		}
	}
	write("problems.txt", []byte(fmt.Sprintf("seed %d (replay: -robustness.seed=%d)\n\n%s\n", seed, seed, strings.Join(problems, "\n"))))
	ops := make([]recordedOp, len(history))
	for i, op := range history {
		ops[i] = recordedOp{Client: op.ClientId, CallMS: float64(op.Call) / 1e6, Input: op.Input.(input), Output: op.Output.(output)}
		if out := op.Output.(output); !out.Unknown {
			ret := float64(op.Return) / 1e6
			ops[i].ReturnMS = &ret
		}
	}
	js, _ := json.MarshalIndent(ops, "", " ")
	write("history.json", js)
	type savedWatch struct {
		Server  string     `json:"server"`
		Start   int64      `json:"start"`
		End     int64      `json:"end"`
		Relists [][2]int64 `json:"relists"`
		Events  []event    `json:"events"`
	}
	var ws []savedWatch
	for _, sp := range spans {
		ws = append(ws, savedWatch{Server: sp.server, Start: sp.start, End: sp.end, Relists: sp.gaps, Events: sp.events})
	}
	js, _ = json.MarshalIndent(ws, "", " ")
	write("watches.json", js)
	if illegal {
		if err := porcupine.VisualizePath(model.ToModel(), info, filepath.Join(dir, "history.html")); err != nil {
			t.Errorf("porcupine visualisation: %v", err)
		}
	}
	nodes := append([]string(nil), serverDirs(s)...)
	for _, d := range nodes {
		logs, _ := filepath.Glob(filepath.Join(d, "*.log"))
		for _, l := range logs {
			data, err := os.ReadFile(l)
			if err == nil {
				write(filepath.Join("logs", filepath.Base(d)+"-"+filepath.Base(l)), data)
			}
		}
	}
	return dir
}

// serverDirs are the directories holding the cluster's logs.
func serverDirs(s *system) []string {
	var dirs []string
	for _, srv := range s.servers {
		dirs = append(dirs, srv.Dir)
	}
	if s.agent != nil {
		dirs = append(dirs, s.agent.Dir)
	}
	if s.db != nil {
		dirs = append(dirs, s.db.Dir)
	}
	return dirs
}

const (
	resultsSection = "robustness"
	keptRuns       = 30
)

// recordRun adds a passing run as a row of the robustness section of
// RESULTS.md (when -robustness.results names it), keeping the newest rows.
func recordRun(t *testing.T, datastore string, st runStats) {
	if *flagResults == "" {
		return
	}
	data, err := os.ReadFile(*flagResults)
	if err != nil {
		t.Errorf("results: %v", err)
		return
	}
	var rows []string
	if i := strings.Index(string(data), report.Marker(resultsSection, "start")); i >= 0 {
		for _, line := range strings.Split(string(data[i:]), "\n") {
			if line == report.Marker(resultsSection, "end") {
				break
			}
			if strings.HasPrefix(line, "| 20") {
				rows = append(rows, line)
			}
		}
	}
	profile := "short (each fault once)"
	if *flagDuration > 0 {
		profile = "random faults for " + flagDuration.String()
	}
	rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s | %d | %d | %d | %d / %d / %d | %d / %d | **0** | %s |",
		time.Now().UTC().Format("2006-01-02 15:04"), datastore, profile, st.took.Round(time.Second), st.seed, *flagClients,
		len(st.faults), st.ops-st.failed-st.unknown, st.failed, st.unknown, st.events, st.relists,
		report.Commit(repoRoot(), "bench/RESULTS.md")))
	if len(rows) > keptRuns {
		rows = rows[len(rows)-keptRuns:]
	}
	faults, ops := 0, 0
	for _, r := range rows {
		var n, answered, refused, unknown int
		cols := strings.Split(r, "|")
		if len(cols) > 9 {
			fmt.Sscanf(strings.TrimSpace(cols[7]), "%d", &n)
			fmt.Sscanf(strings.TrimSpace(cols[8]), "%d / %d / %d", &answered, &refused, &unknown)
		}
		faults += n
		ops += answered + refused + unknown
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## Robustness: linearizable histories and complete watches under faults\n\n")
	fmt.Fprintf(&b, "- machine: %s\n", report.Machine())
	fmt.Fprintf(&b, "- command: `%s`\n", robustnessCommand())
	b.WriteString(`
Each row is one passing run (test/robustness): clients (about 10 operations a second each, on 8
ConfigMaps: quorum get, list, create, update and delete with a resourceVersion precondition) spread
over every server's API, one watcher per server, faults injected one at a time with recovery in
between. Its history was checked by porcupine against a register-with-version model; every
acknowledged write was found at the end; every watch was in order, without repeats, and had every
change it covered. A run with an anomaly fails and saves its history instead of adding a row.
Operations: answered / refused (conflict, exists, not found) / of unknown outcome (timeouts, resets).
`)
	fmt.Fprintf(&b, "\nThe last %d runs: %d histories checked, %d operations, %d faults injected and recovered, **0 anomalies**.\n", len(rows), len(rows), ops, faults)
	b.WriteString(`
| date (UTC) | datastore | profile | took | seed | clients | faults | operations answered / refused / unknown | watch events / relists | anomalies | commit |
|---|---|---|---|---|---|---|---|---|---|---|
`)
	b.WriteString(strings.Join(rows, "\n") + "\n")
	if err := report.ReplaceSection(*flagResults, resultsSection, b.String(), func() string { return "" }); err != nil {
		t.Errorf("results: %v", err)
	}
}

// robustnessCommand is what reproduces the runs.
func robustnessCommand() string {
	if *flagDuration > 0 {
		return "make robustness ROBUSTNESS_DURATION=" + flagDuration.String()
	}
	c := "go test -tags robustness -count=1 -p 1 -v ./test/robustness/"
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() != "" {
		c += " -run '" + f.Value.String() + "'"
	}
	return c + " -args -robustness.results=$PWD/bench/RESULTS.md"
}
