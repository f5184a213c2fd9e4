package migrate

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// callTimeout bounds one request to the staging member.
const callTimeout = 30 * time.Second

// batchBytes keeps a transaction well below etcd's request limit, which
// also counts keys and framing.
func batchBytes(maxRequest int) int { return maxRequest * 2 / 3 }

// copier writes keys into etcd in transactions of many puts, in the order it
// is given them, so that the order of revisions survives: keys written later
// in kine get a later (or the same) etcd revision.
type copier struct {
	c        *clientv3.Client
	maxOps   int
	maxBytes int
	leases   map[int64]clientv3.LeaseID // kine TTL → etcd lease

	ops   []clientv3.Op
	keys  []string // of ops, for error messages
	bytes int

	copied      int
	copiedBytes int64
	total       int
	begin       time.Time
	lastLog     time.Time
	logEvery    time.Duration
	afterCommit func(copied int) error // test hook
}

func newCopier(c *clientv3.Client, maxOps, maxRequest, total int, logEvery time.Duration) *copier {
	now := time.Now()
	return &copier{c: c, maxOps: max(1, maxOps), maxBytes: batchBytes(maxRequest), leases: map[int64]clientv3.LeaseID{},
		total: total, begin: now, lastLog: now, logEvery: logEvery}
}

// add queues one key, writing the batch first when the key would not fit.
func (cp *copier) add(ctx context.Context, r kv) error {
	size := len(r.key) + len(r.value)
	if len(cp.ops) > 0 && (len(cp.ops) >= cp.maxOps || cp.bytes+size > cp.maxBytes) {
		if err := cp.flush(ctx); err != nil {
			return err
		}
	}
	var opts []clientv3.OpOption
	if r.lease > 0 {
		id, err := cp.lease(ctx, r.lease)
		if err != nil {
			return err
		}
		opts = append(opts, clientv3.WithLease(id))
	}
	cp.ops = append(cp.ops, clientv3.OpPut(r.key, string(r.value), opts...))
	cp.keys = append(cp.keys, r.key)
	cp.bytes += size
	cp.copiedBytes += int64(len(r.value))
	return nil
}

// lease returns the etcd lease for keys that had a TTL in kine. kine
// counts a TTL from its own start, so the keys live that long from now
// (Events for an hour, the apiservers' endpoint leases for seconds).
func (cp *copier) lease(ctx context.Context, ttl int64) (clientv3.LeaseID, error) {
	if id, ok := cp.leases[ttl]; ok {
		return id, nil
	}
	callCtx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := cp.c.Grant(callCtx, ttl)
	if err != nil {
		return 0, fmt.Errorf("grant a lease of %ds in the new etcd: %w", ttl, err)
	}
	cp.leases[ttl] = resp.ID
	return resp.ID, nil
}

// flush writes the queued puts as one transaction.
func (cp *copier) flush(ctx context.Context) error {
	if len(cp.ops) == 0 {
		return nil
	}
	callCtx, cancel := context.WithTimeout(ctx, callTimeout)
	_, err := cp.c.Txn(callCtx).Then(cp.ops...).Commit()
	cancel()
	if err != nil {
		return fmt.Errorf("write keys %s … %s (%d keys, %d bytes) into the new etcd: %w",
			cp.keys[0], cp.keys[len(cp.keys)-1], len(cp.ops), cp.bytes, err)
	}
	cp.copied += len(cp.ops)
	cp.ops, cp.keys, cp.bytes = cp.ops[:0], cp.keys[:0], 0
	if now := time.Now(); now.Sub(cp.lastLog) >= cp.logEvery {
		slog.Info("migration progress", "copied", cp.copied, "of", cp.total, "elapsed", now.Sub(cp.begin).Round(time.Millisecond))
		cp.lastLog = now
	}
	if cp.afterCommit != nil {
		return cp.afterCommit(cp.copied)
	}
	return nil
}
