package kine

import (
	"context"
	"strings"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
)

// writeGate lets one write at a time through to kine on SQLite. SQLite
// takes one writer at a time anyway; the others wait in its busy handler,
// which sleeps 1, 2, 5, ... up to 100 ms between tries, so with many
// writers the waits, not the writes, set the latency. Queued here they
// go through as soon as the one before is done.
type writeGate chan struct{}

func newWriteGate() writeGate { return make(writeGate, 1) }

func (g writeGate) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !isWrite(req) {
		return handler(ctx, req)
	}
	select {
	case g <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-g }()
	return handler(ctx, req)
}

// isWrite reports whether an etcd request changes the store.
func isWrite(req any) bool {
	switch r := req.(type) {
	case *etcdserverpb.PutRequest, *etcdserverpb.DeleteRangeRequest:
		return true
	case *etcdserverpb.TxnRequest:
		for _, ops := range [][]*etcdserverpb.RequestOp{r.Success, r.Failure} {
			for _, op := range ops {
				if op.GetRequestRange() == nil {
					return true
				}
			}
		}
	}
	return false
}

// isSQLite reports whether a kine DSN names SQLite (the default when empty).
func isSQLite(dsn string) bool { return dsn == "" || strings.HasPrefix(dsn, "sqlite://") }
