package etcd

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestIsWrite(t *testing.T) {
	put := &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("k")}}}
	get := &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("k")}}}
	for req, want := range map[any]bool{
		&pb.PutRequest{}:         true,
		&pb.DeleteRangeRequest{}: true,
		&pb.TxnRequest{Success: []*pb.RequestOp{put}, Failure: []*pb.RequestOp{get}}: true,
		&pb.TxnRequest{Success: []*pb.RequestOp{get}, Failure: []*pb.RequestOp{get}}: false,
		&pb.RangeRequest{}:      false,
		&pb.LeaseGrantRequest{}: false,
	} {
		if got := isWrite(req); got != want {
			t.Errorf("%T %v: got %v", req, req, got)
		}
	}
}
