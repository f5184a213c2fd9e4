//go:build bench

package bench

// Snapshots of a cluster holding 10,000 objects: how long a snapshot takes
// to save, to verify (the trial restore), and to restore, and its size
// compressed and not.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/k3ha/k3ha/internal/snapshot"
	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

const (
	snapshotObjects = 10000
	snapshotRuns    = 3
)

func TestSnapshots(t *testing.T) {
	sec := newSection("snapshots", "Snapshots: save, verify and restore with 10,000 objects")
	defer sec.write(t)
	n := harness.NewNetwork(t)
	s := cluster.NewServer(t, k3haBin, n.AddHost(t, "snap"), "--cluster-init", "--disable-agent", "--etcd-disable-snapshots")
	timedStart(t, s)
	createLoad(t, s, restConfig(t, s), "snapshots", 16, snapshotObjects)
	c := cluster.EtcdClient(t, cluster.EtcdTLS(t, s), s)
	live := snapshot.ClientLive{Client: c, Endpoint: cluster.EtcdURL(s)}
	ctx := context.Background()

	type series struct {
		name                  string
		compress              bool
		save, verify, restore []time.Duration
		size                  int64
		keys                  int64
	}
	all := []*series{{name: "plain"}, {name: "zstd", compress: true}}
	for run := 0; run < snapshotRuns; run++ {
		for _, sr := range all {
			dir := t.TempDir()
			begin := time.Now()
			info, err := snapshot.SaveEtcd(ctx, c, dir, "bench", "snap", sr.compress)
			if err != nil {
				t.Fatal(err)
			}
			sr.save = append(sr.save, time.Since(begin))
			begin = time.Now()
			if err := snapshot.Verify(ctx, dir, &info, live); err != nil {
				t.Fatal(err)
			}
			sr.verify = append(sr.verify, time.Since(begin))
			sr.size, sr.keys = info.Size, info.Keys
			target := filepath.Join(t.TempDir(), "etcd")
			begin = time.Now()
			if err := snapshot.RestoreEtcd(filepath.Join(dir, info.Name), target, snapshot.Member{Name: "snap", PeerURL: "https://" + s.Host.IP.String() + ":2380"}); err != nil {
				t.Fatal(err)
			}
			sr.restore = append(sr.restore, time.Since(begin))
			_ = os.RemoveAll(target)
		}
	}
	sec.printf("\nOne server on embedded etcd holding %d ConfigMaps (%d keys in all at the snapshot's revision). Each run, from\n", snapshotObjects, all[0].keys)
	sec.printf("the bench process with the snapshot package k3ha uses: save (stream from the member to a file, SHA-256\n")
	sec.printf("trailer checked, fsync), verify (integrity hash, restore into a scratch dir, count keys and hash the key\n")
	sec.printf("space at the snapshot's revision, compare with the live member), restore (into a new data dir, as\n")
	sec.printf("`--cluster-reset-restore-path` does before it moves it into place).\n")
	var rows [][]string
	for _, sr := range all {
		total := make([]time.Duration, len(sr.save))
		for i := range total {
			total[i] = sr.save[i] + sr.verify[i]
		}
		rows = append(rows, []string{sr.name, fmt.Sprintf("%.1f MB", float64(sr.size)/1e6), secs(median(sr.save)), secs(median(sr.verify)),
			"**" + secs(median(total)) + "**", "**" + secs(median(sr.restore)) + "**", secsList(total)})
	}
	sec.table([]string{"snapshot", "size", "median save", "median verify", "save + verify", "median restore", "save + verify samples (s)"}, rows)
	plainTotal := median(all[0].save) + median(all[0].verify)
	sec.printf("- goals: save + verify under 5 s (plain: **%.2f×**), restore under 10 s (plain: **%.2f×**)\n",
		plainTotal.Seconds()/5, median(all[0].restore).Seconds()/10)
	sec.printf("- zstd: %.0f%% of the plain size\n", 100*float64(all[1].size)/float64(all[0].size))
}
