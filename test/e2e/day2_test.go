//go:build e2e

package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

// snapshotCmd runs `k3ha etcd-snapshot args...` on s's host against s.
func snapshotCmd(t *testing.T, s *cluster.Server, args ...string) (string, int) {
	t.Helper()
	return runK3ha(t, s.Host, append([]string{"etcd-snapshot"}, append(args, "--data-dir", s.DataDir())...)...)
}

// savedName is the file name `etcd-snapshot save` printed.
func savedName(t *testing.T, out string) string {
	t.Helper()
	_, rest, ok := strings.Cut(out, "Snapshot ")
	name, _, _ := strings.Cut(rest, " ")
	if !ok || name == "" {
		t.Fatalf("no snapshot name in:\n%s", out)
	}
	return name
}

func localSnapshots(s *cluster.Server, prefix string) []string {
	entries, _ := os.ReadDir(filepath.Join(s.DataDir(), "server", "db", "snapshots"))
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix+"-") && !strings.HasSuffix(e.Name(), ".part") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestDay2 runs three servers on embedded etcd (with encrypted Secrets)
// and an agent through what operators do after day one: snapshots on
// demand, on schedule and on S3, a damaged snapshot, the rotation of the
// Secrets' key and of the token, and a restore of the whole cluster.
func TestDay2(t *testing.T) {
	top := t // nodes made in subtests get short dirs (containerd's socket paths are limited)
	n := harness.NewNetwork(t)
	s3 := cluster.StartS3Server(t, s3Bin, n.AddHost(t, "objstore"), "snapshots")
	servers := startHA(t, n, 3, "--secrets-encryption", "--etcd-snapshot-schedule-cron", "* * * * *", "--etcd-snapshot-retention", "2")
	s1, s2, s3srv := servers[0], servers[1], servers[2]
	agentToken := readFile(t, filepath.Join(s1.DataDir(), "server", "agent-token"))
	a1 := cluster.NewAgent(t, k3haBin, n.AddHost(t, "a1"), s1.URL(), agentToken)
	a1.Start()
	waitNodeReady(t, s1, "a1")

	var onDemand string
	t.Run("save, listed on every server", func(t *testing.T) {
		out, code := snapshotCmd(t, s1, "save")
		if code != 0 || !strings.Contains(out, "verified:") {
			t.Fatalf("save: exit %d\n%s", code, out)
		}
		onDemand = savedName(t, out)
		for _, s := range servers {
			out, code := snapshotCmd(t, s, "ls")
			if code != 0 || !strings.Contains(out, onDemand) {
				t.Fatalf("ls on %s: exit %d\n%s", s.Name, code, out)
			}
		}
		rec := s2.MustKubectl("get", "etcdsnapshotfiles", "-o", `jsonpath={range .items[*]}{.spec.snapshotName} {.spec.nodeName} {.status.verified}{"\n"}{end}`)
		if !strings.Contains(rec, onDemand+" s1 true") {
			t.Fatalf("kubectl get etcdsnapshotfiles:\n%s", rec)
		}
	})

	t.Run("S3: upload, list, prune; upload failure keeps the local copy", func(t *testing.T) {
		var names []string
		for i := 0; i < 2; i++ {
			out, code := snapshotCmd(t, s1, append([]string{"save", "--name", "to-s3"}, s3.Flags("s3")...)...)
			if code != 0 || !strings.Contains(out, "Uploaded to s3://snapshots/") {
				t.Fatalf("save to S3: exit %d\n%s", code, out)
			}
			names = append(names, savedName(t, out))
			time.Sleep(time.Second) // names carry the second
		}
		out, code := snapshotCmd(t, s1, append([]string{"ls"}, s3.Flags("s3")...)...)
		if code != 0 || !strings.Contains(out, "s3://snapshots/"+names[1]) {
			t.Fatalf("ls on S3: exit %d\n%s", code, out)
		}
		out, code = snapshotCmd(t, s1, append([]string{"prune", "--name", "to-s3", "--snapshot-retention", "1"}, s3.Flags("s3")...)...)
		if code != 0 {
			t.Fatalf("prune: exit %d\n%s", code, out)
		}
		if objs := s3.Objects(); !slices.Equal(objs, []string{names[1]}) {
			t.Fatalf("S3 after prune: %v, want only %s", objs, names[1])
		}
		if err := s3.Proc.Kill(); err != nil {
			t.Fatal(err)
		}
		out, code = snapshotCmd(t, s1, append([]string{"save", "--name", "to-s3"}, s3.Flags("s3")...)...)
		if code != 0 || !strings.Contains(out, "Upload to S3 failed, the local snapshot is kept") {
			t.Fatalf("save with S3 down: exit %d\n%s", code, out)
		}
		failed := savedName(t, out)
		if !slices.Contains(localSnapshots(s1, "to-s3"), failed) {
			t.Fatalf("the local snapshot %s is gone", failed)
		}
		harness.WaitFor(t, time.Minute, "the failed upload reported", func() (bool, error) {
			ev, err := s1.Kubectl("get", "events", "-A", "--field-selector", "reason=ETCDSnapshotFailed", "-o", "jsonpath={.items[*].message}")
			return strings.Contains(ev, failed), fmt.Errorf("%v: %s", err, ev)
		})
		s3.Start()
	})

	t.Run("a damaged snapshot fails its check and is not restored", func(t *testing.T) {
		out, code := snapshotCmd(t, s2, "save", "--name", "damaged")
		if code != 0 {
			t.Fatalf("save: %d\n%s", code, out)
		}
		name := savedName(t, out)
		path := filepath.Join(s2.DataDir(), "server", "db", "snapshots", name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/3] ^= 0x40
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out, code = snapshotCmd(t, s2, "verify", name)
		if code == 0 || !strings.Contains(out, "integrity hash differs") {
			t.Fatalf("verify of a damaged file: exit %d\n%s", code, out)
		}
		if v := s1.MustKubectl("get", "etcdsnapshotfiles", "-o", `jsonpath={range .items[?(@.spec.snapshotName=="`+name+`")]}{.status.verified} {.status.error.message}{end}`); !strings.HasPrefix(v, "false ") {
			t.Fatalf("record of the damaged snapshot: %q", v)
		}
		// Restore refuses it before touching anything (on a stopped server).
		etcdDir := filepath.Join(s2.DataDir(), "server", "db", "etcd")
		s2.Stop(30 * time.Second)
		before := dirListing(t, etcdDir)
		out, code = runK3ha(t, s2.Host, "server", "--config", s2.ConfigFile(), "--data-dir", s2.DataDir(), "--node-name", "s2",
			"--cluster-reset", "--cluster-reset-restore-path", path, "--token", haToken)
		if code == 0 || !strings.Contains(out, "integrity hash differs") || !strings.Contains(out, "nothing was changed") {
			t.Fatalf("restore of a damaged snapshot: exit %d\n%s", code, tail(out, 10))
		}
		if after := dirListing(t, etcdDir); !slices.Equal(before, after) {
			t.Fatalf("the refused restore changed %s", etcdDir)
		}
		s2.Start()
		s2.WaitReady()
	})

	t.Run("secrets: rotate-keys and reencrypt on three servers", func(t *testing.T) {
		const count = 200
		var b strings.Builder
		for i := 0; i < count; i++ {
			fmt.Fprintf(&b, "apiVersion: v1\nkind: Secret\nmetadata: {name: s-%03d, namespace: default}\nstringData: {v: value-%d}\n---\n", i, i)
		}
		if err := kubectlApply(s1, b.String()); err != nil {
			t.Fatal(err)
		}
		s3Config := filepath.Join(s3srv.DataDir(), "server", "cred", "encryption-config.json")
		preRotation, err := os.ReadFile(s3Config)
		if err != nil {
			t.Fatal(err)
		}
		out, code := runK3ha(t, s2.Host, "secrets-encrypt", "rotate-keys", "--data-dir", s2.DataDir())
		if code != 0 || !strings.Contains(out, "All hashes match") {
			t.Fatalf("rotate-keys: exit %d\n%s", code, out)
		}
		active := strings.TrimSpace(strings.TrimPrefix(lineWith(out, "Active Key:"), "Active Key:"))
		if !strings.HasPrefix(active, "k3ha-key-") || strings.Contains(lineWith(out, "Keys:"), ",") {
			t.Fatalf("after rotate-keys the active key is %q, keys %q", active, lineWith(out, "Keys:"))
		}
		for _, s := range servers {
			out, code := runK3ha(t, s.Host, "secrets-encrypt", "status", "--data-dir", s.DataDir())
			if code != 0 || !strings.Contains(out, "Active Key: "+active) {
				t.Fatalf("status on %s: exit %d\n%s", s.Name, code, out)
			}
		}
		// The raw values in etcd: every Secret under the new key's name.
		c := cluster.EtcdClient(t, cluster.EtcdTLS(t, s1), s1)
		resp, err := c.Get(context.Background(), "/registry/secrets/default/s-", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != count {
			t.Fatalf("%d secrets in etcd, want %d", len(resp.Kvs), count)
		}
		for _, kv := range resp.Kvs {
			if !strings.HasPrefix(string(kv.Value), "k8s:enc:aescbc:v1:"+active+":") {
				t.Fatalf("%s is stored as %q...", kv.Key, kv.Value[:min(40, len(kv.Value))])
			}
		}
		for _, i := range []int{0, 99, 199} {
			if v := s3srv.MustKubectl("get", "secret", fmt.Sprintf("s-%03d", i), "-o", "jsonpath={.data.v}"); v != b64(fmt.Sprintf("value-%d", i)) {
				t.Fatalf("secret s-%03d reads back %q", i, v)
			}
		}
		// A server may not come back with another encryption setting.
		s3srv.Stop(30 * time.Second)
		noFlag := append(slices.DeleteFunc(slices.Clone(s3srv.Args), func(a string) bool { return a == "--secrets-encryption" }), "--token", haToken)
		out, code = runK3ha(t, s3srv.Host, noFlag...)
		if code == 0 || !strings.Contains(out, "--secrets-encryption: this server has false, the cluster has true") {
			t.Fatalf("restart without --secrets-encryption: exit %d\n%s", code, tail(out, 10))
		}
		// A server that missed the rotation (its config still the old one)
		// takes the cluster's on restart; its apiserver, built while etcd
		// started, is built again from it, so every Secret reads.
		if err := os.WriteFile(s3Config, preRotation, 0o600); err != nil {
			t.Fatal(err)
		}
		s3srv.Start()
		s3srv.WaitReady()
		if log := s3srv.Proc.Log(); !strings.Contains(log, "the cluster's settings taken from the datastore") ||
			!strings.Contains(log, "bootstrap data changed the apiserver's files: building it again") {
			t.Fatalf("s3 restarted with a stale encryption config without taking the cluster's and rebuilding its apiserver:\n%s", tail(log, 30))
		}
		if got, want := readFile(t, s3Config), readFile(t, filepath.Join(s1.DataDir(), "server", "cred", "encryption-config.json")); got != want {
			t.Fatal("s3's encryption config is not the cluster's after its restart")
		}
		for _, i := range []int{0, 199} {
			if v := s3srv.MustKubectl("get", "secret", fmt.Sprintf("s-%03d", i), "-o", "jsonpath={.data.v}"); v != b64(fmt.Sprintf("value-%d", i)) {
				t.Fatalf("after the restart, secret s-%03d reads back %q", i, v)
			}
		}
		s3srv.MustKubectl("create", "secret", "generic", "after-stale", "--from-literal=v=x")
		resp, err = c.Get(context.Background(), "/registry/secrets/default/after-stale")
		if err != nil || len(resp.Kvs) != 1 || !strings.HasPrefix(string(resp.Kvs[0].Value), "k8s:enc:aescbc:v1:"+active+":") {
			t.Fatalf("a Secret written through s3 after its restart is not under the active key %s: %v %v", active, resp, err)
		}
	})

	var preRotation string
	const newToken = "e2e-rotated-token"
	t.Run("token rotation: everything stays Ready", func(t *testing.T) {
		preRotation = onDemand
		out, code := runK3ha(t, s1.Host, "token", "rotate", "--new-token", newToken, "--data-dir", s1.DataDir())
		if code != 0 || !strings.Contains(out, "Token rotated") {
			t.Fatalf("rotate: exit %d\n%s", code, out)
		}
		for _, s := range servers[1:] {
			harness.WaitFor(t, time.Minute, s.Name+" takes the new token", func() (bool, error) {
				tok := readFile(t, filepath.Join(s.DataDir(), "server", "token"))
				return strings.HasSuffix(tok, "::server:"+newToken), fmt.Errorf("token %s", tok)
			})
		}
		// Every server restarts fine (their K3HA_TOKEN still says the old one).
		for _, s := range servers {
			s.Stop(30 * time.Second)
			s.Start()
			s.WaitReady()
		}
		a1.Stop(30 * time.Second)
		a1.Args = replaceArg(a1.Args, "--token", newToken)
		a1.Start()
		for _, node := range []string{"a1"} {
			waitNodeReady(t, s1, node)
		}
		// Joins: the old token is refused, the new one works.
		old := cluster.NewAgent(top, k3haBin, n.AddHost(t, "a2"), s2.URL(), haToken)
		old.Start()
		if code, _ := old.Proc.Wait(2 * time.Minute); code == 0 || !strings.Contains(old.Proc.Log(), "token rejected") {
			t.Fatalf("join with the old token: exit %d\n%s", code, tail(old.Proc.Log(), 10))
		}
		fresh := cluster.NewAgent(top, k3haBin, n.AddHost(t, "a3"), s3srv.URL(), newToken)
		fresh.Start()
		harness.WaitFor(t, 3*time.Minute, "a3, joined with the new token, Ready", func() (bool, error) {
			if fresh.Proc.Exited() {
				t.Fatalf("a3 exited:\n%s", tail(fresh.Proc.Log(), 20))
			}
			out, err := s1.Kubectl("get", "node", "a3", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
			return out == "True", fmt.Errorf("%v: %s\n%s", err, out, tail(fresh.Proc.Log(), 5))
		})
	})

	t.Run("restore: before kept, after gone, the others rejoin", func(t *testing.T) {
		if err := putConfigMap(t, s1, "before-snapshot", "1"); err != nil {
			t.Fatal(err)
		}
		out, code := snapshotCmd(t, s1, append([]string{"save"}, s3.Flags("s3")...)...)
		if code != 0 || !strings.Contains(out, "Uploaded") {
			t.Fatalf("save: exit %d\n%s", code, out)
		}
		snap := savedName(t, out)
		if err := putConfigMap(t, s1, "after-snapshot", "1"); err != nil {
			t.Fatal(err)
		}
		for _, s := range servers {
			s.Stop(30 * time.Second)
		}
		restore := []string{"server", "--config", s1.ConfigFile(), "--data-dir", s1.DataDir(), "--node-name", "s1", "--cluster-reset"}
		// A snapshot from before the rotation needs the old token.
		old := filepath.Join(s1.DataDir(), "server", "db", "snapshots", preRotation)
		out, code = runK3ha(t, s1.Host, append(restore, "--cluster-reset-restore-path", old)...)
		if code == 0 || !strings.Contains(out, "another token") || !strings.Contains(out, "nothing was changed") {
			t.Fatalf("restore of a pre-rotation snapshot with the new token: exit %d\n%s", code, tail(out, 10))
		}
		// The one from S3, by object name.
		out, code = runK3ha(t, s1.Host, append(append(restore, "--cluster-reset-restore-path", snap), s3.Flags("etcd-s3")...)...)
		if code != 0 || !strings.Contains(out, "snapshot restored") {
			t.Fatalf("restore from S3: exit %d\n%s", code, tail(out, 15))
		}
		if olds, _ := filepath.Glob(filepath.Join(s1.DataDir(), "server", "db", "etcd-old-*")); len(olds) != 1 {
			t.Fatalf("old etcd data kept: %v", olds)
		}
		s1.Start()
		s1.WaitReady()
		waitConfigMap(t, s1, "before-snapshot", "1")
		if _, err := getConfigMap(t, s1, "after-snapshot"); err == nil {
			t.Fatal("a ConfigMap written after the snapshot survived the restore")
		}
		for _, s := range servers[1:] {
			if err := os.RemoveAll(filepath.Join(s.DataDir(), "server", "db")); err != nil {
				t.Fatal(err)
			}
			s.Args = replaceArg(s.Args, "--server", s1.URL())
			s.Env = []string{"K3HA_TOKEN=" + newToken}
			s.Start()
			s.WaitReady()
			waitConfigMap(t, s, "before-snapshot", "1")
		}
		if got := memberNames(t, s2); len(got) != 3 {
			t.Fatalf("members after the rejoin: %v", got)
		}
	})

	t.Run("scheduled snapshots, retention keeps 2", func(t *testing.T) {
		for _, s := range servers {
			harness.WaitFor(t, 4*time.Minute, s.Name+" has pruned scheduled snapshots", func() (bool, error) {
				got := localSnapshots(s, "etcd-snapshot")
				return len(got) == 2 && strings.Contains(s.Proc.Log(), "old snapshots pruned"), fmt.Errorf("%v", got)
			})
		}
	})
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func dirListing(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil {
			info, _ := d.Info()
			out = append(out, fmt.Sprintf("%s %d", p, info.Size()))
		}
		return nil
	})
	return out
}

func lineWith(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), prefix) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// replaceArg sets flag's value in args, adding the flag if absent.
func replaceArg(args []string, flag, value string) []string {
	out := slices.Clone(args)
	for i := range out[:len(out)-1] {
		if out[i] == flag {
			out[i+1] = value
			return out
		}
	}
	return append(out, flag, value)
}
