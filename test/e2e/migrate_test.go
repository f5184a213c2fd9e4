//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

const migrateNS = "migrate"

var widgetGVR = schema.GroupVersionResource{Group: "migrate.k3ha.io", Version: "v1", Resource: "widgets"}

const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.migrate.k3ha.io
spec:
  group: migrate.k3ha.io
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              color: {type: string}
`

func dynamicClient(t *testing.T, s *cluster.Server) *dynamic.DynamicClient {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags(s.URL(), s.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return dc
}

// seedObjects creates 500 objects of several kinds in migrateNS: 300
// ConfigMaps, 150 Secrets, a Deployment, a CRD and 48 of its objects.
func seedObjects(t *testing.T, s *cluster.Server) {
	t.Helper()
	ctx := context.Background()
	cs := s.Client()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: migrateNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	crd := filepath.Join(t.TempDir(), "crd.yaml")
	if err := os.WriteFile(crd, []byte(widgetCRD), 0o644); err != nil {
		t.Fatal(err)
	}
	s.MustKubectl("apply", "-f", crd)
	s.MustKubectl("wait", "--for=condition=Established", "crd/widgets.migrate.k3ha.io", "--timeout=60s")
	replicas := int32(2)
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1.DeploymentSpec{
		Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.invalid/web:1"}}}}}}
	if _, err := cs.AppsV1().Deployments(migrateNS).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	jobs := make(chan func() error)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 8 {
		wg.Go(func() {
			for job := range jobs {
				if err := job(); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	widgets := dynamicClient(t, s).Resource(widgetGVR).Namespace(migrateNS)
	for i := range 300 {
		jobs <- func() error {
			_, err := cs.CoreV1().ConfigMaps(migrateNS).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%03d", i)},
				Data: map[string]string{"index": fmt.Sprint(i), "payload": strings.Repeat(fmt.Sprintf("%x", i), 50)}}, metav1.CreateOptions{})
			return err
		}
	}
	for i := range 150 {
		jobs <- func() error {
			_, err := cs.CoreV1().Secrets(migrateNS).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("secret-%03d", i)},
				Data: map[string][]byte{"password": fmt.Appendf(nil, "pw-%d-\x00\xff", i)}}, metav1.CreateOptions{})
			return err
		}
	}
	for i := range 48 {
		jobs <- func() error {
			obj := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "migrate.k3ha.io/v1", "kind": "Widget",
				"metadata": map[string]any{"name": fmt.Sprintf("widget-%02d", i)},
				"spec":     map[string]any{"size": int64(i), "color": []string{"red", "green", "blue"}[i%3]},
			}}
			_, err := widgets.Create(ctx, obj, metav1.CreateOptions{})
			return err
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("seeding objects: %v", firstErr)
	}
}

// snapshot is every seeded object by kind/name: its UID (the same object,
// not a re-creation) and its content.
func snapshot(t *testing.T, s *cluster.Server) map[string]string {
	t.Helper()
	ctx := context.Background()
	cs := s.Client()
	out := map[string]string{}
	add := func(key string, uid any, content any) {
		b, err := json.Marshal(content)
		if err != nil {
			t.Fatal(err)
		}
		out[key] = fmt.Sprintf("%v %s", uid, b)
	}
	cms, err := cs.CoreV1().ConfigMaps(migrateNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cms.Items {
		if c.Name != "kube-root-ca.crt" {
			add("configmap/"+c.Name, c.UID, c.Data)
		}
	}
	secrets, err := cs.CoreV1().Secrets(migrateNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		add("secret/"+s.Name, s.UID, s.Data)
	}
	dep, err := cs.AppsV1().Deployments(migrateNS).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	add("deployment/web", dep.UID, dep.Spec.Template)
	widgets, err := dynamicClient(t, s).Resource(widgetGVR).Namespace(migrateNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range widgets.Items {
		add("widget/"+w.GetName(), w.GetUID(), w.Object["spec"])
	}
	crd := s.MustKubectl("get", "crd", "widgets.migrate.k3ha.io", "-o", "jsonpath={.metadata.uid}")
	out["crd/widgets.migrate.k3ha.io"] = crd
	return out
}

func compareSnapshots(t *testing.T, got, want map[string]string) {
	t.Helper()
	var diffs []string
	for k, v := range want {
		if got[k] != v {
			diffs = append(diffs, k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, "extra "+k)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("%d objects differ after the migration (want %d objects, got %d): %s", len(diffs), len(want), len(got),
			strings.Join(diffs[:min(10, len(diffs))], ", "))
	}
}

// sqliteFiles is the SHA-256 of each file of the SQLite database at base
// (the file and its -wal and -shm companions), by suffix.
func sqliteFiles(t *testing.T, base string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(base + suffix)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out[suffix] = sha256.Sum256(b)
	}
	return out
}

func hasWAL(dir string) bool {
	files, _ := filepath.Glob(filepath.Join(dir, "member", "wal", "*.wal"))
	return len(files) > 0
}

// TestMigrateSQLiteToEtcd is the existing-cluster path: a server that ran
// on SQLite is restarted with --cluster-init. The first attempt is killed
// with SIGKILL while it migrates; the next start migrates again from the
// untouched SQLite file, every object survives with its UID and content,
// the controllers carry on, and a second server joins.
func TestMigrateSQLiteToEtcd(t *testing.T) {
	n := harness.NewNetwork(t)
	s1 := newServer(t, n.AddHost(t, "s1"), "--disable-agent")
	s1.Env = []string{"K3HA_TOKEN=" + haToken}
	s1.Start()
	s1.WaitReady()
	seedObjects(t, s1)
	before := snapshot(t, s1)
	if len(before) != 500 {
		t.Fatalf("seeded %d objects, want 500", len(before))
	}
	s1.Stop(30 * time.Second)

	db := filepath.Join(s1.DataDir(), "server", "db")
	sqlite := filepath.Join(db, "state.db")
	staging := filepath.Join(db, "etcd-migrate-tmp")
	original := sqliteFiles(t, sqlite)

	t.Run("join with SQLite data refused", func(t *testing.T) {
		args := append(slices.Clone(s1.Args), "--token", haToken, "--server", "https://"+n.Subnet.IP.String()+":6443")
		out, code := runK3ha(t, s1.Host, args...)
		if code == 0 || !strings.Contains(out, "holds SQLite data") || !strings.Contains(out, "--cluster-init") {
			t.Fatalf("exit %d:\n%s", code, tail(out, 10))
		}
		if got := sqliteFiles(t, sqlite); !maps.Equal(got, original) {
			t.Fatal("the refused join changed the SQLite files")
		}
		if _, err := os.Stat(filepath.Join(db, "etcd")); !os.IsNotExist(err) {
			t.Fatalf("the refused join made an etcd dir: %v", err)
		}
	})

	s1.Args = append(s1.Args, "--cluster-init")

	t.Run("killed while migrating", func(t *testing.T) {
		s1.Start()
		s1.WaitLog(t, time.Minute, `msg="migrating SQLite data into etcd"`)
		// Kill once the new etcd has written its WAL: a half-made etcd
		// exists then. The migration of a few hundred keys is over in
		// milliseconds, less than this test may wait to be scheduled, so
		// the server runs in 1 ms slices and is stopped (SIGSTOP) while the
		// test looks. A timeout falls through to the kill; the checks below
		// then say what was missed.
		deadline := time.Now().Add(30 * time.Second)
		for {
			if err := s1.Proc.Signal(syscall.SIGSTOP); err != nil {
				break
			}
			if hasWAL(staging) || time.Now().After(deadline) {
				break
			}
			if err := s1.Proc.Signal(syscall.SIGCONT); err != nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		if err := s1.Proc.Kill(); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(s1.Proc.Log(), "migrated SQLite data into etcd") {
			t.Fatalf("the migration finished before the kill; the test did not interrupt it:\n%s", tail(s1.Proc.Log(), 20))
		}
		if !hasWAL(staging) {
			t.Fatalf("no half-made etcd in %s at the kill:\n%s", staging, tail(s1.Proc.Log(), 20))
		}
		if hasWAL(filepath.Join(db, "etcd")) {
			t.Fatal("etcd data in the real etcd dir after a killed migration")
		}
		if got := sqliteFiles(t, sqlite); !maps.Equal(got, original) {
			for k := range maps.Keys(original) {
				t.Logf("suffix %q: %x -> %x", k, original[k], got[k])
			}
			t.Fatal("the killed migration changed the SQLite files")
		}
	})

	t.Run("next start migrates everything", func(t *testing.T) {
		s1.Start()
		s1.WaitReady()
		log := s1.Proc.Log()
		for _, want := range []string{"removing the unfinished migration of an earlier attempt", `msg="migration verified`, `msg="migrated SQLite data into etcd"`} {
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %q", want)
			}
		}
		if m := regexp.MustCompile(`msg="migrated SQLite data into etcd" keys=(\d+) .*took=(\S+)`).FindStringSubmatch(log); m != nil {
			t.Logf("migration: %s keys in %s", m[1], m[2])
		}
		if _, err := os.Stat(sqlite); !os.IsNotExist(err) {
			t.Errorf("state.db still in place after the migration: %v", err)
		}
		kept, _ := filepath.Glob(sqlite + ".migrated-*[0-9]Z")
		if len(kept) != 1 || !maps.Equal(sqliteFiles(t, kept[0]), original) {
			t.Fatalf("kept SQLite files %v: want one, identical to the original", kept)
		}
		if _, err := os.Stat(staging); !os.IsNotExist(err) {
			t.Errorf("staging dir left behind: %v", err)
		}
		compareSnapshots(t, snapshot(t, s1), before)
		if got := memberNames(t, s1); len(got) != 1 || got[0] != "s1 learner=false" {
			t.Fatalf("members after the migration: %v", got)
		}
	})

	t.Run("deployment still reconciled", func(t *testing.T) {
		s1.MustKubectl("-n", migrateNS, "scale", "deployment", "web", "--replicas=3")
		harness.WaitFor(t, time.Minute, "the ReplicaSet follows the scaled deployment", func() (bool, error) {
			rs, err := s1.Kubectl("-n", migrateNS, "get", "replicasets", "-l", "app=web", "-o", "jsonpath={.items[*].spec.replicas}")
			gen, err2 := s1.Kubectl("-n", migrateNS, "get", "deployment", "web", "-o", "jsonpath={.metadata.generation} {.status.observedGeneration}")
			f := strings.Fields(gen)
			return rs == "3" && len(f) == 2 && f[0] == f[1], fmt.Errorf("replicasets %q (%v), generation/observed %q (%v)", rs, err, gen, err2)
		})
	})

	t.Run("second server joins and sees everything", func(t *testing.T) {
		s2 := newServer(t, n.AddHost(t, "s2"), "--disable-agent", "--server", s1.URL())
		s2.Env = []string{"K3HA_TOKEN=" + haToken}
		s2.Start()
		s2.WaitReady()
		compareSnapshots(t, snapshot(t, s2), before)
		if names := memberNames(t, s2); len(names) != 2 {
			t.Fatalf("members: %v", names)
		}
	})
}
