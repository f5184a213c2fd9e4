//go:build bench

package bench

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/k3ha/k3ha/test/report"
)

// resultsFile is relative to the package directory, where go test runs.
const resultsFile = "RESULTS.md"

// sectionOrder fixes where each benchmark's section sits in a new
// RESULTS.md; coldbuild is written by coldbuild.sh.
var sectionOrder = []string{"single-ready", "single-rss", "single-configmaps",
	"ha-join", "ha-failover", "ha-configmaps", "single-build", "coldbuild",
	"migrate-time", "datastores", "nodes-ready", "nodes-pods", "nodes-rss", "packaged", "ingress", "onefile", "snapshots", "pod-network", "network-policy", "upstream"}

const resultsHeader = `# k3ha benchmark results

Written by ` + "`make bench`" + ` (bench/*_test.go) and bench/coldbuild.sh; each
section is replaced only by a rerun of its own benchmark. The machine is shared
and has two cores, so absolute times move from run to run: compare ratios
(restart/fresh, 16/1 clients, 3 servers/1) and look at the samples, not only
the median.
Goals for a single server: /readyz within 3 s of process start, at most 300 MB RSS.
Goals for three servers on embedded etcd: a join under 10 s, a write outage
under 3 s after SIGKILL of the leader's server (default settings), no server
over 400 MB RSS.
Goals for migration: 10,000 objects from SQLite to etcd in under 10 s.
Goals for nodes: Node Ready under 10 s of the agent's start, a pod Running
under 5 s of its create, an agent under 150 MB.
Goals for snapshots of 10,000 objects: save and verify under 5 s, restore
under 10 s.
Goals for the packaged components: cluster DNS answering within 10 s of the
first server's start, the components together under 150 MB on a node.
`

// section collects one benchmark's figures and replaces its part of
// RESULTS.md when the test passed, so a failed run never leaves half-true numbers.
type section struct {
	name  string
	title string
	begin time.Time
	load  string
	body  bytes.Buffer
}

func newSection(name, title string) *section {
	return &section{name: name, title: title, begin: time.Now(), load: report.LoadAvg()}
}

// newResults is a new RESULTS.md: the header and every known section as a
// placeholder, in order.
func newResults() string {
	var b strings.Builder
	b.WriteString(resultsHeader)
	for _, n := range sectionOrder {
		fmt.Fprintf(&b, "\n%s\n(not run yet)\n%s\n", report.Marker(n, "start"), report.Marker(n, "end"))
	}
	return b.String()
}

func (s *section) printf(format string, args ...any) {
	fmt.Fprintf(&s.body, format, args...)
}

// table writes a Markdown table.
func (s *section) table(header []string, rows [][]string) {
	s.printf("\n| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat("---|", len(header)))
	for _, r := range rows {
		s.printf("| %s |\n", strings.Join(r, " | "))
	}
	s.printf("\n")
}

// write is deferred by each benchmark; it also logs the section so a run's
// output shows the figures even when RESULTS.md is not looked at.
func (s *section) write(t *testing.T) {
	if t.Failed() || t.Skipped() {
		t.Logf("not updating section %s of %s: the test did not pass", s.name, resultsFile)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n", s.title)
	fmt.Fprintf(&b, "- date: %s (took %s)\n", s.begin.UTC().Format("2006-01-02 15:04 MST"), time.Since(s.begin).Round(time.Second))
	fmt.Fprintf(&b, "- machine: %s\n", report.Machine())
	fmt.Fprintf(&b, "- load average before/after: %s / %s\n", s.load, report.LoadAvg())
	fmt.Fprintf(&b, "- commit: %s; binary: %s\n", report.Commit(repoRoot(), "bench/"+resultsFile), binVersion)
	fmt.Fprintf(&b, "- command: `%s`\n", command())
	b.Write(s.body.Bytes())
	if err := report.ReplaceSection(resultsFile, s.name, strings.TrimRight(b.String(), "\n")+"\n", newResults); err != nil {
		t.Errorf("updating %s: %v", resultsFile, err)
		return
	}
	t.Logf("section %s of %s:\n%s", s.name, resultsFile, b.String())
}

// command is what reproduces the figures: make bench, plus any -run filter.
func command() string {
	c := "make bench"
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() != "" {
		c = "go test -tags bench -count=1 -p 1 -timeout 60m -v -run '" + f.Value.String() + "' ./bench/"
	}
	return c
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Dir(wd)
}

// Statistics over a handful of samples: exact order statistics, no interpolation.

func sortedCopy[T int64 | float64 | time.Duration](xs []T) []T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	s := sortedCopy(xs)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile is the nearest-rank percentile of sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

// Formatting.

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
func ms(d time.Duration) string   { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
func mb(b int64) string           { return fmt.Sprintf("%.0f MB", float64(b)/1e6) }

func secsList(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%.2f", d.Seconds())
	}
	return strings.Join(parts, ", ")
}

// Process figures from /proc.

// memInfo is a process's memory as the kernel sees it, in bytes. RssFile is
// mostly the mapped binary, which is shared and reclaimable; RssAnon is what
// the process really costs.
type memInfo struct {
	RSS, Anon, File, Shmem, HWM int64
	// FilePmd is file memory mapped in 2 MB pieces: with large page-cache
	// folios (ext4 on recent kernels) one touched byte maps the whole 2 MB.
	FilePmd int64
}

func readMem(pid int) (memInfo, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memInfo{}, err
	}
	var m memInfo
	fields := map[string]*int64{"VmRSS": &m.RSS, "RssAnon": &m.Anon, "RssFile": &m.File, "RssShmem": &m.Shmem, "VmHWM": &m.HWM}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if p := fields[k]; ok && p != nil {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return memInfo{}, fmt.Errorf("%s in /proc/%d/status: %w", k, pid, err)
			}
			*p = kb * 1024
		}
	}
	if m.RSS == 0 {
		return memInfo{}, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	// Optional: older kernels lack the field.
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "FilePmdMapped:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				m.FilePmd = kb * 1024
			}
		}
	}
	return m, nil
}

// userHZ is the unit of /proc/<pid>/stat times; 100 on every Linux build
// that matters, and reading it properly would need cgo (sysconf).
const userHZ = 100

// cpuTime is the user+system CPU a process has used so far.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may contain spaces; the fields after it are fixed.
	i := bytes.LastIndexByte(data, ')')
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}
