package kine

import (
	"bytes"
	"context"
	"log/slog"
	"math"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/embed"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// answerWrites answers kine's writes as they were. A refused create or
// update is judged against the store (outcome.go). With checkCreates, a
// successful create's revision is checked with a read: kine's stock
// backends answer a key created again after its deletion with their
// counter of the store's revision instead of the new row's (see
// exactCreates, which mends it where kine's parts allow). The apiserver
// hands that answer out as the object's resourceVersion, so the client's
// next update of the object would be refused as a conflict and the create
// would look ordered among the wrong writes (the robustness suite saw it on
// PostgreSQL).
//
// The created row is found by its value, unique per create (it carries
// the object's uid): the key's newest row, or an older one if the key
// changed again in between.
func answerWrites(checkCreates bool) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		txn, ok := resp.(*etcdserverpb.TxnResponse)
		kv, isKV := info.Server.(etcdserverpb.KVServer)
		if err != nil || !ok || !isKV || txn.Header == nil {
			return resp, err
		}
		if !txn.Succeeded {
			return judged(ctx, kv, req, txn)
		}
		put := createPut(req)
		if !checkCreates || put == nil {
			return resp, err
		}
		row, found := createdRow(ctx, kv, put)
		if !found {
			slog.Warn("kine: cannot confirm the revision of a create", "key", string(put.Key), "revision", txn.Header.Revision)
		} else if row != txn.Header.Revision {
			setRevision(txn, row)
		}
		return resp, err
	}
}

// judged answers a refused write as what it was.
func judged(ctx context.Context, kv etcdserverpb.KVServer, req any, txn *etcdserverpb.TxnResponse) (any, error) {
	w, ok := writeOf(req)
	if !ok {
		return txn, nil
	}
	switch v, row := judgeRefusal(ctx, kv, w); v {
	case applied:
		slog.Warn("kine refused a write that the database applied; answering it as done", "key", string(w.key), "revision", row)
		succeed(txn, row)
	case unknown:
		slog.Warn("kine refused a write, yet the key is as the write expected: its database call failed, outcome unknown", "key", string(w.key))
		return nil, status.Errorf(codes.Unavailable, "write to %s: the datastore failed mid-write; its outcome is unknown", w.key)
	}
	return txn, nil
}

// createdRow walks the key's rows back from the newest to the one put wrote.
func createdRow(ctx context.Context, kv etcdserverpb.KVServer, put *etcdserverpb.PutRequest) (int64, bool) {
	var rev int64 // 0: the newest
	for range 10 {
		got, err := kv.Range(ctx, &etcdserverpb.RangeRequest{Key: put.Key, Revision: rev})
		if err != nil || len(got.Kvs) != 1 {
			return 0, false
		}
		if bytes.Equal(got.Kvs[0].Value, put.Value) {
			return got.Kvs[0].ModRevision, true
		}
		rev = got.Kvs[0].ModRevision - 1
	}
	return 0, false
}

// createPut returns the put of a create transaction (put if the key's mod
// revision is 0), the only shape kine answers from the code path above.
func createPut(req any) *etcdserverpb.PutRequest {
	txn, ok := req.(*etcdserverpb.TxnRequest)
	if !ok || len(txn.Compare) != 1 || len(txn.Success) != 1 || len(txn.Failure) != 0 {
		return nil
	}
	c := txn.Compare[0]
	if c.Target != etcdserverpb.Compare_MOD || c.Result != etcdserverpb.Compare_EQUAL || c.GetModRevision() != 0 {
		return nil
	}
	return txn.Success[0].GetRequestPut()
}

func setRevision(txn *etcdserverpb.TxnResponse, rev int64) {
	txn.Header.Revision = rev
	for _, r := range txn.Responses {
		if p := r.GetResponsePut(); p != nil && p.Header != nil {
			p.Header.Revision = rev
		}
	}
}

// newGRPCServer is the server kine would build for itself on a socket
// (etcd's keepalive and size limits), with answerWrites in front and, on
// SQLite, the write gate between the two.
func newGRPCServer(sqlite, checkCreates bool) *grpc.Server {
	interceptors := []grpc.UnaryServerInterceptor{answerWrites(checkCreates)}
	if sqlite {
		interceptors = append(interceptors, newWriteGate().intercept)
	}
	return grpc.NewServer(
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: embed.DefaultGRPCKeepAliveMinTime}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    embed.DefaultGRPCKeepAliveInterval,
			Timeout: embed.DefaultGRPCKeepAliveTimeout,
		}),
		grpc.MaxConcurrentStreams(embed.DefaultMaxConcurrentStreams),
		// etcd's request limit plus room for the gRPC framing, as kine does.
		grpc.MaxRecvMsgSize(int(embed.DefaultMaxRequestBytes)+512*1024),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.ChainUnaryInterceptor(interceptors...),
	)
}
