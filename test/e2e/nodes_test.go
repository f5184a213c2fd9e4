//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

// withTestImage drops the test workload into a node's air-gap images.
func withTestImage(t *testing.T, s *cluster.Server) {
	t.Helper()
	if err := cluster.AddImage(s.DataDir(), "testapp.tar", testImage); err != nil {
		t.Fatal(err)
	}
}

// waitNodeReady waits until kubectl through s shows node Ready.
func waitNodeReady(t *testing.T, s *cluster.Server, node string) {
	t.Helper()
	harness.WaitFor(t, 3*time.Minute, "node "+node+" Ready", func() (bool, error) {
		out, err := s.Kubectl("get", "node", node, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		return out == "True", fmt.Errorf("%v: %s", err, out)
	})
}

// podYAML is a pod of the test image pinned to a node, labelled app=name.
func podYAML(name, node string) string {
	return cluster.PodYAML("default", name, node, "app: "+name, testImageRef, `"serve", ":8080"`)
}

func waitPodRunning(t *testing.T, s *cluster.Server, pod string) {
	t.Helper()
	harness.WaitFor(t, 3*time.Minute, "pod "+pod+" Running", func() (bool, error) {
		out, err := s.Kubectl("get", "pod", pod, "-o", "jsonpath={.status.phase}")
		return out == "Running", fmt.Errorf("%v: %s", err, out)
	})
}

// TestServerNode runs one server with its agent: the node registers with
// its roles, runs a pod from a locally imported image, and serves logs and exec.
func TestServerNode(t *testing.T) {
	n := harness.NewNetwork(t)
	s := newServer(t, n.AddHost(t, "n1"))
	withTestImage(t, s)
	s.Start()
	s.WaitReady()
	waitNodeReady(t, s, "n1")
	harness.WaitFor(t, time.Minute, "node roles", func() (bool, error) {
		out, err := s.Kubectl("get", "node", "n1", "--no-headers")
		return strings.Contains(out, "control-plane,master"), fmt.Errorf("%v: %s", err, out)
	})
	if err := kubectlApply(s, podYAML("web", "n1")); err != nil {
		t.Fatal(err)
	}
	waitPodRunning(t, s, "web")
	harness.WaitFor(t, time.Minute, "kubectl logs", func() (bool, error) {
		out, err := s.Kubectl("logs", "web")
		return strings.Contains(out, "testapp serving on :8080"), fmt.Errorf("%v: %s", err, out)
	})
	out, err := s.Kubectl("exec", "web", "--", "/app", "get", "http://127.0.0.1:8080/")
	if err != nil || !strings.Contains(out, "hello from web") {
		t.Fatalf("kubectl exec: %v %s", err, out)
	}
}

func kubectlApply(s *cluster.Server, yaml string) error {
	cmd := kubectlCmd(s, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(yaml)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("kubectl apply: %w: %s", err, out)
	}
	return nil
}

// TestNodes is the original page's check and more: three servers and an
// agent are Ready with the right roles, pods spread over them and reach each
// other and a Service, the agent outlives the server it joined, bad agents
// are refused, and deleting a server's Node removes its etcd member.
func TestNodes(t *testing.T) {
	n := harness.NewNetwork(t)
	var servers []*cluster.Server
	for i := 1; i <= 3; i++ {
		var args []string
		if i == 1 {
			args = []string{"--cluster-init"}
		} else {
			args = []string{"--server", servers[0].URL()}
		}
		s := newServer(t, n.AddHost(t, fmt.Sprintf("s%d", i)), args...)
		s.Env = []string{"K3HA_TOKEN=" + haToken}
		withTestImage(t, s)
		s.Start()
		s.WaitReady()
		servers = append(servers, s)
	}
	s1, s2, s3 := servers[0], servers[1], servers[2]
	agentToken := readFile(t, filepath.Join(s1.DataDir(), "server", "agent-token"))
	a := cluster.NewAgent(t, k3haBin, n.AddHost(t, "a1"), s1.URL(), agentToken)
	withTestImage(t, a)
	a.Start()
	for _, node := range []string{"s1", "s2", "s3", "a1"} {
		waitNodeReady(t, s2, node)
	}

	t.Run("roles", func(t *testing.T) {
		out := s2.MustKubectl("get", "nodes", "--no-headers", "-o", "custom-columns=NAME:.metadata.name")
		if strings.Join(strings.Fields(out), ",") != "a1,s1,s2,s3" {
			t.Fatalf("nodes: %s", out)
		}
		harness.WaitFor(t, time.Minute, "roles on every node", func() (bool, error) {
			out, err := s2.Kubectl("get", "nodes", "--no-headers")
			roles := map[string]string{}
			for _, line := range strings.Split(out, "\n") {
				if f := strings.Fields(line); len(f) >= 3 {
					roles[f[0]] = f[2]
				}
			}
			ok := roles["a1"] == "<none>"
			for _, s := range []string{"s1", "s2", "s3"} {
				ok = ok && roles[s] == "control-plane,etcd,master"
			}
			return ok, fmt.Errorf("%v:\n%s", err, out)
		})
		ann := s2.MustKubectl("get", "node", "s3", "-o", `jsonpath={.metadata.annotations.etcd\.k3ha\.io/node-name} {.metadata.annotations.etcd\.k3ha\.io/node-address}`)
		if ann != "s3 "+s3.Host.IP.String() {
			t.Fatalf("etcd annotations of s3: %q", ann)
		}
	})

	t.Run("pods spread and reach each other", func(t *testing.T) {
		if err := kubectlApply(s1, spreadDeployment); err != nil {
			t.Fatal(err)
		}
		var pods [][3]string // name, node, IP
		harness.WaitFor(t, 3*time.Minute, "4 pods Running on 4 nodes", func() (bool, error) {
			out, err := s1.Kubectl("get", "pods", "-l", "app=spread", "-o",
				`jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.podIP} {.status.phase}{"\n"}{end}`)
			pods = nil
			nodes := map[string]bool{}
			for _, line := range strings.Split(out, "\n") {
				if f := strings.Fields(line); len(f) == 4 && f[3] == "Running" {
					pods = append(pods, [3]string{f[0], f[1], f[2]})
					nodes[f[1]] = true
				}
			}
			return len(pods) == 4 && len(nodes) == 4, fmt.Errorf("%v:\n%s", err, out)
		})
		for i, from := range pods {
			to := pods[(i+1)%len(pods)]
			out, err := s1.Kubectl("exec", from[0], "--", "/app", "get", "http://"+to[2]+":8080/")
			if err != nil || !strings.Contains(out, "hello from "+to[0]) {
				t.Errorf("pod %s on %s → pod %s on %s by IP: %v %s\n%s", from[0], from[1], to[0], to[1], err, out,
					netDiagnostics(t, n, from[1], to[1]))
			}
		}
		ip := s1.MustKubectl("get", "service", "spread", "-o", "jsonpath={.spec.clusterIP}")
		harness.WaitFor(t, time.Minute, "the Service answers from every node", func() (bool, error) {
			for _, p := range pods {
				out, err := s1.Kubectl("exec", p[0], "--", "/app", "get", "http://"+ip+"/")
				if err != nil || !strings.Contains(out, "hello from spread-") {
					return false, fmt.Errorf("from %s on %s: %v %s", p[0], p[1], err, out)
				}
			}
			return true, nil
		})
	})

	t.Run("logs and exec on the agent", func(t *testing.T) {
		if err := kubectlApply(s2, podYAML("on-agent", "a1")); err != nil {
			t.Fatal(err)
		}
		waitPodRunning(t, s2, "on-agent")
		out, err := s3.Kubectl("exec", "on-agent", "--", "/app", "get", "http://127.0.0.1:8080/ping")
		if err != nil || !strings.Contains(out, "hello from on-agent") {
			t.Fatalf("exec: %v %s", err, out)
		}
		harness.WaitFor(t, time.Minute, "kubectl logs", func() (bool, error) {
			out, err := s3.Kubectl("logs", "on-agent")
			return strings.Contains(out, "request GET /ping"), fmt.Errorf("%v: %s", err, out)
		})
		pf := s3.KubectlCmd("port-forward", "pod/on-agent", "18080:8080")
		if err := pf.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = pf.Process.Kill(); _ = pf.Wait() }()
		harness.WaitFor(t, time.Minute, "kubectl port-forward", func() (bool, error) {
			out, err := exec.Command("curl", "-s", "--max-time", "3", "http://127.0.0.1:18080/forwarded").CombinedOutput()
			return strings.Contains(string(out), "hello from on-agent"), fmt.Errorf("%v: %s", err, out)
		})
	})

	t.Run("a server back on a new address", func(t *testing.T) {
		old := s3.Host.IP.String()
		s3.Stop(30 * time.Second)
		s3.Host.ChangeIP(t)
		ip := s3.Host.IP.String()
		s3.Start()
		s3.WaitReady()
		s3.WaitLog(t, time.Second, "etcd peer URLs updated")
		ms, err := s2.Members()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Name == "s3" && (m.IsLearner || strings.Join(m.PeerURLs, ",") != "https://"+ip+":2380") {
				t.Errorf("s3's member after the move: %+v (moved from %s to %s)", m, old, ip)
			}
		}
		if len(ms) != 3 {
			t.Errorf("members: %+v", ms)
		}
		if err := putConfigMap(t, s3, "after-move", "s3"); err != nil {
			t.Fatalf("write through the moved server: %v", err)
		}
		waitConfigMap(t, s1, "after-move", "s3")
		// A voting member: with s1 down, s2 and s3 are the quorum. (Before
		// kube-proxy waited for the Node's new address, s3 exited here.)
		s1.Stop(30 * time.Second)
		harness.WaitFor(t, time.Minute, "a write with s1 down", func() (bool, error) {
			out, err := s2.Kubectl("create", "configmap", "quorum-without-s1")
			return err == nil, fmt.Errorf("%v: %s", err, out)
		})
		s1.Start()
		s1.WaitReady()
		harness.WaitFor(t, time.Minute, "s3's Node shows the new address", func() (bool, error) {
			out, err := s2.Kubectl("get", "node", "s3", "-o", `jsonpath={.status.addresses[?(@.type=="InternalIP")].address}`)
			return out == ip, fmt.Errorf("%v: %s", err, out)
		})
		harness.WaitFor(t, time.Minute, "the agent's load balancer lists the new address", func() (bool, error) {
			data, err := os.ReadFile(filepath.Join(a.DataDir(), "agent", "lb-servers.json"))
			return strings.Contains(string(data), ip+":6443") && !strings.Contains(string(data), old+":6443"), fmt.Errorf("%v: %s", err, data)
		})
		waitNodeReady(t, s2, "s3")
		if s3.Proc.Exited() {
			t.Fatalf("s3 exited after its move:\n%s", tail(s3.Proc.Log(), 20))
		}
	})

	t.Run("the agent outlives the server it joined", func(t *testing.T) {
		if err := s1.Proc.Kill(); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		harness.WaitFor(t, 2*time.Minute, "a1 renews its lease through another server", func() (bool, error) {
			out, err := s2.Kubectl("get", "lease", "-n", "kube-node-lease", "a1", "-o", "jsonpath={.spec.renewTime}")
			renewed, perr := time.Parse(time.RFC3339Nano, out)
			if err != nil || perr != nil {
				return false, fmt.Errorf("%v %v: %s", err, perr, out)
			}
			return renewed.After(killed.Add(time.Second)), nil
		})
		waitNodeReady(t, s2, "a1")
		if err := kubectlApply(s2, strings.Replace(podYAML("after-kill", "a1"), "  nodeName: a1\n", "  nodeSelector: {kubernetes.io/hostname: a1}\n", 1)); err != nil {
			t.Fatal(err)
		}
		waitPodRunning(t, s2, "after-kill")

		// Restarted while the server it joined is still down, the agent
		// finds the others from the list it keeps on disk.
		a.Stop(30 * time.Second)
		restarted := time.Now()
		a.Start()
		harness.WaitFor(t, 2*time.Minute, "the restarted a1 renews its lease", func() (bool, error) {
			out, err := s2.Kubectl("get", "lease", "-n", "kube-node-lease", "a1", "-o", "jsonpath={.spec.renewTime}")
			renewed, perr := time.Parse(time.RFC3339Nano, out)
			return err == nil && perr == nil && renewed.After(restarted), fmt.Errorf("%v %v: %s", err, perr, out)
		})
		waitNodeReady(t, s2, "a1")
		s1.Start()
		s1.WaitReady()
	})

	t.Run("an agent back on a new address", func(t *testing.T) {
		old := a.Host.IP.String()
		a.Stop(30 * time.Second)
		a.Host.ChangeIP(t)
		ip := a.Host.IP.String()
		restarted := time.Now()
		a.Start()
		for what, jsonpath := range map[string]string{
			"InternalIP":        `{.status.addresses[?(@.type=="InternalIP")].address}`,
			"flannel public IP": `{.metadata.annotations.flannel\.alpha\.coreos\.com/public-ip}`,
		} {
			harness.WaitFor(t, 2*time.Minute, "a1's "+what+" is its new address", func() (bool, error) {
				out, err := s2.Kubectl("get", "node", "a1", "-o", "jsonpath="+jsonpath)
				return out == ip, fmt.Errorf("%v: %s (moved from %s)", err, out, old)
			})
		}
		harness.WaitFor(t, 2*time.Minute, "the restarted a1 renews its lease", func() (bool, error) {
			out, err := s2.Kubectl("get", "lease", "-n", "kube-node-lease", "a1", "-o", "jsonpath={.spec.renewTime}")
			renewed, perr := time.Parse(time.RFC3339Nano, out)
			return err == nil && perr == nil && renewed.After(restarted), fmt.Errorf("%v %v: %s", err, perr, out)
		})
		waitNodeReady(t, s2, "a1")
		// The pods kept running; traffic between them now goes to the new
		// address, and exec reaches the kubelet by it (its serving
		// certificate names it).
		onA1, onS2 := spreadPodOn(t, s2, "a1"), spreadPodOn(t, s2, "s2")
		for _, pair := range [][2][2]string{{onA1, onS2}, {onS2, onA1}} {
			from, to := pair[0], pair[1]
			harness.WaitFor(t, time.Minute, from[0]+" reaches "+to[0], func() (bool, error) {
				out, err := s2.Kubectl("exec", from[0], "--", "/app", "get", "http://"+to[1]+":8080/")
				return err == nil && strings.Contains(out, "hello from "+to[0]), fmt.Errorf("%v: %s", err, out)
			})
		}
	})

	t.Run("bad agents are refused", func(t *testing.T) {
		cases := []struct {
			name, node, token, want string
		}{
			{"wrong token", "a2", "K10" + agentToken[3:67] + "::node:wrong", "token rejected by"},
			{"taken node name", "a1", agentToken, `node name "a1" belongs to another host`},
		}
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				h := n.AddHost(t, fmt.Sprintf("x%d", i))
				bad := cluster.NewAgent(t, k3haBin, h, s2.URL(), c.token, "--node-name", c.node)
				bad.Start()
				code, err := bad.Proc.Wait(2 * time.Minute)
				if err != nil || code == 0 || !strings.Contains(bad.Proc.Log(), c.want) {
					t.Fatalf("exit %d %v, want an error mentioning %q:\n%s", code, err, c.want, tail(bad.Proc.Log(), 15))
				}
			})
		}
		waitNodeReady(t, s2, "a1")
	})

	t.Run("deleting a server's node removes its etcd member", func(t *testing.T) {
		s2.MustKubectl("delete", "node", "s3")
		harness.WaitFor(t, time.Minute, "two etcd members", func() (bool, error) {
			names := memberNames(t, s2)
			return len(names) == 2, fmt.Errorf("%v", names)
		})
		code, err := s3.Proc.Wait(time.Minute)
		if err != nil || code == 0 {
			t.Fatalf("s3 kept running after its member was removed: %d %v", code, err)
		}
		s3.Start()
		code, err = s3.Proc.Wait(time.Minute)
		if err != nil || code == 0 || !strings.Contains(s3.Proc.Log(), "removed from the cluster") || !strings.Contains(s3.Proc.Log(), "--server") {
			t.Fatalf("restart of a removed server: exit %d %v:\n%s", code, err, tail(s3.Proc.Log(), 15))
		}
		if err := putConfigMap(t, s2, "after-removal", "ok"); err != nil {
			t.Fatalf("write after the removal: %v", err)
		}
	})
}

const spreadDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: spread
spec:
  replicas: 4
  selector:
    matchLabels: {app: spread}
  template:
    metadata:
      labels: {app: spread}
    spec:
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: DoNotSchedule
        labelSelector:
          matchLabels: {app: spread}
      containers:
      - name: app
        image: ` + testImageRef + `
        imagePullPolicy: Never
        args: ["serve", ":8080"]
---
apiVersion: v1
kind: Service
metadata:
  name: spread
spec:
  selector: {app: spread}
  ports:
  - port: 80
    targetPort: 8080
`

// spreadPodOn returns the name and IP of the spread Deployment's pod on node.
func spreadPodOn(t *testing.T, s *cluster.Server, node string) [2]string {
	t.Helper()
	out := s.MustKubectl("get", "pods", "-l", "app=spread", "--field-selector", "spec.nodeName="+node, "-o",
		`jsonpath={range .items[*]}{.metadata.name} {.status.podIP}{"\n"}{end}`)
	f := strings.Fields(out)
	if len(f) < 2 {
		t.Fatalf("no spread pod on %s: %q", node, out)
	}
	return [2]string{f[0], f[1]}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// netDiagnostics shows the routes and filter rules of two nodes, for a
// failed pod-to-pod check.
func netDiagnostics(t *testing.T, n *harness.Network, nodes ...string) string {
	var b strings.Builder
	for _, node := range nodes {
		h := n.Host(node)
		if h == nil {
			continue
		}
		routes, _ := h.Run(t, "ip", "route")
		rules, _ := h.Run(t, "iptables-save")
		fmt.Fprintf(&b, "--- %s routes:\n%s--- %s iptables:\n%s", node, routes, node, rules)
	}
	return b.String()
}
