//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

// outsideName is a name only the test network's own DNS server knows: a
// pod resolves it through CoreDNS's upstream (--resolv-conf).
const (
	outsideName = "outside.k3ha.test"
	outsideIP   = "192.0.2.77"
)

// startOutsideDNS runs testapp's DNS server on a host of its own and
// returns a resolv.conf naming it.
func startOutsideDNS(t *testing.T, n *harness.Network) string {
	h := n.AddHost(t, "dns")
	p := h.Start(t, filepath.Join(t.TempDir(), "dns.log"), nil, testApp, "dns", ":53", outsideName+"="+outsideIP)
	harness.WaitFor(t, time.Minute, "outside DNS server listening", func() (bool, error) {
		return strings.Contains(p.Log(), "testapp dns on"), fmt.Errorf("log: %s", p.Log())
	})
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver "+h.IP.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// inPod runs testapp in a pod and returns its output.
func inPod(s *cluster.Server, pod string, args ...string) (string, error) {
	out, err := s.Kubectl(append([]string{"exec", pod, "--", "/app"}, args...)...)
	return strings.TrimSpace(out), err
}

// waitLookup waits until name resolves in pod to an answer containing want.
func waitLookup(t *testing.T, s *cluster.Server, pod, name, want string, timeout time.Duration) {
	t.Helper()
	harness.WaitFor(t, timeout, fmt.Sprintf("%s resolves %s", pod, name), func() (bool, error) {
		out, err := inPod(s, pod, "lookup", name)
		return err == nil && strings.Contains(" "+out+" ", " "+want+" "), fmt.Errorf("%v: %s", err, out)
	})
}

// TestPackagedComponents runs one server and two agents with every
// packaged component, and checks each the way a user would: DNS names from
// pods, a local-path volume, kubectl top, a LoadBalancer Service reached
// from outside; then CoreDNS's node dies, and --disable coredns removes it.
func TestPackagedComponents(t *testing.T) {
	n := harness.NewNetwork(t)
	resolv := startOutsideDNS(t, n)
	s1 := newServer(t, n.AddHost(t, "s1"), "--resolv-conf", resolv)
	s1.Env = []string{"K3HA_TOKEN=" + haToken}
	withTestImage(t, s1)
	s1.Start()
	s1.WaitReady()
	agentToken := readFile(t, filepath.Join(s1.DataDir(), "server", "agent-token"))
	var agents []*cluster.Server
	for _, name := range []string{"a1", "a2"} {
		a := cluster.NewAgent(t, k3haBin, n.AddHost(t, name), s1.URL(), agentToken, "--resolv-conf", resolv)
		withTestImage(t, a)
		a.Start()
		agents = append(agents, a)
	}
	a1, a2 := agents[0], agents[1]
	for _, node := range []string{"s1", "a1", "a2"} {
		waitNodeReady(t, s1, node)
	}

	t.Run("addons listed", func(t *testing.T) {
		harness.WaitFor(t, 2*time.Minute, "packaged components applied", func() (bool, error) {
			out, err := s1.Kubectl("get", "addons", "-A", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.appliedChecksum}{"\n"}{end}`)
			applied := 0
			for _, want := range []string{"coredns", "local-storage", "metrics-server", "servicelb"} {
				for _, line := range strings.Split(out, "\n") {
					if name, sum, _ := strings.Cut(line, "="); name == want && sum != "" {
						applied++
					}
				}
			}
			return applied == 4, fmt.Errorf("%v:\n%s", err, out)
		})
	})

	if err := kubectlApply(s1, podYAML("client", "a1")+"---\n"+podYAML("web", "a2")+`---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`); err != nil {
		t.Fatal(err)
	}
	waitPodRunning(t, s1, "client")
	waitPodRunning(t, s1, "web")

	t.Run("dns", func(t *testing.T) {
		waitLookup(t, s1, "client", "kubernetes.default", "10.43.0.1", 3*time.Minute)
		webIP := s1.MustKubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}")
		waitLookup(t, s1, "client", "web", webIP, time.Minute)
		waitLookup(t, s1, "client", "web.default.svc.cluster.local", webIP, time.Minute)
		// NodeHosts: the kubelet refreshes the mounted ConfigMap within a minute.
		waitLookup(t, s1, "client", "s1", s1.Host.IP.String(), 2*time.Minute)
		waitLookup(t, s1, "client", "a2", a2.Host.IP.String(), 2*time.Minute)
		waitLookup(t, s1, "client", outsideName, outsideIP, time.Minute)
		out, err := inPod(s1, "client", "get", "http://web/")
		if err != nil || !strings.Contains(out, "hello from web") {
			t.Fatalf("HTTP to the Service by name: %v %s", err, out)
		}
		if out, err := inPod(s1, "client", "lookup", "no-such-name.k3ha.test"); err == nil {
			t.Fatalf("an unknown outside name resolved: %s", out)
		}
	})

	t.Run("local-path volume", func(t *testing.T) {
		pvc := `apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 10Mi}}
`
		podWithVolume := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: writer
spec:
  containers:
  - name: app
    image: %s
    imagePullPolicy: Never
    args: ["serve", ":8080"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: data}
`, testImageRef)
		if err := kubectlApply(s1, pvc+"---\n"+podWithVolume); err != nil {
			t.Fatal(err)
		}
		waitPodRunning(t, s1, "writer")
		if phase := s1.MustKubectl("get", "pvc", "data", "-o", "jsonpath={.status.phase} {.spec.storageClassName}"); phase != "Bound local-path" {
			t.Fatalf("PVC: %s", phase)
		}
		node := s1.MustKubectl("get", "pod", "writer", "-o", "jsonpath={.spec.nodeName}")
		if _, err := inPod(s1, "writer", "write", "/data/note", "kept across pods"); err != nil {
			t.Fatal(err)
		}
		s1.MustKubectl("delete", "pod", "writer", "--wait=true")
		if err := kubectlApply(s1, podWithVolume); err != nil {
			t.Fatal(err)
		}
		waitPodRunning(t, s1, "writer")
		if again := s1.MustKubectl("get", "pod", "writer", "-o", "jsonpath={.spec.nodeName}"); again != node {
			t.Fatalf("the new pod ran on %s, the volume is on %s", again, node)
		}
		if out, err := inPod(s1, "writer", "read", "/data/note"); err != nil || out != "kept across pods" {
			t.Fatalf("read back: %v %q", err, out)
		}
		// The volume is a directory under the server's <data-dir>/storage,
		// the path every node uses (the test's nodes share one filesystem).
		matches, _ := filepath.Glob(filepath.Join(s1.DataDir(), "storage", "pvc-*_default_data", "note"))
		if len(matches) != 1 {
			t.Fatalf("volume file under %s/storage: %v", s1.DataDir(), matches)
		}
	})

	t.Run("kubectl top", func(t *testing.T) {
		harness.WaitFor(t, 4*time.Minute, "metrics of every node", func() (bool, error) {
			out, err := s1.Kubectl("top", "nodes", "--no-headers")
			seen := map[string]bool{}
			for _, line := range strings.Split(out, "\n") {
				f := strings.Fields(line)
				if len(f) >= 5 && strings.HasSuffix(f[1], "m") && strings.HasSuffix(f[3], "Mi") {
					seen[f[0]] = true
				}
			}
			return len(seen) == 3, fmt.Errorf("%v:\n%s", err, out)
		})
		if out := s1.MustKubectl("get", "apiservice", "v1beta1.metrics.k8s.io", "-o", `jsonpath={.status.conditions[?(@.type=="Available")].status}`); out != "True" {
			t.Fatalf("metrics APIService Available: %s", out)
		}
		harness.WaitFor(t, 2*time.Minute, "pod metrics", func() (bool, error) {
			out, err := s1.Kubectl("top", "pods", "-n", "kube-system", "--no-headers")
			return err == nil && strings.Contains(out, "coredns-"), fmt.Errorf("%v: %s", err, out)
		})
	})

	t.Run("LoadBalancer service", func(t *testing.T) {
		if err := kubectlApply(s1, `apiVersion: v1
kind: Service
metadata:
  name: web-lb
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 8081, targetPort: 8080}]
`); err != nil {
			t.Fatal(err)
		}
		want := []string{s1.Host.IP.String(), a1.Host.IP.String(), a2.Host.IP.String()}
		slices.Sort(want)
		var got []string
		harness.WaitFor(t, 3*time.Minute, "external addresses are the node IPs", func() (bool, error) {
			out, err := s1.Kubectl("get", "service", "web-lb", "-o", `jsonpath={.status.loadBalancer.ingress[*].ip}`)
			got = strings.Fields(out)
			slices.Sort(got)
			return slices.Equal(got, want), fmt.Errorf("%v: %q, want %q", err, out, want)
		})
		if ext := s1.MustKubectl("get", "service", "web-lb", "--no-headers"); !strings.Contains(ext, strings.Join(got, ",")) {
			t.Logf("kubectl get service: %s", ext)
		}
		client := n.AddHost(t, "outside")
		for _, ip := range got {
			harness.WaitFor(t, time.Minute, "reach web-lb on "+ip+" from outside", func() (bool, error) {
				out, err := client.Run(t, "curl", "-sS", "--max-time", "5", "http://"+ip+":8081/")
				return strings.Contains(out, "hello from web"), fmt.Errorf("%v: %s", err, out)
			})
		}
		// Restricted to labelled nodes once any node carries the label.
		s1.MustKubectl("label", "node", "a1", "svccontroller.k3ha.io/enablelb=true")
		harness.WaitFor(t, 2*time.Minute, "only the labelled node serves", func() (bool, error) {
			out, err := s1.Kubectl("get", "service", "web-lb", "-o", `jsonpath={.status.loadBalancer.ingress[*].ip}`)
			return out == a1.Host.IP.String(), fmt.Errorf("%v: %q", err, out)
		})
		s1.MustKubectl("label", "node", "a1", "svccontroller.k3ha.io/enablelb-")
		s1.MustKubectl("delete", "service", "web-lb")
		harness.WaitFor(t, time.Minute, "forwarders removed with the Service", func() (bool, error) {
			out, err := s1.Kubectl("get", "daemonsets", "-n", "kube-system", "-l", "svccontroller.k3ha.io/svcname=web-lb", "-o", "name")
			return err == nil && out == "", fmt.Errorf("%v: %s", err, out)
		})
	})

	t.Run("CoreDNS node killed", func(t *testing.T) {
		// Put CoreDNS on a1, then kill a1 like a power loss; a client on
		// a2 gets answers again once CoreDNS runs elsewhere.
		if err := kubectlApply(s1, podYAML("client2", "a2")); err != nil {
			t.Fatal(err)
		}
		waitPodRunning(t, s1, "client2")
		s1.MustKubectl("cordon", "s1")
		s1.MustKubectl("cordon", "a2")
		s1.MustKubectl("delete", "pod", "-n", "kube-system", "-l", "k8s-app=kube-dns", "--wait=false")
		harness.WaitFor(t, 2*time.Minute, "CoreDNS ready on a1", func() (bool, error) {
			out, err := s1.Kubectl("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o",
				`jsonpath={range .items[*]}{.spec.nodeName} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
			return strings.TrimSpace(out) == "a1 True", fmt.Errorf("%v: %s", err, out)
		})
		s1.MustKubectl("uncordon", "s1")
		s1.MustKubectl("uncordon", "a2")
		waitLookup(t, s1, "client2", "kubernetes.default", "10.43.0.1", time.Minute)
		killed := time.Now()
		a1.KillNode()
		waitLookup(t, s1, "client2", "web", s1.MustKubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"), 4*time.Minute)
		t.Logf("DNS answered again %s after CoreDNS's node was killed", time.Since(killed).Round(time.Second))
		out := s1.MustKubectl("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o",
			`jsonpath={range .items[*]}{.spec.nodeName} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		if !strings.Contains(out, "s1 True") && !strings.Contains(out, "a2 True") {
			t.Fatalf("no ready CoreDNS on a surviving node:\n%s", out)
		}
	})

	t.Run("disable coredns and enable it again", func(t *testing.T) {
		before := s1.MustKubectl("get", "deployment", "-n", "kube-system", "local-path-provisioner", "metrics-server", "-o", "jsonpath={.items[*].metadata.uid}")
		s1.Stop(30 * time.Second)
		s1.Args = append(s1.Args, "--disable", "coredns")
		s1.Start()
		s1.WaitReady()
		harness.WaitFor(t, 2*time.Minute, "CoreDNS objects gone", func() (bool, error) {
			var left []string
			for _, obj := range []string{"deployment/coredns", "service/kube-dns", "configmap/coredns", "serviceaccount/coredns"} {
				if out, err := s1.Kubectl("get", "-n", "kube-system", obj, "--ignore-not-found", "-o", "name"); err != nil || out != "" {
					left = append(left, obj)
				}
			}
			if out, err := s1.Kubectl("get", "clusterrole", "system:coredns", "--ignore-not-found", "-o", "name"); err != nil || out != "" {
				left = append(left, "clusterrole/system:coredns")
			}
			if out, err := s1.Kubectl("get", "addon", "coredns", "--ignore-not-found", "-o", "name"); err != nil || out != "" {
				left = append(left, "addon/coredns")
			}
			return len(left) == 0, fmt.Errorf("still there: %v", left)
		})
		if _, err := os.Stat(filepath.Join(s1.DataDir(), "server", "manifests", "coredns.yaml")); !os.IsNotExist(err) {
			t.Errorf("coredns.yaml still in the manifests dir: %v", err)
		}
		if after := s1.MustKubectl("get", "deployment", "-n", "kube-system", "local-path-provisioner", "metrics-server", "-o", "jsonpath={.items[*].metadata.uid}"); after != before {
			t.Fatalf("other components changed: %s -> %s", before, after)
		}
		s1.Stop(30 * time.Second)
		s1.Args = slices.Delete(s1.Args, len(s1.Args)-2, len(s1.Args))
		s1.Start()
		s1.WaitReady()
		waitLookup(t, s1, "client2", "kubernetes.default", "10.43.0.1", 3*time.Minute)
	})
}
