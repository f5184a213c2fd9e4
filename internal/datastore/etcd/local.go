package etcd

import (
	"fmt"
	"net"

	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3rpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// localServer serves the member's etcd API to this node's apiserver on a
// loopback port of its own, chosen by the kernel, with the client port's
// mutual TLS. On a restart it serves from the moment the member runs,
// before the member has a leader: etcd serves its own client port only
// once ready, and the apiserver's build waits for a ready connection for
// each resource's storage, so the whole build used to wait for the
// election (100 ms to 1 s for a single member, longer without quorum). A
// request sent early waits in the member for the leader. A new member
// serves once ready, as etcd does: until the cluster's version is known it
// refuses requests as "not capable", which the apiserver does not retry at
// once.
type localServer struct {
	ln  net.Listener
	srv *grpc.Server
}

// listen binds the port. Bound before etcd starts, it lets the apiserver
// connect at once: its handshake waits in the backlog until serve.
func (l *localServer) listen() error {
	if l.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("etcd: listen on 127.0.0.1 for the local apiserver (is the loopback interface up?): %w", err)
	}
	l.ln = ln
	return nil
}

// url is where the port listens; valid after listen.
func (l *localServer) url() string { return "https://" + l.ln.Addr().String() }

// serve serves srv's etcd API on the port with the gRPC settings etcd
// gives its own client port; once serving, it does nothing.
func (l *localServer) serve(srv *embed.Etcd, cfg *embed.Config) error {
	if l.srv != nil {
		return nil
	}
	if err := l.listen(); err != nil {
		return err
	}
	tlsCfg, err := cfg.ClientTLSInfo.ServerConfig()
	if err != nil {
		return fmt.Errorf("etcd: TLS for the local apiserver: %w", err)
	}
	var opts []grpc.ServerOption
	if cfg.GRPCKeepAliveMinTime > 0 {
		opts = append(opts, grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: cfg.GRPCKeepAliveMinTime}))
	}
	if cfg.GRPCKeepAliveInterval > 0 && cfg.GRPCKeepAliveTimeout > 0 {
		opts = append(opts, grpc.KeepaliveParams(keepalive.ServerParameters{Time: cfg.GRPCKeepAliveInterval, Timeout: cfg.GRPCKeepAliveTimeout}))
	}
	l.srv = v3rpc.Server(srv.Server, tlsCfg, nil, append(opts, cfg.GRPCAdditionalServerOptions...)...)
	go l.srv.Serve(l.ln)
	return nil
}

// stop closes the port and every connection on it. The apiserver, its
// only client, has stopped by then.
func (l *localServer) stop() {
	switch {
	case l.srv != nil:
		l.srv.Stop()
	case l.ln != nil:
		l.ln.Close()
	}
	l.srv, l.ln = nil, nil
}
