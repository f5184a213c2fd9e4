package etcd

import (
	"log/slog"
	"sync"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/k3ha/k3ha/internal/disk"
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
	p, err := disk.FsyncP99(dir, disk.FsyncSamples)
	if err != nil {
		slog.Warn("could not measure fsync latency of the etcd data dir", "dir", dir, "err", err)
		return
	}
	// Register before Set: a component-base metric ignores values until registered.
	registerGauge.Do(func() { legacyregistry.MustRegister(fsyncGauge) })
	fsyncGauge.Set(p.Seconds())
	if p > disk.SlowFsync {
		slog.Warn("slow disk for etcd: fsync p99 is over 10ms, so etcd may miss heartbeats and lose leadership; on an SD card (e.g. a Raspberry Pi) move --data-dir to an SSD",
			"fsync_p99", p.Round(10*time.Microsecond), "dir", dir)
		return
	}
	slog.Debug("etcd disk fsync latency", "fsync_p99", p.Round(10*time.Microsecond), "dir", dir)
}
