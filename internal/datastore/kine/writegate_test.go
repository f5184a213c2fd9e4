package kine

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
)

func TestIsWrite(t *testing.T) {
	get := &etcdserverpb.RequestOp{Request: &etcdserverpb.RequestOp_RequestRange{RequestRange: &etcdserverpb.RangeRequest{}}}
	put := &etcdserverpb.RequestOp{Request: &etcdserverpb.RequestOp_RequestPut{RequestPut: &etcdserverpb.PutRequest{}}}
	cases := []struct {
		req  any
		want bool
	}{
		{&etcdserverpb.RangeRequest{}, false},
		{&etcdserverpb.PutRequest{}, true},
		{&etcdserverpb.DeleteRangeRequest{}, true},
		{&etcdserverpb.TxnRequest{Success: []*etcdserverpb.RequestOp{get}}, false},
		{&etcdserverpb.TxnRequest{Success: []*etcdserverpb.RequestOp{put}, Failure: []*etcdserverpb.RequestOp{get}}, true},
		{&etcdserverpb.LeaseGrantRequest{}, false},
	}
	for _, c := range cases {
		if got := isWrite(c.req); got != c.want {
			t.Errorf("isWrite(%T %v) = %v", c.req, c.req, got)
		}
	}
	if !isSQLite("sqlite:///var/lib/db?x=1") || !isSQLite("") || isSQLite("postgres://db") {
		t.Error("isSQLite")
	}
}

// Writes pass one at a time; reads are not held back by them.
func TestWriteGate(t *testing.T) {
	g := newWriteGate()
	var inside, most atomic.Int32
	release := make(chan struct{})
	handler := func(ctx context.Context, req any) (any, error) {
		n := inside.Add(1)
		defer inside.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		if _, ok := req.(*etcdserverpb.PutRequest); ok {
			<-release
		}
		return nil, nil
	}
	info := &grpc.UnaryServerInfo{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { _, _ = g.intercept(context.Background(), &etcdserverpb.PutRequest{}, info, handler) })
	}
	// A read goes through while a write holds the gate.
	done := make(chan struct{})
	go func() {
		_, _ = g.intercept(context.Background(), &etcdserverpb.RangeRequest{}, info, handler)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a read waited for the writes")
	}
	close(release)
	wg.Wait()
	// One write at a time, plus the read that passed beside it.
	if most.Load() > 2 {
		t.Fatalf("%d requests inside at once", most.Load())
	}
	// A write whose caller gives up while it waits leaves.
	g <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := g.intercept(ctx, &etcdserverpb.PutRequest{}, info, handler); err == nil {
		t.Fatal("a waiting write outlived its context")
	}
}
