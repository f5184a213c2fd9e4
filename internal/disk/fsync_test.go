package disk

import (
	"os"
	"slices"
	"testing"
	"time"
)

func TestFsyncMeasurement(t *testing.T) {
	dir := t.TempDir()
	samples, err := measure(dir, FsyncSamples)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != FsyncSamples {
		t.Fatalf("%d samples", len(samples))
	}
	for _, s := range samples {
		if s <= 0 || s > 5*time.Second {
			t.Fatalf("implausible fsync time %v", s)
		}
	}
	if p := p99(samples); p != slices.Max(samples) {
		t.Errorf("p99 of 30 samples = %v, want the maximum %v", p, slices.Max(samples))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}

	var hundred []time.Duration
	for i := 100; i >= 1; i-- {
		hundred = append(hundred, time.Duration(i)*time.Millisecond)
	}
	if p := p99(hundred); p != 99*time.Millisecond {
		t.Errorf("p99 of 1..100 ms = %v", p)
	}
	if p99(nil) != 0 {
		t.Error("p99 of nothing")
	}
}
