package kine

import (
	"context"
	"errors"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// history is one key's versions by revision; a nil value is a deletion.
type history map[int64]*string

func (h history) Range(_ context.Context, req *etcdserverpb.RangeRequest) (*etcdserverpb.RangeResponse, error) {
	if req.Revision < 0 {
		return nil, errors.New("compacted")
	}
	var best int64
	for rev := range h {
		if rev > best && (req.Revision == 0 || rev <= req.Revision) {
			best = rev
		}
	}
	resp := &etcdserverpb.RangeResponse{}
	if v := h[best]; best != 0 && v != nil {
		resp.Kvs = []*mvccpb.KeyValue{{Key: req.Key, Value: []byte(*v), ModRevision: best}}
	}
	return resp, nil
}

type failing struct{}

func (failing) Range(context.Context, *etcdserverpb.RangeRequest) (*etcdserverpb.RangeResponse, error) {
	return nil, errors.New("database down")
}

func val(s string) *string { return &s }

func TestJudgeRefusal(t *testing.T) {
	ours := "ours"
	cases := []struct {
		name string
		r    ranger
		prev int64
		want verdict
		row  int64
	}{
		{"create applied", history{10: val(ours)}, 0, applied, 10},
		{"create applied after a deletion", history{5: val("old"), 7: nil, 10: val(ours)}, 0, applied, 10},
		{"create applied, then updated by another", history{10: val(ours), 12: val("theirs")}, 0, applied, 10},
		{"create refused: it exists", history{5: val("theirs")}, 0, refused, 0},
		{"create refused, nothing there", history{5: val("old"), 7: nil}, 0, unknown, 0},
		{"create refused, never existed", history{}, 0, unknown, 0},
		{"update applied", history{5: val("old"), 9: val(ours)}, 5, applied, 9},
		{"update on another revision's value", history{4: val("old"), 9: val(ours)}, 5, refused, 0},
		{"update refused: changed", history{5: val("old"), 8: val("theirs")}, 5, refused, 0},
		{"update refused: deleted", history{5: val("old"), 8: nil}, 5, refused, 0},
		{"update refused, unchanged", history{5: val("old")}, 5, unknown, 0},
		{"store unreadable", failing{}, 5, unknown, 0},
	}
	for _, c := range cases {
		v, row := judgeRefusal(context.Background(), c.r, write{key: []byte("/k"), value: []byte(ours), prev: c.prev})
		if v != c.want || row != c.row {
			t.Errorf("%s: verdict %d row %d, want %d row %d", c.name, v, row, c.want, c.row)
		}
	}
}

func TestWriteOf(t *testing.T) {
	put := &etcdserverpb.RequestOp{Request: &etcdserverpb.RequestOp_RequestPut{RequestPut: &etcdserverpb.PutRequest{Key: []byte("/k"), Value: []byte("v")}}}
	get := &etcdserverpb.RequestOp{Request: &etcdserverpb.RequestOp_RequestRange{RequestRange: &etcdserverpb.RangeRequest{Key: []byte("/k")}}}
	del := &etcdserverpb.RequestOp{Request: &etcdserverpb.RequestOp_RequestDeleteRange{RequestDeleteRange: &etcdserverpb.DeleteRangeRequest{Key: []byte("/k")}}}
	cmp := func(rev int64) []*etcdserverpb.Compare {
		return []*etcdserverpb.Compare{{Key: []byte("/k"), Target: etcdserverpb.Compare_MOD, Result: etcdserverpb.Compare_EQUAL,
			TargetUnion: &etcdserverpb.Compare_ModRevision{ModRevision: rev}}}
	}
	if w, ok := writeOf(&etcdserverpb.TxnRequest{Compare: cmp(0), Success: []*etcdserverpb.RequestOp{put}}); !ok || w.prev != 0 || string(w.value) != "v" {
		t.Errorf("create: %+v %v", w, ok)
	}
	if w, ok := writeOf(&etcdserverpb.TxnRequest{Compare: cmp(7), Success: []*etcdserverpb.RequestOp{put}, Failure: []*etcdserverpb.RequestOp{get}}); !ok || w.prev != 7 {
		t.Errorf("update: %+v %v", w, ok)
	}
	if _, ok := writeOf(&etcdserverpb.TxnRequest{Compare: cmp(7), Success: []*etcdserverpb.RequestOp{del}, Failure: []*etcdserverpb.RequestOp{get}}); ok {
		t.Error("a delete taken for a write")
	}
	if _, ok := writeOf(&etcdserverpb.RangeRequest{Key: []byte("/k")}); ok {
		t.Error("a range taken for a write")
	}
}
