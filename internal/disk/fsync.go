// Package disk measures how fast a directory's disk makes writes durable,
// which is what etcd (and so a k3ha server) needs most from it.
package disk

import (
	"fmt"
	"os"
	"slices"
	"time"
)

// Samples and block size of a measurement: 30 appends of about one WAL
// entry batch each.
const (
	FsyncSamples = 30
	fsyncBlock   = 8 << 10
	// SlowFsync is the p99 beyond which etcd's own guidance says the disk
	// is too slow (its WAL fsync should stay well under 10 ms).
	SlowFsync = 10 * time.Millisecond
)

// FsyncP99 appends n blocks to a temporary file in dir, timing the write
// and fsync of each, the way etcd's WAL appends, and returns the p99; the
// file is removed.
func FsyncP99(dir string, n int) (time.Duration, error) {
	samples, err := measure(dir, n)
	if err != nil {
		return 0, err
	}
	return p99(samples), nil
}

func measure(dir string, n int) (samples []time.Duration, err error) {
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
