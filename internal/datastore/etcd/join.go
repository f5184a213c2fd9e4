package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/k3ha/k3ha/internal/layout"
)

const (
	promoteEvery = time.Second
	promoteLog   = 10 * time.Second
	// promoteWarn is when a learner that still lags is probably cut off
	// from its peers rather than just busy copying data.
	promoteWarn    = 60 * time.Second
	joinRetryFirst = time.Second
	joinRetryMax   = 10 * time.Second
)

// joiner adds this node to a running cluster through existing members.
type joiner struct {
	client   *clientv3.Client
	name     string
	peerURLs []string
	id       uint64 // the learner's member ID, once added
	added    bool
}

func newJoiner(l layout.Server, endpoints []string, name string, peerURLs []string) (*joiner, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("etcd join: no endpoints of existing members given")
	}
	c, err := newClient(l, endpoints)
	if err != nil {
		return nil, fmt.Errorf("etcd join: %w", err)
	}
	return &joiner{client: c, name: name, peerURLs: peerURLs}, nil
}

func (j *joiner) close() { j.client.Close() }

// resumeJoin prepares the promotion of a learner that restarted from its
// data, through the voting members it knows of.
func resumeJoin(l layout.Server, srv *embed.Etcd, name string, peerURLs []string) (*joiner, error) {
	var endpoints []string
	for _, m := range srv.Server.Cluster().Members() {
		if !m.IsLearner {
			endpoints = append(endpoints, m.ClientURLs...)
		}
	}
	slog.Info("etcd: this member is still a learner (an earlier join did not finish); promoting it", "member", name)
	j, err := newJoiner(l, endpoints, name, peerURLs)
	if err != nil {
		return nil, err
	}
	j.id = uint64(srv.Server.MemberID())
	return j, nil
}

// addLearner makes sure the cluster has a learner for this node and
// returns the initial-cluster setting that lets etcd start as that member.
// A name already used by another member stops it before anything changes.
func (j *joiner) addLearner(ctx context.Context) (string, error) {
	wait := joinRetryFirst
	retry := func(what string, err error) error {
		if !retryable(ctx, err) {
			return fmt.Errorf("etcd join: %s: %w", what, err)
		}
		slog.Warn("etcd join: cannot "+what+" yet; retrying", "endpoints", j.client.Endpoints(), "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd join: %s: %w", what, context.Cause(ctx))
		case <-time.After(wait):
		}
		wait = min(2*wait, joinRetryMax)
		return nil
	}
	for {
		members, err := listMembers(ctx, j.client)
		if err != nil {
			if err := retry("list members", err); err != nil {
				return "", err
			}
			continue
		}
		for _, m := range members {
			if m.Name == j.name && !sameURLs(m.PeerURLs, j.peerURLs) {
				return "", &DuplicateNameError{Name: m.Name, PeerURLs: m.PeerURLs}
			}
		}
		for _, m := range members {
			if !overlaps(m.PeerURLs, j.peerURLs) {
				continue
			}
			// An earlier attempt of ours that died after adding the learner
			// left it; anything else at our address is not ours to take.
			if !m.IsLearner || (m.Name != "" && m.Name != j.name) {
				role := "voting member"
				if m.IsLearner {
					role = "learner"
				}
				return "", fmt.Errorf("etcd join: %s %q (%x) already uses this server's peer URLs %s, but this server has no etcd data; "+
					"remove that member first (`kubectl delete node %s`, or etcdctl member remove %x) and start again",
					role, m.Name, m.ID, strings.Join(j.peerURLs, ","), m.Name, m.ID)
			}
			j.id, j.added = m.ID, true
			slog.Info("etcd join: reusing the learner an earlier attempt added", "member", j.name, "id", fmt.Sprintf("%x", m.ID))
			return initialCluster(members, m.ID, j.name), nil
		}

		callCtx, cancel := context.WithTimeout(ctx, callTimeout)
		resp, err := j.client.MemberAddAsLearner(callCtx, j.peerURLs)
		cancel()
		if err != nil {
			// Another server joining at the same time holds the one learner
			// slot etcd allows; ours comes once it is promoted.
			if err := retry("add this server as a learner", err); err != nil {
				return "", err
			}
			continue
		}
		j.id, j.added = resp.Member.ID, true
		slog.Info("etcd join: added as learner", "member", j.name, "id", fmt.Sprintf("%x", j.id), "peer_urls", j.peerURLs)
		now := make([]Member, 0, len(resp.Members))
		for _, m := range resp.Members {
			now = append(now, Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, IsLearner: m.IsLearner})
		}
		return initialCluster(now, j.id, j.name), nil
	}
}

// retryable errors are those of a cluster that is busy or not reachable
// yet, as opposed to a refusal.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	switch {
	// etcd derives a new member's ID from its peer URLs and the current
	// second, so adding it again right after a removal hits the removed ID,
	// which etcd reports as "member not found".
	case errors.Is(err, rpctypes.ErrMemberNotFound):
		return true
	case errors.Is(err, rpctypes.ErrTooManyLearners), errors.Is(err, rpctypes.ErrUnhealthy),
		errors.Is(err, rpctypes.ErrNoLeader), errors.Is(err, rpctypes.ErrTimeout),
		errors.Is(err, context.DeadlineExceeded):
		return true
	}
	var s interface{ GRPCStatus() *status.Status }
	return errors.As(err, &s) && s.GRPCStatus().Code() == codes.Unavailable
}

// initialCluster lists every member for etcd's initial-cluster. etcd keys
// it by name, so members without one (ours, and learners that have not
// started) get one: ours its real name, others a placeholder that only
// keeps them apart.
func initialCluster(members []Member, self uint64, name string) string {
	var parts []string
	for _, m := range members {
		n := m.Name
		switch {
		case m.ID == self:
			n = name
		case n == "":
			n = fmt.Sprintf("unstarted-%x", m.ID)
		}
		parts = append(parts, clusterString(n, m.PeerURLs))
	}
	return strings.Join(parts, ",")
}

// promote asks the cluster to make the learner a voting member until it
// agrees; etcd refuses while the learner lags behind the leader.
func (j *joiner) promote(ctx context.Context, srv *embed.Etcd) error {
	begin := time.Now()
	lastLog, warned := begin, false
	tick := time.NewTicker(promoteEvery)
	defer tick.Stop()
	for {
		callCtx, cancel := context.WithTimeout(ctx, callTimeout)
		_, err := j.client.MemberPromote(callCtx, j.id)
		cancel()
		switch {
		case err == nil, errors.Is(err, rpctypes.ErrMemberNotLearner):
			if err := waitVoting(ctx, srv); err != nil {
				return err
			}
			slog.Info("etcd join: promoted to voting member", "member", j.name, "took", time.Since(begin).Round(time.Millisecond))
			return nil
		case errors.Is(err, rpctypes.ErrMemberNotFound):
			return fmt.Errorf("etcd join: learner %x was removed from the cluster before its promotion", j.id)
		}
		now := time.Now()
		if now.Sub(lastLog) >= promoteLog {
			slog.Info("etcd join: waiting for the learner to catch up before promotion", "member", j.name,
				"waited", now.Sub(begin).Round(time.Second), "answer", err)
			lastLog = now
		}
		if !warned && now.Sub(begin) >= promoteWarn {
			slog.Warn("etcd join: learner still not promoted; the other servers may not reach this server's peer URL (check --node-ip and that the firewall allows it)",
				"member", j.name, "peer_urls", j.peerURLs, "waited", now.Sub(begin).Round(time.Second))
			warned = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd join: waiting for promotion: %w", context.Cause(ctx))
		case <-srv.Server.StopNotify():
			return errors.New("etcd join: etcd stopped before promotion (see its log lines above)")
		case err := <-srv.Err():
			return fmt.Errorf("etcd join: etcd failed before promotion: %w", err)
		case <-tick.C:
		}
	}
}

// waitVoting waits until the local member has applied its own promotion:
// until then it still refuses the requests a learner may not serve.
func waitVoting(ctx context.Context, srv *embed.Etcd) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for srv.Server.IsLearner() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd join: waiting for the promotion to apply locally: %w", context.Cause(ctx))
		case <-srv.Server.StopNotify():
			return errors.New("etcd join: etcd stopped right after promotion (see its log lines above)")
		case <-tick.C:
		}
	}
	return nil
}

// abandon undoes a failed join: the learner leaves the cluster and the
// data it started to copy is deleted, so that a next attempt starts clean.
// It runs after ctx may have ended, hence its own deadline.
func (j *joiner) abandon(dataDir string) {
	if j.added {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		_, err := j.client.MemberRemove(ctx, j.id)
		cancel()
		if err != nil && !errors.Is(err, rpctypes.ErrMemberNotFound) {
			slog.Error("etcd join failed and its learner could not be removed; remove it by hand (etcdctl member remove)",
				"id", fmt.Sprintf("%x", j.id), "err", err)
		} else {
			slog.Info("etcd join failed; removed this server's learner again", "member", j.name, "id", fmt.Sprintf("%x", j.id))
		}
	}
	if err := os.RemoveAll(dataDir); err != nil {
		slog.Error("etcd join failed and its data dir could not be deleted; delete it before the next attempt", "dir", dataDir, "err", err)
	}
}
