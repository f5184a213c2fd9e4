package gomem

import (
	"math"
	"slices"
	"testing"
)

func TestDecide(t *testing.T) {
	const gib = int64(1) << 30
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	cases := []struct {
		name     string
		env      map[string]string
		memTotal int64
		want     Settings
	}{
		{"defaults: GC percent 75, limit half the machine", nil, 4 * gib,
			Settings{GCPercent: 75, GCFrom: "default", MemoryLimit: 2 * gib, LimitFrom: "default"}},
		{"machine memory unknown: no limit", nil, 0,
			Settings{GCPercent: 75, GCFrom: "default", MemoryLimit: math.MaxInt64, LimitFrom: "default"}},
		{"GOGC wins", map[string]string{"GOGC": "80"}, 4 * gib,
			Settings{GCPercent: 80, GCFrom: "GOGC", MemoryLimit: 2 * gib, LimitFrom: "default"}},
		{"GOGC=off is the runtime's", map[string]string{"GOGC": "off"}, 4 * gib,
			Settings{GCPercent: -1, GCFrom: "GOGC", MemoryLimit: 2 * gib, LimitFrom: "default"}},
		{"GOMEMLIMIT wins", map[string]string{"GOMEMLIMIT": "1GiB"}, 4 * gib,
			Settings{GCPercent: 75, GCFrom: "default", MemoryLimit: -1, LimitFrom: "GOMEMLIMIT"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Decide(env(c.env), c.memTotal); got != c.want {
				t.Fatalf("Decide = %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestParseMemTotal(t *testing.T) {
	got, err := parseMemTotal([]byte("MemTotal:       24634412 kB\nMemFree:         1000 kB\n"))
	if err != nil || got != 24634412<<10 {
		t.Fatalf("parseMemTotal = %d, %v", got, err)
	}
	if _, err := parseMemTotal([]byte("MemFree: 1 kB\n")); err == nil {
		t.Fatal("no MemTotal line: want an error")
	}
	if _, err := parseMemTotal([]byte("MemTotal: lots\n")); err == nil {
		t.Fatal("unparsable MemTotal: want an error")
	}
}

func TestBinaryCode(t *testing.T) {
	maps := `00400000-032d3000 r--p 00000000 fd:01 1234 /usr/local/bin/k3ha
032d3000-09162000 r-xp 02ed3000 fd:01 1234 /usr/local/bin/k3ha
09162000-0fefc000 r--p 08d62000 fd:01 1234 /usr/local/bin/k3ha
0fefc000-10104000 rw-p 0fafb000 fd:01 1234 /usr/local/bin/k3ha
10104000-12345000 rw-p 00000000 00:00 0
7f0000000000-7f0000001000 r-xp 00000000 fd:01 999 /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000002000-7f0000003000 r-xp 00000000 08:02 1234 /mnt/other/file
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
`
	got := binaryCode([]byte(maps), "fd:01", 1234)
	want := []codeRange{{0x400000, 0x32d3000, 0}, {0x32d3000, 0x9162000, 0x2ed3000}, {0x9162000, 0xfefc000, 0x8d62000}}
	if !slices.Equal(got, want) {
		t.Fatalf("binaryCode = %x, want the three read-only mappings of the binary only: %x", got, want)
	}
	if got := binaryCode([]byte("garbage\n\n"), "fd:01", 1234); len(got) != 0 {
		t.Fatalf("unparsable maps gave %x", got)
	}
}

// WarmBinary's reads are not checked here: the test binary was just
// written, and its dirty pages stay in the page cache whatever it does. The
// e2e single-server test requires its log line on stop.
func TestPageOutBinary(t *testing.T) {
	before, after, err := pageOutBinary()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("resident pages of the binary: %d KiB before paging out, %d KiB after", before>>10, after>>10)
	if before <= 0 || after >= before {
		t.Fatalf("the test binary's resident pages: %d before paging out, %d after", before, after)
	}
	if len(pagedOut.ranges) == 0 {
		t.Fatal("the paged-out ranges are not recorded for WarmBinary")
	}
}
