package kine

import (
	"bytes"
	"context"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// kine (v0.17.5) answers a create or an update whose SQL commit failed
// as if the key had changed: "exists" for a create, "not updated" for an
// update. A commit can fail after the database applied it (the connection
// died before the reply), or before; either way the answer is wrong half
// of the time, and the apiserver turns it into AlreadyExists or Conflict
// for a write that may have happened. The robustness suite saw both on
// PostgreSQL killed mid-write. So a refused write is checked against the
// store: if the key holds the write's value on top of the revision it was
// made against, the write happened; if the key is as the write expected
// it, the refusal was an error, whose outcome is unknown.

// write is a create (prev 0: the key must be absent) or an update (the
// key's mod revision must be prev), as the apiserver sends them.
type write struct {
	key, value []byte
	prev       int64
}

// writeOf returns the write of a transaction of that shape: compare the
// mod revision, put on success, nothing or a get on failure.
func writeOf(req any) (write, bool) {
	txn, ok := req.(*etcdserverpb.TxnRequest)
	if !ok || len(txn.Compare) != 1 || len(txn.Success) != 1 || len(txn.Failure) > 1 {
		return write{}, false
	}
	c := txn.Compare[0]
	if c.Target != etcdserverpb.Compare_MOD || c.Result != etcdserverpb.Compare_EQUAL {
		return write{}, false
	}
	put := txn.Success[0].GetRequestPut()
	if put == nil || !bytes.Equal(put.Key, c.Key) {
		return write{}, false
	}
	if len(txn.Failure) == 1 && txn.Failure[0].GetRequestRange() == nil {
		return write{}, false
	}
	return write{key: put.Key, value: put.Value, prev: c.GetModRevision()}, true
}

// verdict is what a refused write really was.
type verdict int

const (
	refused verdict = iota // the key had changed: the refusal stands
	applied                // the write is in the store
	unknown                // the refusal was an error: maybe applied, maybe not
)

// ranger reads the store, as kine's KV server does.
type ranger interface {
	Range(context.Context, *etcdserverpb.RangeRequest) (*etcdserverpb.RangeResponse, error)
}

// lookBack bounds how many of the key's versions are searched for the
// write: another writer would have to change the key this often between
// the write and the check.
const lookBack = 3

// judgeRefusal decides what a write kine refused was; for applied, row is
// the revision the write made.
func judgeRefusal(ctx context.Context, r ranger, w write) (v verdict, row int64) {
	cur, err := get(ctx, r, w.key, 0)
	if err != nil {
		return unknown, 0
	}
	kv := cur
	for i := 0; kv != nil && i < lookBack; i++ {
		before, err := get(ctx, r, w.key, kv.ModRevision-1)
		if err != nil { // compacted: nothing older to compare
			break
		}
		if bytes.Equal(kv.Value, w.value) && madeOn(before, w.prev) {
			return applied, kv.ModRevision
		}
		if w.prev != 0 && kv.ModRevision <= w.prev {
			break // older than the revision the write was made on
		}
		kv = before
	}
	switch {
	case w.prev == 0 && cur == nil: // "exists", but nothing is there
		return unknown, 0
	case w.prev != 0 && cur != nil && cur.ModRevision == w.prev: // "changed", but it has not
		return unknown, 0
	}
	return refused, 0
}

// madeOn reports whether a version whose predecessor is before can be
// the write made on prev.
func madeOn(before *mvccpb.KeyValue, prev int64) bool {
	if prev == 0 {
		return before == nil
	}
	return before != nil && before.ModRevision == prev
}

// get reads key at revision (0: the newest); nil when it does not exist.
func get(ctx context.Context, r ranger, key []byte, revision int64) (*mvccpb.KeyValue, error) {
	resp, err := r.Range(ctx, &etcdserverpb.RangeRequest{Key: key, Revision: revision})
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return resp.Kvs[0], nil
}

// succeed rewrites a refused transaction's answer into the success the
// write was, at row.
func succeed(txn *etcdserverpb.TxnResponse, row int64) {
	txn.Succeeded = true
	txn.Header.Revision = row
	txn.Responses = []*etcdserverpb.ResponseOp{{Response: &etcdserverpb.ResponseOp_ResponsePut{
		ResponsePut: &etcdserverpb.PutResponse{Header: &etcdserverpb.ResponseHeader{Revision: row}}}}}
}
