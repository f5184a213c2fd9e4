package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// Staging is a temporary one-member etcd in a directory of its own, filled
// with data before that directory becomes this node's etcd data dir (a
// migration from SQLite). It is already this node's real member: same name,
// peer URL and cluster settings, so that the renamed directory starts as an
// ordinary Existing member. But it listens only on loopback ports the kernel
// picks, so nothing else can reach it or take it for the real member, and it
// can run while the real ports are taken.
type Staging struct {
	srv    *embed.Etcd
	client *clientv3.Client
	name   string
}

// stagingURL lets the kernel choose a free loopback port.
const stagingURL = "https://127.0.0.1:0"

// StartStaging starts a new one-member cluster with its data in dir, which
// must not hold etcd data yet, and returns once it serves.
func StartStaging(ctx context.Context, cfg Config, dir string) (_ *Staging, err error) {
	if cfg.Name == "" {
		return nil, errors.New("etcd: member name is empty")
	}
	if cfg.NodeIP == nil || cfg.NodeIP.IsUnspecified() {
		return nil, fmt.Errorf("etcd: node IP %v cannot be advertised to peers", cfg.NodeIP)
	}
	user, err := parseArgs(cfg.ExtraArgs)
	if err != nil {
		return nil, err
	}
	eff := render(cfg, user, "", "")
	name := eff.str("name")
	peerURLs := splitList(eff.str("initial-advertise-peer-urls"))
	if err := checkTLSFiles(eff); err != nil {
		return nil, err
	}
	if hasWAL(filepath.Join(dir, "member", "wal")) {
		return nil, fmt.Errorf("etcd: staging dir %s already holds etcd data", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("etcd staging dir: %w", err)
	}

	s := render(cfg, user, clusterString(name, peerURLs), embed.ClusterStateFlagNew)
	s["data-dir"] = dir
	// The peer URL stays the real one (it is recorded in the member list);
	// only where this instance listens changes.
	s["listen-client-urls"] = stagingURL
	s["advertise-client-urls"] = stagingURL
	s["listen-peer-urls"] = stagingURL
	delete(s, "listen-client-http-urls")
	delete(s, "listen-metrics-urls")
	ecfg, err := loadConfigFile(s, filepath.Join(dir, "config.yaml"))
	if err != nil {
		return nil, err
	}
	slog.Debug("starting staging etcd", "member", name, "dir", dir, "peer_urls", peerURLs)
	srv, err := embed.StartEtcd(ecfg)
	if err != nil {
		return nil, fmt.Errorf("start staging etcd in %s: %w", dir, err)
	}
	st := &Staging{srv: srv, name: name}
	defer func() {
		if err != nil {
			st.Stop()
		}
	}()
	if err := waitReady(ctx, srv, name, false); err != nil {
		return nil, err
	}
	if len(srv.Clients) == 0 {
		return nil, errors.New("staging etcd has no client listener")
	}
	addr := srv.Clients[0].Addr().(*net.TCPAddr)
	if st.client, err = newClient(cfg.Layout, []string{httpsURL("127.0.0.1", addr.Port)}); err != nil {
		return nil, err
	}
	return st, nil
}

// Client talks to the staging member.
func (s *Staging) Client() *clientv3.Client { return s.client }

// MaxTxnOps is how many operations one transaction may hold.
func (s *Staging) MaxTxnOps() int { return int(s.srv.Config().MaxTxnOps) }

// MaxRequestBytes is the largest request the member accepts.
func (s *Staging) MaxRequestBytes() int { return int(s.srv.Config().MaxRequestBytes) }

// Stop closes the client and the member; the data stays on disk, complete
// up to the last answered request. Calling it again does nothing.
func (s *Staging) Stop() {
	if s.client != nil {
		s.client.Close()
		s.client = nil
	}
	if s.srv != nil {
		select {
		case <-s.srv.Server.ReadyNotify():
		default:
			s.srv.Server.HardStop()
		}
		s.srv.Close()
		s.srv = nil
	}
}
