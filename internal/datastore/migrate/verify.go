package migrate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// verifyPage is how many keys one read of the new etcd returns.
const verifyPage = 1000

// digest is one key as verification compares it.
type digest struct {
	key   string
	sum   [sha256.Size]byte
	lease int64
}

// differences collects what verification found; a few keys of each kind
// are kept for the message (key names only: values may be secrets).
type differences struct {
	missing, extra, changed int
	expired                 int // leased keys whose lease ran out meanwhile: not a difference
	examples                []string
}

func (d *differences) note(kind, key string) {
	if len(d.examples) < 5 {
		d.examples = append(d.examples, kind+" "+key)
	}
}

func (d *differences) any() bool { return d.missing+d.extra+d.changed > 0 }

func (d *differences) Error() string {
	return fmt.Sprintf("%d keys missing in etcd, %d keys only in etcd, %d values differ (%s)",
		d.missing, d.extra, d.changed, strings.Join(d.examples, "; "))
}

// verify reads the source again and the whole new etcd, both in key order,
// and compares the key sets and the SHA-256 of every value. It returns how
// many keys matched.
func verify(ctx context.Context, src *source, c *clientv3.Client, leases map[int64]clientv3.LeaseID) (int, *differences, error) {
	dst, err := newDestReader(c)
	if err != nil {
		return 0, nil, err
	}
	diff := &differences{}
	matched := 0
	var missingLeased []digest
	next, err := dst.next(ctx)
	if err != nil {
		return 0, nil, err
	}
	err = src.each(ctx, "ORDER BY kv.name", func(r kv) error {
		want := digest{key: r.key, sum: sha256.Sum256(r.value), lease: r.lease}
		// Keys of etcd that sort before this source key exist only in etcd.
		for next != nil && next.key < want.key {
			diff.extra++
			diff.note("only in etcd:", next.key)
			if next, err = dst.next(ctx); err != nil {
				return err
			}
		}
		switch {
		case next == nil || next.key != want.key:
			if want.lease > 0 {
				missingLeased = append(missingLeased, want)
			} else {
				diff.missing++
				diff.note("missing:", want.key)
			}
			return nil
		case next.sum != want.sum:
			diff.changed++
			diff.note("differs:", want.key)
		default:
			matched++
		}
		next, err = dst.next(ctx)
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	for ; next != nil; next, err = dst.next(ctx) {
		diff.extra++
		diff.note("only in etcd:", next.key)
	}
	if err != nil {
		return 0, nil, err
	}
	// A key with a short TTL (an apiserver's endpoint lease) may expire
	// between its copy and this check; that is its lease at work, not a
	// lost key.
	for _, m := range missingLeased {
		if expired(ctx, c, leases[m.lease]) {
			diff.expired++
			continue
		}
		diff.missing++
		diff.note("missing:", m.key)
	}
	return matched, diff, nil
}

func expired(ctx context.Context, c *clientv3.Client, id clientv3.LeaseID) bool {
	if id == 0 {
		return false
	}
	callCtx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.TimeToLive(callCtx, id)
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return true
	}
	return err == nil && resp.TTL <= 0
}

// destReader pages through every key of etcd in key order, at one revision.
type destReader struct {
	c    *clientv3.Client
	rev  int64
	page []digest
	from string
	done bool
}

func newDestReader(c *clientv3.Client) (*destReader, error) {
	return &destReader{c: c, from: "\x00"}, nil
}

// next returns the next key, or nil after the last.
func (d *destReader) next(ctx context.Context) (*digest, error) {
	if len(d.page) == 0 && !d.done {
		if err := d.fetch(ctx); err != nil {
			return nil, err
		}
	}
	if len(d.page) == 0 {
		return nil, nil
	}
	n := d.page[0]
	d.page = d.page[1:]
	return &n, nil
}

func (d *destReader) fetch(ctx context.Context) error {
	opts := []clientv3.OpOption{clientv3.WithFromKey(), clientv3.WithLimit(verifyPage),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
	if d.rev > 0 {
		opts = append(opts, clientv3.WithRev(d.rev))
	}
	callCtx, cancel := context.WithTimeout(ctx, callTimeout)
	resp, err := d.c.Get(callCtx, d.from, opts...)
	cancel()
	if err != nil {
		return fmt.Errorf("read back the new etcd from key %q: %w", d.from, err)
	}
	if d.rev == 0 {
		d.rev = resp.Header.Revision
	}
	for _, kv := range resp.Kvs {
		d.page = append(d.page, digest{key: string(kv.Key), sum: sha256.Sum256(kv.Value), lease: kv.Lease})
	}
	if !resp.More || len(resp.Kvs) == 0 {
		d.done = true
		return nil
	}
	// The smallest key after the last one read.
	last := resp.Kvs[len(resp.Kvs)-1].Key
	d.from = string(append(bytes.Clone(last), 0))
	return nil
}
