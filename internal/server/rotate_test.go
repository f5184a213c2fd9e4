package server

import (
	"context"
	"errors"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/k3ha/k3ha/internal/bootstrap"
)

// getKV answers Gets from a map; nothing else is called.
type getKV struct {
	clientv3.KV
	data map[string][]byte
}

func (k getKV) Get(_ context.Context, key string, _ ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	resp := &clientv3.GetResponse{}
	if v, ok := k.data[key]; ok {
		resp.Kvs = []*mvccpb.KeyValue{{Key: []byte(key), Value: v}}
	}
	return resp, nil
}

func TestOpenFollowingRotation(t *testing.T) {
	data := bootstrap.Data{Files: map[string][]byte{"tls/server-ca.crt": []byte("ca")}}
	blob, err := bootstrap.Seal(data, "new-secret")
	if err != nil {
		t.Fatal(err)
	}
	record, err := bootstrap.Seal(bootstrap.Data{Files: map[string][]byte{bootstrap.RotatedToken: []byte("new-secret")}}, "old-secret")
	if err != nil {
		t.Fatal(err)
	}
	kv := getKV{data: map[string][]byte{bootstrap.RotationKey: record}}
	ctx := context.Background()
	if got, secret, err := openFollowingRotation(ctx, kv, blob, "old-secret"); err != nil || secret != "new-secret" || string(got.Files["tls/server-ca.crt"]) != "ca" {
		t.Fatalf("holder of the old token: %q %v", secret, err)
	}
	if _, secret, err := openFollowingRotation(ctx, kv, blob, "new-secret"); err != nil || secret != "new-secret" {
		t.Fatalf("holder of the new token: %q %v", secret, err)
	}
	if _, _, err := openFollowingRotation(ctx, kv, blob, "some-other"); !errors.Is(err, errWrongToken) {
		t.Fatalf("a wrong token: %v", err)
	}
	if _, _, err := openFollowingRotation(ctx, getKV{data: map[string][]byte{}}, blob, "old-secret"); !errors.Is(err, errWrongToken) {
		t.Fatalf("no rotation record: %v", err)
	}
}

func TestRotatedTokens(t *testing.T) {
	ca := []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
	same := newTokens(ca, "s1", "s1")
	if r := rotated(same, ca, "s2"); r.server.Password != "s2" || r.agent.Password != "s2" {
		t.Fatalf("an agent token equal to the server's follows it: %+v", r)
	}
	own := newTokens(ca, "s1", "a1")
	if r := rotated(own, ca, "s2"); r.server.Password != "s2" || r.agent.Password != "a1" {
		t.Fatalf("an agent token of its own stays: %+v", r)
	}
}

func TestLastConfigHash(t *testing.T) {
	metrics := []byte(`# HELP x
apiserver_encryption_config_controller_automatic_reloads_total{status="success"} 2
apiserver_encryption_config_controller_last_config_info{apiserver_id_hash="sha256:aa",hash="sha256:bb"} 1
`)
	if got := lastConfigHash(metrics); got != "sha256:bb" {
		t.Fatal(got)
	}
	if got := lastConfigHash([]byte("other 1\n")); got != "initial" {
		t.Fatal(got)
	}
}
