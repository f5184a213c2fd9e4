package etcd

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// watchMembers logs the cluster's fault tolerance at start and whenever
// the membership changes, so that an even member count or a lost member
// shows up in the log without anyone asking.
func (e *Etcd) watchMembers(ctx context.Context) {
	last := ""
	check := func() {
		members, err := listMembers(ctx, e.client)
		if err != nil {
			if ctx.Err() == nil {
				slog.Debug("etcd member list unavailable", "err", err)
			}
			return
		}
		if sig := membershipSignature(members); sig != last {
			last = sig
			logFaultTolerance(members)
		}
	}
	check()
	tick := time.NewTicker(memberPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			check()
		}
	}
}

// membershipSignature changes when a member comes, goes or is promoted;
// a learner getting its name on first start is not worth another line.
func membershipSignature(members []Member) string {
	parts := make([]string, 0, len(members))
	for _, m := range members {
		parts = append(parts, fmt.Sprintf("%x:%t", m.ID, m.IsLearner))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// faultTolerance is how many voting members may fail with the cluster
// still able to reach quorum.
func faultTolerance(voting int) int {
	if voting < 1 {
		return 0
	}
	return (voting - 1) / 2
}

func logFaultTolerance(members []Member) {
	voting := 0
	for _, m := range members {
		if !m.IsLearner {
			voting++
		}
	}
	args := []any{"members", len(members), "voting", voting, "tolerated_failures", faultTolerance(voting)}
	if voting > 0 && voting%2 == 0 {
		slog.Warn(fmt.Sprintf("etcd has %d voting members, an even count: it tolerates %d failure(s), no more than %d members would; add one more server", voting, faultTolerance(voting), voting-1), args...)
		return
	}
	slog.Info("etcd membership", args...)
}
