package gomem

import (
	"math"
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
		{"defaults: GC percent 50, limit half the machine", nil, 4 * gib,
			Settings{GCPercent: 50, GCFrom: "default", MemoryLimit: 2 * gib, LimitFrom: "default"}},
		{"machine memory unknown: no limit", nil, 0,
			Settings{GCPercent: 50, GCFrom: "default", MemoryLimit: math.MaxInt64, LimitFrom: "default"}},
		{"GOGC wins", map[string]string{"GOGC": "80"}, 4 * gib,
			Settings{GCPercent: 80, GCFrom: "GOGC", MemoryLimit: 2 * gib, LimitFrom: "default"}},
		{"GOGC=off is the runtime's", map[string]string{"GOGC": "off"}, 4 * gib,
			Settings{GCPercent: -1, GCFrom: "GOGC", MemoryLimit: 2 * gib, LimitFrom: "default"}},
		{"GOMEMLIMIT wins", map[string]string{"GOMEMLIMIT": "1GiB"}, 4 * gib,
			Settings{GCPercent: 50, GCFrom: "default", MemoryLimit: -1, LimitFrom: "GOMEMLIMIT"}},
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
