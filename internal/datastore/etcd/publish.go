package etcd

import (
	"errors"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// A joining member publishes its name through raft and is ready once that
// entry is applied. When the leader applies the entry before it builds the
// snapshot it sends the new member, the entry arrives inside the snapshot,
// no local apply ever answers the publish, and etcd only retries after its
// request timeout (5 s + 2 election timeouts, 7 s by default): about one
// join in three on a busy machine. A restart publishes again at once.

// errPublishLost says the member knows its own published name but its
// publish never returned.
var errPublishLost = errors.New("etcd: the member's publish was absorbed into a snapshot")

var (
	publishCheckEvery = 100 * time.Millisecond
	// publishLostAfter is far more than the moment between a publish's
	// local apply and the member becoming ready.
	publishLostAfter = time.Second
)

// hasPublishedName reports whether the member's own entry in its view of
// the membership carries name, which only a publish sets.
func hasPublishedName(srv *embed.Etcd, name string) bool {
	m := srv.Server.Cluster().Member(srv.Server.MemberID())
	return m != nil && m.Name == name
}
