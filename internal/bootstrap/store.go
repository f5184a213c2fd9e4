package bootstrap

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Key is where the sealed bootstrap data lives in the datastore, outside
// /registry so Kubernetes never sees it.
const Key = "/k3ha/bootstrap"

// Save stores blob unless Key already exists, in one transaction so two
// servers starting at once cannot overwrite each other's CAs. The compare is
// on ModRevision because that is the create transaction kine understands. stored is
// false when another server stored its blob first; the caller should then
// Load and use that one.
func Save(ctx context.Context, kv clientv3.KV, blob []byte) (stored bool, err error) {
	resp, err := kv.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(Key), "=", 0)).
		Then(clientv3.OpPut(Key, string(blob))).
		Commit()
	if err != nil {
		return false, fmt.Errorf("store bootstrap data at %s: %w", Key, err)
	}
	return resp.Succeeded, nil
}

// Load returns the stored blob; found is false when there is none yet.
func Load(ctx context.Context, kv clientv3.KV) (blob []byte, found bool, err error) {
	resp, err := kv.Get(ctx, Key)
	if err != nil {
		return nil, false, fmt.Errorf("load bootstrap data from %s: %w", Key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, false, nil
	}
	return resp.Kvs[0].Value, true, nil
}
