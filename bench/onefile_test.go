//go:build bench

package bench

// The one file: how big bin/k3ha is, how long a node's first unpacking of
// what it carries takes, and start to ready with the unpacked directory
// already there against a start that unpacks first.

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/k3ha/k3ha/internal/payload"
	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

const onefileRuns = 5

var unpackTook = regexp.MustCompile(`msg="payload unpacked" .*took=(\S+)`)

func TestOneFile(t *testing.T) {
	sec := newSection("onefile", "One file: size of bin/k3ha, first unpacking, start with the payload unpacked")
	defer sec.write(t)
	st, err := os.Stat(k3haBin)
	if err != nil {
		t.Fatal(err)
	}
	p, err := payload.Open(k3haBin)
	if err != nil {
		t.Fatal(err)
	}
	var unpackedSize int64
	for _, f := range p.Manifest.Files {
		unpackedSize += f.Size
	}

	// Unpacking alone, into new data dirs, as a node's first start does.
	var unpack []time.Duration
	for i := 0; i < onefileRuns; i++ {
		dir := t.TempDir()
		begin := time.Now()
		if _, err := p.Unpack(dir); err != nil {
			t.Fatal(err)
		}
		unpack = append(unpack, time.Since(begin))
	}
	// And checking an unpacked dir, as every later start does.
	dir := t.TempDir()
	if _, err := p.Unpack(dir); err != nil {
		t.Fatal(err)
	}
	var verify []time.Duration
	for i := 0; i < onefileRuns; i++ {
		begin := time.Now()
		if _, err := p.Unpack(dir); err != nil {
			t.Fatal(err)
		}
		verify = append(verify, time.Since(begin))
	}

	// A server with its agent: fresh (unpacks) and restarted (unpacked already).
	n := harness.NewNetwork(t)
	var fresh, restart []time.Duration
	var inLog []time.Duration
	for i := 0; i < onefileRuns; i++ {
		s := cluster.NewServer(t, k3haBin, n.AddHost(t, fmt.Sprintf("of%d", i)))
		r := timedStart(t, s)
		fresh = append(fresh, r.ready)
		if m := unpackTook.FindStringSubmatch(s.Proc.Log()); m != nil {
			if d, err := time.ParseDuration(m[1]); err == nil {
				inLog = append(inLog, d)
			}
		}
		time.Sleep(settleBefore)
		s.Stop(stopTimeout)
		r = timedStart(t, s)
		restart = append(restart, r.ready)
		s.Stop(stopTimeout)
	}

	sec.printf("\n- bin/k3ha: **%s**: k3ha's own code %s, the payload %s (%d files, %s unpacked, zstd)\n",
		mb(st.Size()), mb(p.CodeSize()), mb(st.Size()-p.CodeSize()), len(p.Manifest.Files), mb(unpackedSize))
	sec.table([]string{"what", "runs", "median", "min", "max", "samples (s)"}, [][]string{
		{"unpack into a new data dir (payload.Unpack)", fmt.Sprint(len(unpack)), "**" + secs(median(unpack)) + "**", secs(slices.Min(unpack)), secs(slices.Max(unpack)), secsList(unpack)},
		{"check an unpacked dir (every later start)", fmt.Sprint(len(verify)), secs(median(verify)), secs(slices.Min(verify)), secs(slices.Max(verify)), secsList(verify)},
		{"first unpacking inside a server's start (log `took=`)", fmt.Sprint(len(inLog)), secs(median(inLog)), secs(slices.Min(inLog)), secs(slices.Max(inLog)), secsList(inLog)},
		{"server with agent, fresh: start to readyz (unpacks)", fmt.Sprint(len(fresh)), "**" + secs(median(fresh)) + "**", secs(slices.Min(fresh)), secs(slices.Max(fresh)), secsList(fresh)},
		{"server with agent, restart: start to readyz (unpacked)", fmt.Sprint(len(restart)), "**" + secs(median(restart)) + "**", secs(slices.Min(restart)), secs(slices.Max(restart)), secsList(restart)},
	})
	sec.printf("- goal: first unpacking under 2 s: median **%.2f×** the goal\n", median(unpack).Seconds()/2)
	sec.printf("- a server's readyz waits for its node, which unpacks (first start) or checks (later starts) before\n")
	sec.printf("  containerd starts; restart/fresh ratio of the medians: **%.2f** (fresh also makes certificates and a datastore)\n",
		median(restart).Seconds()/median(fresh).Seconds())
}
