package gomem

import (
	"context"
	"log/slog"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Apply sets what Decide chose and the environment has not already set,
// then logs what the process runs with (the apiserver's /metrics shows the
// same as go_gc_gogc_percent and go_gc_gomemlimit_bytes).
func Apply(s Settings) {
	if s.GCFrom == "default" {
		debug.SetGCPercent(s.GCPercent)
	}
	if s.LimitFrom == "default" && s.MemoryLimit != math.MaxInt64 {
		debug.SetMemoryLimit(s.MemoryLimit)
	}
	gc, limit := current()
	attrs := []any{"gc-percent", gc, "gc-percent-from", s.GCFrom, "memory-limit-from", s.LimitFrom}
	if limit == math.MaxInt64 {
		attrs = append(attrs, "memory-limit", "none")
	} else {
		attrs = append(attrs, "memory-limit-mib", limit>>20)
	}
	slog.Info("go garbage collector set", attrs...)
}

// current reads the GC percent and memory limit the runtime uses now.
func current() (gcPercent int64, memoryLimit int64) {
	samples := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(samples)
	return int64(samples[0].Value.Uint64()), int64(samples[1].Value.Uint64())
}

// startupSettles is how long after ready a process's start-up is over: the
// packaged manifests are applied and every controller has listed what it
// watches.
const startupSettles = 20 * time.Second

// ReleaseStartup waits until start-up has settled, then collects the heap
// fully and returns its free pages to the OS, once. A start builds large
// transient structures (OpenAPI specs, first lists of every informer) that
// the runtime would otherwise keep resident until the heap grows to twice
// their size. It also pages out the binary's code start-up ran (see
// pageOutBinary). Call it when the process is ready.
func ReleaseStartup(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(startupSettles):
	}
	before := heapInUse()
	debug.FreeOSMemory()
	attrs := []any{"heap-in-use-mib-before", before >> 20, "heap-in-use-mib-after", heapInUse() >> 20}
	binBefore, binAfter, err := pageOutBinary()
	attrs = append(attrs, "binary-resident-mib-before", binBefore>>20, "binary-resident-mib-after", binAfter>>20)
	if err != nil {
		attrs = append(attrs, "binary-page-out-error", err)
	}
	slog.Info("start-up memory released", attrs...)
}

func heapInUse() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() + s[1].Value.Uint64()
}
