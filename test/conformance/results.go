//go:build conformance

package conformance

import (
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// junitSuites is what ginkgo's --junit-report writes.
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name  string      `xml:"name,attr"`
	Cases []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name    string        `xml:"name,attr"`
	Status  string        `xml:"status,attr"`
	Time    string        `xml:"time,attr"`
	Failure *junitMessage `xml:"failure"`
	Error   *junitMessage `xml:"error"`
	Skipped *junitMessage `xml:"skipped"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// results are the specs of one run.
type results struct {
	ran     []string
	failed  []failure
	skipped int
}

type failure struct{ spec, reason string }

func (r results) passed() int { return len(r.ran) - len(r.failed) }

// readJUnit counts the specs of the reports: suite-level entries
// ([SynchronizedBeforeSuite] and the like) are not specs.
func readJUnit(paths ...string) (results, error) {
	var r results
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return r, fmt.Errorf("junit report: %w", err)
		}
		var s junitSuites
		if err := xml.Unmarshal(data, &s); err != nil {
			return r, fmt.Errorf("junit report %s: %w", p, err)
		}
		for _, suite := range s.Suites {
			for _, c := range suite.Cases {
				if !strings.HasPrefix(c.Name, "[It]") {
					if c.Failure != nil || c.Error != nil {
						r.failed = append(r.failed, failure{c.Name, firstLine(c.Failure, c.Error)})
					}
					continue
				}
				if c.Status == "skipped" || (c.Skipped != nil && c.Failure == nil) {
					r.skipped++
					continue
				}
				r.ran = append(r.ran, c.Name)
				if c.Failure != nil || c.Error != nil || c.Status == "failed" {
					r.failed = append(r.failed, failure{strings.TrimPrefix(c.Name, "[It] "), firstLine(c.Failure, c.Error)})
				}
			}
		}
	}
	slices.SortFunc(r.failed, func(a, b failure) int { return strings.Compare(a.spec, b.spec) })
	return r, nil
}

func firstLine(ms ...*junitMessage) string {
	for _, m := range ms {
		if m == nil {
			continue
		}
		text := strings.TrimSpace(m.Message)
		if text == "" {
			text = strings.TrimSpace(m.Text)
		}
		line, _, _ := strings.Cut(text, "\n")
		return line
	}
	return ""
}

// mergeJUnit writes the reports' suites as one file.
func mergeJUnit(out string, paths ...string) error {
	var all junitSuites
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var s junitSuites
		if err := xml.Unmarshal(data, &s); err != nil {
			return err
		}
		all.Suites = append(all.Suites, s.Suites...)
	}
	data, err := xml.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, append([]byte(xml.Header), data...), 0o644); err != nil {
		return err
	}
	for _, p := range paths {
		os.Remove(p)
	}
	return nil
}

// writeResults puts this topology's section into RESULTS.md, keeping the
// other topology's.
func writeResults(path, topology string, servers int, r results, took time.Duration) error {
	commit, _ := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	start, end := fmt.Sprintf("<!-- conformance-%ds:start -->", servers), fmt.Sprintf("<!-- conformance-%ds:end -->", servers)
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n## %s\n\n", start, topology)
	fmt.Fprintf(&b, "- date: %s (specs took %v)\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), took.Round(time.Minute))
	fmt.Fprintf(&b, "- commit: %s\n", strings.TrimSpace(string(commit)))
	fmt.Fprintf(&b, "- command: `make conformance CONFORMANCE_SERVERS=%d`\n", servers)
	fmt.Fprintf(&b, "- ran %d specs: **%d passed, %d failed**; %d skipped by the focus\n", len(r.ran), r.passed(), len(r.failed), r.skipped)
	fmt.Fprintf(&b, "- JUnit: conformance/junit-%ds.xml\n\n", servers)
	if len(r.failed) > 0 {
		b.WriteString("| failed spec | reason (first line) |\n|---|---|\n")
		for _, f := range r.failed {
			fmt.Fprintf(&b, "| %s | %s |\n", cell(f.spec), cell(f.reason))
		}
		b.WriteString("\n")
	}
	b.WriteString(end + "\n")

	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	text := string(old)
	if text == "" {
		text = "# Upstream conformance results\n\nWritten by `make conformance` (test/conformance); one section per topology.\n\n"
	}
	if i, j := strings.Index(text, start), strings.Index(text, end); i >= 0 && j > i {
		text = text[:i] + b.String() + text[j+len(end)+1:]
	} else {
		text += b.String()
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

func cell(s string) string { return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s) }
