package etcd

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

const (
	fsyncSamples = 30
	fsyncBlock   = 8 << 10 // about one WAL entry batch
	// slowFsync is the p99 beyond which etcd's own guidance says the disk
	// is too slow (its WAL fsync should stay well under 10 ms).
	slowFsync = 10 * time.Millisecond
)

var (
	fsyncGauge = metrics.NewGauge(&metrics.GaugeOpts{
		Name:           "k3ha_etcd_disk_fsync_p99_seconds",
		Help:           "99th percentile of fsync latency measured in the etcd data directory when etcd started.",
		StabilityLevel: metrics.ALPHA,
	})
	registerGauge sync.Once
)

// checkDisk measures fsync latency where etcd keeps its data, publishes the
// p99 as a metric and warns when the disk is too slow for etcd. A failed
// measurement is only logged: etcd itself will report a broken disk.
func checkDisk(dir string) {
	samples, err := measureFsync(dir, fsyncSamples)
	if err != nil {
		slog.Warn("could not measure fsync latency of the etcd data dir", "dir", dir, "err", err)
		return
	}
	p := p99(samples)
	// Register before Set: a component-base metric ignores values until registered.
	registerGauge.Do(func() { legacyregistry.MustRegister(fsyncGauge) })
	fsyncGauge.Set(p.Seconds())
	if p > slowFsync {
		slog.Warn("slow disk for etcd: fsync p99 is over 10ms, so etcd may miss heartbeats and lose leadership; on an SD card (e.g. a Raspberry Pi) move --data-dir to an SSD",
			"fsync_p99", p.Round(10*time.Microsecond), "dir", dir)
		return
	}
	slog.Debug("etcd disk fsync latency", "fsync_p99", p.Round(10*time.Microsecond), "dir", dir)
}

// measureFsync appends n blocks to a temporary file in dir, timing the
// write and fsync of each, the way etcd's WAL appends; the file is removed.
func measureFsync(dir string, n int) (samples []time.Duration, err error) {
	f, err := os.CreateTemp(dir, ".fsync-check-*")
	if err != nil {
		return nil, fmt.Errorf("fsync check: %w", err)
	}
	defer func() {
		f.Close()
		if rmErr := os.Remove(f.Name()); rmErr != nil && err == nil {
			err = fmt.Errorf("fsync check: %w", rmErr)
		}
	}()
	block := make([]byte, fsyncBlock)
	for i := range block {
		block[i] = byte(i)
	}
	samples = make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if _, err := f.Write(block); err != nil {
			return nil, fmt.Errorf("fsync check: write %s: %w", f.Name(), err)
		}
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("fsync check: fsync %s: %w", f.Name(), err)
		}
		samples = append(samples, time.Since(start))
	}
	return samples, nil
}

// p99 is the nearest-rank 99th percentile; with 30 samples, the maximum.
func p99(samples []time.Duration) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(samples))
	rank := (len(s)*99 + 99) / 100 // ceil(0.99 n)
	return s[rank-1]
}
