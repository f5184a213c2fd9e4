package snapshot

import (
	"time"

	"go.etcd.io/etcd/server/v3/lease"
	"go.etcd.io/etcd/server/v3/storage/backend"
)

// readLessor lets a store be opened for reading: keys with leases attach
// to nothing, and no lease ever expires.
type readLessor struct{}

var _ lease.Lessor = readLessor{}

func (readLessor) SetRangeDeleter(lease.RangeDeleter)               {}
func (readLessor) SetCheckpointer(lease.Checkpointer)               {}
func (readLessor) Grant(lease.LeaseID, int64) (*lease.Lease, error) { return nil, nil }
func (readLessor) Revoke(lease.LeaseID) error                       { return nil }
func (readLessor) Checkpoint(lease.LeaseID, int64) error            { return nil }
func (readLessor) Attach(lease.LeaseID, []lease.LeaseItem) error    { return nil }
func (readLessor) GetLease(lease.LeaseItem) lease.LeaseID           { return lease.NoLease }
func (readLessor) Detach(lease.LeaseID, []lease.LeaseItem) error    { return nil }
func (readLessor) Promote(time.Duration)                            {}
func (readLessor) Demote()                                          {}
func (readLessor) Renew(lease.LeaseID) (int64, error)               { return 0, nil }
func (readLessor) Lookup(lease.LeaseID) *lease.Lease                { return nil }
func (readLessor) Leases() []*lease.Lease                           { return nil }
func (readLessor) ExpiredLeasesC() <-chan []*lease.Lease            { return nil }
func (readLessor) Recover(backend.Backend, lease.RangeDeleter)      {}
func (readLessor) Stop()                                            {}
