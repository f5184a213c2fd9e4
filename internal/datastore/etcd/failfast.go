package etcd

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/server/v3/etcdserver"
	"google.golang.org/grpc"
)

// failFast answers a write that a leader change caught in flight soon,
// instead of after etcd's request timeout (5 s plus two election
// timeouts): a proposal forwarded to a leader that died is dropped with
// the connection and never re-proposed, so nothing but that timeout would
// end the wait.
//
// When the leader changes during a write, the member waits until the new
// leader's first entry is applied here. Entries apply in order, so a write
// the new leader had is applied by then and answered as a success. One it
// did not have is not lost for sure, though: the old leader may only be
// paused or cut off, still holding the forwarded proposal, and forward it
// to the new leader once it is back (the robustness suite saw such a create
// applied a second time after a retry). So the answer is etcd's own
// "request timed out, possibly due to previous leader failure", which
// says the outcome is unknown and which no client retries blindly, only
// sooner.
type failFast struct {
	server atomic.Pointer[etcdserver.EtcdServer]
	// grace is how long a write may still take once the new leader's
	// first entry has been applied.
	grace time.Duration
}

var errLeaderChanged = errors.New("leader changed while the write was in flight")

func (f *failFast) interceptor() grpc.ServerOption {
	return grpc.ChainUnaryInterceptor(f.unary)
}

func (f *failFast) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	s := f.server.Load()
	if s == nil || !isWrite(req) {
		return handler(ctx, req)
	}
	// Both before the request goes on: closed at the next leader change,
	// and at the first entry of the term after it applied here.
	changed, firstCommit := s.LeaderChangedNotify(), s.FirstCommitInTermNotify()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for _, c := range []<-chan struct{}{changed, firstCommit} {
			select {
			case <-c:
			case <-done:
				return
			}
		}
		select {
		case <-time.After(f.grace):
			cancel(errLeaderChanged)
		case <-done:
		}
	}()
	resp, err := handler(ctx, req)
	if err != nil && errors.Is(context.Cause(ctx), errLeaderChanged) {
		return nil, rpctypes.ErrGRPCTimeoutDueToLeaderFail
	}
	return resp, err
}

// isWrite tells the requests that go through raft as proposals.
func isWrite(req any) bool {
	switch r := req.(type) {
	case *pb.PutRequest, *pb.DeleteRangeRequest:
		return true
	case *pb.TxnRequest:
		for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
			for _, op := range ops {
				if op.GetRequestRange() == nil {
					return true
				}
			}
		}
		// A read-only transaction is served like a read.
	}
	return false
}
