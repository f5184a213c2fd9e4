// Package report writes measured figures into bench/RESULTS.md: each
// benchmark or long test run owns a section between markers and replaces
// only that, with the machine, load and commit that produced it.
package report

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// ReplaceSection puts body between the section's markers in the file at
// path. A missing file is first made from initial (the header and every
// known section as a placeholder); missing markers are appended.
func ReplaceSection(path, name, body string, initial func() string) error {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		data, err = []byte(initial()), nil
	}
	if err != nil {
		return err
	}
	start, end := Marker(name, "start")+"\n", Marker(name, "end")
	text := string(data)
	i := strings.Index(text, start)
	j := strings.Index(text, end)
	if i < 0 || j < i {
		text = strings.TrimRight(text, "\n") + "\n\n" + start + body + end + "\n"
	} else {
		text = text[:i+len(start)] + body + text[j:]
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// Marker is the HTML comment that opens ("start") or closes ("end") a section.
func Marker(name, which string) string { return "<!-- " + name + ":" + which + " -->" }

var machineOnce = sync.OnceValue(describeMachine)

// Machine describes the host: CPUs, memory, kernel, CPU model and Go.
func Machine() string { return machineOnce() }

func describeMachine() string {
	mem := "?"
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
					mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
				}
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	model := "?"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	// runtime.NumCPU honours the affinity mask, like nproc.
	return fmt.Sprintf("nproc %d, %s RAM, kernel %s, %s, %s", runtime.NumCPU(), mem,
		strings.TrimSpace(string(kernel)), model, runtime.Version())
}

// LoadAvg is the 1, 5 and 15 minute load average.
func LoadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// Commit names HEAD of the repository at root and says whether the working
// tree (which the binary was built from) differs from it; the results file
// itself changes with every run, so it does not count.
func Commit(root, resultsFile string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no", "--", ".", ":!"+resultsFile).Output()
	if err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += " (plus uncommitted changes in the working tree)"
	}
	return c
}
