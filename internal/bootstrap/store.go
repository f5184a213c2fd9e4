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

// RotationKey holds the newest token, sealed with the one before it: a
// server still holding the old token (down during a rotation, or not yet
// told) follows the rotation by opening it.
const RotationKey = "/k3ha/bootstrap-rotation"

// RotatedToken is the file name of the new secret in a rotation record.
const RotatedToken = "token"

// LoadRev returns the stored blob and its modification revision.
func LoadRev(ctx context.Context, kv clientv3.KV) (blob []byte, rev int64, found bool, err error) {
	resp, err := kv.Get(ctx, Key)
	if err != nil {
		return nil, 0, false, fmt.Errorf("load bootstrap data from %s: %w", Key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, false, nil
	}
	return resp.Kvs[0].Value, resp.Kvs[0].ModRevision, true, nil
}

// Replace stores blob if the bootstrap data is still at rev; replaced is
// false when another server changed it first. With a rotation record, the
// record is stored first: until the data is replaced it leads to a token
// that does not open it, which a server following a rotation checks. (kine
// takes one put per transaction, in this compare-put-else-get form.)
func Replace(ctx context.Context, kv clientv3.KV, rev int64, blob, record []byte) (replaced bool, err error) {
	if record != nil {
		if _, err := kv.Put(ctx, RotationKey, string(record)); err != nil {
			return false, fmt.Errorf("store %s: %w", RotationKey, err)
		}
	}
	resp, err := kv.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(Key), "=", rev)).
		Then(clientv3.OpPut(Key, string(blob))).Else(clientv3.OpGet(Key)).Commit()
	if err != nil {
		return false, fmt.Errorf("replace bootstrap data at %s: %w", Key, err)
	}
	return resp.Succeeded, nil
}

// LoadRotation returns the newest rotation record, if any.
func LoadRotation(ctx context.Context, kv clientv3.KV) ([]byte, bool, error) {
	resp, err := kv.Get(ctx, RotationKey)
	if err != nil {
		return nil, false, fmt.Errorf("load %s: %w", RotationKey, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, false, nil
	}
	return resp.Kvs[0].Value, true, nil
}
