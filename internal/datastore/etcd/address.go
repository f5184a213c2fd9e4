package etcd

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// How often an address change is retried, and after how many failures
// the operator is told what it waits for.
var (
	addressRetryEvery = 2 * time.Second
	addressWarnAfter  = 3
)

// followAddressChange updates this member's peer URLs in the cluster when
// its server came back on another address (DHCP, a moved VM). The data dir
// is this member's own (etcd started from it with its member ID), so only
// the URLs the others reach it by are stale: until they change, the leader
// cannot reach it and it never becomes ready. The update is a membership
// change, so it needs quorum: the other members, asked at their unchanged
// client URLs (or this one alone, for a single-member cluster, once it is
// ready).
func (e *Etcd) followAddressChange(srv *embed.Etcd, want []string) {
	self := srv.Server.Cluster().Member(srv.Server.MemberID())
	if self == nil || sameURLs(self.PeerURLs, want) {
		return
	}
	slog.Info("this server's address changed: updating its etcd peer URLs", "member", self.Name,
		"from", strings.Join(self.PeerURLs, ","), "to", strings.Join(want, ","))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-e.stopping:
		case <-srv.Server.StopNotify():
		}
		cancel()
	}()
	endpoints := othersClientURLs(srv)
	if len(endpoints) == 0 {
		cfg := srv.Config()
		endpoints = []string{localClientURL(&cfg)}
	}
	c, err := newClient(e.cfg.Layout, endpoints)
	if err != nil {
		slog.Error("cannot update this member's etcd peer URLs", "err", err)
		return
	}
	defer c.Close()
	for attempt := 1; ; attempt++ {
		callCtx, done := context.WithTimeout(ctx, 5*time.Second)
		_, err := c.MemberUpdate(callCtx, uint64(self.ID), want)
		done()
		if err == nil {
			slog.Info("etcd peer URLs updated", "member", self.Name, "peer_urls", strings.Join(want, ","))
			return
		}
		if attempt == addressWarnAfter {
			slog.Warn("cannot update this member's etcd peer URLs yet: that needs the other servers running and holding quorum at their addresses; start them, or if they are gone for good, restart this server with --cluster-reset",
				"member", self.Name, "asked", strings.Join(endpoints, ","), "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(addressRetryEvery):
		}
	}
}
