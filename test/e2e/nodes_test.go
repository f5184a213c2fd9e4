//go:build e2e

package e2e

import (
	"fmt"
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

// podSpec is a pod of the test image pinned to a node.
func podYAML(name, node string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  labels: {app: %s}
spec:
  nodeName: %s
  containers:
  - name: app
    image: %s
    imagePullPolicy: Never
    args: ["serve", ":8080"]
`, name, name, node, testImageRef)
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
