//go:build conformance

// Package conformance runs upstream's Kubernetes conformance suite (the
// e2e.test of the Kubernetes k3ha embeds, `make conformance-tools`) against
// a k3ha cluster in network namespaces, with every test image built here
// and placed on the nodes as air-gap archives: no registry is reached.
// `make conformance` runs it; conformance/RESULTS.md gets the outcome.
package conformance

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

// Settings from the environment (make conformance passes them through):
//
//	CONFORMANCE_SERVERS  servers in the cluster (1, or 3 for HA); 2 agents always
//	CONFORMANCE_FOCUS    a ginkgo focus instead of every [Conformance] spec
//	CONFORMANCE_NODES    ginkgo processes for the parallel part (default 4)
func TestConformance(t *testing.T) {
	root := repoRoot()
	e2eTest, ginkgo := filepath.Join(root, "bin/conformance/e2e.test"), filepath.Join(root, "bin/conformance/ginkgo")
	for _, p := range []string{e2eTest, ginkgo} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing: run make conformance-tools", p)
		}
	}
	servers := envInt(t, "CONFORMANCE_SERVERS", 1)
	if servers != 1 && servers != 3 {
		t.Fatalf("CONFORMANCE_SERVERS=%d: use 1 or 3", servers)
	}
	k3haBin, err := cluster.Binary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src, err := upstream()
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(root, "bin/conformance/work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &imageBuilder{work: work, confMod: filepath.Join(root, "conformance"), mainMod: root, src: src, arch: runtime.GOARCH,
		busybox: filepath.Join(root, "bin", "conformance", "busybox")}
	begin := time.Now()
	archives, err := b.build()
	if err != nil {
		t.Fatalf("test images: %v", err)
	}
	t.Logf("%d test images built in %v", len(archives), time.Since(begin).Round(time.Second))

	n := harness.NewNetwork(t)
	// Specs that pull with policy Always reach registry.k8s.io through a
	// mirror on the test network that serves the same images.
	registries, err := startMirror(t, n, archives)
	if err != nil {
		t.Fatal(err)
	}
	nodeArgs := []string{"--private-registry", registries}
	var nodes []*cluster.Server
	first := cluster.NewServer(t, k3haBin, n.AddHost(t, "s1"), append(serverArgs(servers, ""), nodeArgs...)...)
	nodes = append(nodes, first)
	addImages(t, first, archives)
	first.Start()
	first.WaitReady()
	for i := 2; i <= servers; i++ {
		s := cluster.NewServer(t, k3haBin, n.AddHost(t, fmt.Sprintf("s%d", i)), append(serverArgs(servers, first.URL()), nodeArgs...)...)
		s.Env = []string{"K3HA_TOKEN=" + first.Token()}
		addImages(t, s, archives)
		s.Start()
		s.WaitReady()
		nodes = append(nodes, s)
	}
	for i := 1; i <= 2; i++ {
		a := cluster.NewAgent(t, k3haBin, n.AddHost(t, fmt.Sprintf("a%d", i)), first.URL(), first.Token(), nodeArgs...)
		addImages(t, a, archives)
		a.Start()
		nodes = append(nodes, a)
	}
	harness.WaitFor(t, 5*time.Minute, fmt.Sprintf("%d nodes Ready", len(nodes)), func() (bool, error) {
		out, err := first.Kubectl("get", "nodes", "-o", `jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		return err == nil && strings.Count(out, "True") == len(nodes), nil
	})
	kubeconfig := outsideKubeconfig(t, first)

	// The whole suite's outcome is kept in conformance/; a focused run's
	// only in bin/conformance/focus/, so that RESULTS.md always describes a
	// complete run.
	report := filepath.Join(root, "conformance")
	focus := os.Getenv("CONFORMANCE_FOCUS")
	complete := focus == ""
	if complete {
		focus = `\[Conformance\]`
	} else {
		report = filepath.Join(root, "bin/conformance/focus")
		if err := os.MkdirAll(report, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	topology := fmt.Sprintf("%d server(s) + 2 agents", servers)
	junit := filepath.Join(report, fmt.Sprintf("junit-%ds.xml", servers))
	parallel := envInt(t, "CONFORMANCE_NODES", 4)
	runs := []struct {
		name  string
		args  []string
		junit string
	}{
		// Serial specs change the cluster for everybody: alone, after the rest.
		{"parallel", []string{"--nodes=" + strconv.Itoa(parallel), "--label-filter=!Serial"}, junit + ".parallel"},
		{"serial", []string{"--label-filter=Serial"}, junit + ".serial"},
	}
	begin = time.Now()
	for _, r := range runs {
		args := append([]string{"--no-color", "--timeout=4h", "--focus=" + focus, "--junit-report=" + r.junit}, r.args...)
		args = append(args, e2eTest, "--", "--kubeconfig="+kubeconfig, "--provider=skeleton", "--report-dir="+t.TempDir())
		cmd := exec.Command(ginkgo, args...)
		log, err := os.Create(filepath.Join(report, fmt.Sprintf("e2e-%ds-%s.log", servers, r.name)))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = log, log
		err = cmd.Run()
		log.Close()
		t.Logf("%s specs: %v (ginkgo: %v)", r.name, time.Since(begin).Round(time.Second), err)
	}
	res, err := readJUnit(junit+".parallel", junit+".serial")
	if err != nil {
		t.Fatal(err)
	}
	if err := mergeJUnit(junit, junit+".parallel", junit+".serial"); err != nil {
		t.Fatal(err)
	}
	if complete {
		if err := writeResults(filepath.Join(report, "RESULTS.md"), topology, servers, res, time.Since(begin)); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%s: %d passed, %d failed, %d skipped", topology, res.passed(), len(res.failed), res.skipped)
	for _, f := range res.failed {
		t.Errorf("failed: %s: %s", f.spec, f.reason)
	}
	if len(res.failed) > 0 {
		t.Errorf("%d conformance specs failed; %s has the logs and the JUnit report", len(res.failed), report)
	}
}

func serverArgs(servers int, join string) []string {
	if servers == 1 {
		return nil
	}
	if join == "" {
		return []string{"--cluster-init", "--token", "conformance"}
	}
	return []string{"--server", join}
}

func addImages(t *testing.T, node *cluster.Server, archives map[string][]byte) {
	t.Helper()
	for ref, data := range archives {
		if err := cluster.AddImage(node.DataDir(), strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar", data); err != nil {
			t.Fatal(err)
		}
	}
}

// startMirror runs a registry on its own test host, pushes the images of
// registry.k8s.io into it, and returns a registries.yaml that makes it
// that registry's mirror (TLS with its own CA, basic auth).
func startMirror(t *testing.T, n *harness.Network, archives map[string][]byte) (string, error) {
	bin := filepath.Join(t.TempDir(), "registry")
	if err := cluster.BuildRegistry(bin); err != nil {
		return "", err
	}
	reg := cluster.StartRegistry(t, bin, n.AddHost(t, "registry"))
	for ref, data := range archives {
		path, ok := strings.CutPrefix(ref, "registry.k8s.io/")
		if !ok {
			continue
		}
		repo, tag, _ := strings.Cut(path, ":")
		if err := reg.Push(repo, tag, data); err != nil {
			return "", fmt.Errorf("push %s to the mirror: %w", ref, err)
		}
	}
	return reg.MirrorConfig(t, "registry.k8s.io", reg.Password), nil
}

// outsideKubeconfig is the server's admin kubeconfig, pointed at its
// address on the test network (the file says 127.0.0.1, seen from inside).
func outsideKubeconfig(t *testing.T, s *cluster.Server) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(s.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server = s.URL()
	}
	path := filepath.Join(t.TempDir(), "kubeconfig.yaml")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

func repoRoot() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		panic(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}
