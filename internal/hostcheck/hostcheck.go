// Package hostcheck checks that a machine can run a k3ha node: the kernel
// and its cgroups, the few programs k3ha takes from the distribution, the
// ports, and the data dir's disk. `k3ha check-config` prints every check;
// `k3ha server` and `k3ha agent` run the fatal ones at start and refuse with
// the same message.
package hostcheck

import (
	"fmt"
	"io"
	"strings"
)

// Status is a check's outcome.
type Status int

const (
	Pass Status = iota
	Warn
	Fail
)

func (s Status) String() string { return [...]string{"pass", "warn", "fail"}[s] }

// Result is one check's outcome: what was found and, unless it passed,
// what to do.
type Result struct {
	Section string
	Name    string
	Status  Status
	Detail  string
	Fix     string
}

// Host is where the checks look; tests point it at fake files.
type Host struct {
	Root     string               // prefix of /proc and /sys, "" for the real ones
	LookPath func(string) error   // finds a program on PATH
	Listen   func(port int) error // binds a TCP port and releases it
	DataDir  string               // the data dir whose disk is checked ("" skips)
	Fsync    func(dir string) (p99 float64, err error)
}

// Programs k3ha needs from the distribution, with how to get them.
var programs = []struct{ name, why, fix string }{
	{"iptables", "kube-proxy and pod networking program packet filtering with it", "install iptables (Debian/Ubuntu: apt-get install iptables; Fedora: dnf install iptables-nft)"},
	{"mount", "the kubelet mounts volumes with it", "install util-linux (Debian/Ubuntu: apt-get install mount)"},
}

// Ports a server listens on.
var serverPorts = []struct {
	port int
	what string
}{{6443, "API and supervisor"}, {2379, "etcd clients"}, {2380, "etcd peers"}, {10250, "kubelet"}}

// All runs every check.
func (h Host) All() []Result {
	var out []Result
	out = append(out, h.Programs()...)
	out = append(out, h.Cgroups())
	out = append(out, h.Kernel()...)
	out = append(out, h.Network()...)
	out = append(out, h.Ports()...)
	out = append(out, h.Disk()...)
	return out
}

// Fatal runs the checks a node cannot start without and returns an error
// listing every failed one; nil when all passed.
func (h Host) Fatal() error {
	var failed []string
	checks := append(h.Programs(), h.Cgroups(), h.Overlay())
	for _, r := range checks {
		if r.Status == Fail {
			failed = append(failed, fmt.Sprintf("%s: %s; %s", r.Name, r.Detail, r.Fix))
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("this machine cannot run a k3ha node (see `k3ha check-config`):\n  %s", strings.Join(failed, "\n  "))
}

// Print writes the results by section and a last STATUS line; it returns
// the number of failed checks.
func Print(w io.Writer, results []Result) int {
	section := ""
	fails, warns := 0, 0
	for _, r := range results {
		if r.Section != section {
			section = r.Section
			fmt.Fprintf(w, "\n%s:\n", section)
		}
		fmt.Fprintf(w, "- %s: %s: %s", r.Name, r.Status, r.Detail)
		if r.Status != Pass && r.Fix != "" {
			fmt.Fprintf(w, " (%s)", r.Fix)
		}
		fmt.Fprintln(w)
		switch r.Status {
		case Fail:
			fails++
		case Warn:
			warns++
		}
	}
	if fails > 0 {
		fmt.Fprintf(w, "\nSTATUS: fail (%d failed, %d warnings)\n", fails, warns)
	} else {
		fmt.Fprintf(w, "\nSTATUS: pass (%d warnings)\n", warns)
	}
	return fails
}

// Programs checks the programs k3ha takes from the distribution.
func (h Host) Programs() []Result {
	var out []Result
	for _, p := range programs {
		r := Result{Section: "Programs", Name: p.name, Detail: "found"}
		if err := h.LookPath(p.name); err != nil {
			r.Status, r.Detail, r.Fix = Fail, "not on PATH: "+p.why, p.fix
		}
		out = append(out, r)
	}
	return out
}
