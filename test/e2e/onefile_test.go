//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

// notifyListener stands in for systemd: it receives what k3ha sends to
// NOTIFY_SOCKET, noting for each message whether the server had logged
// `k3ha is ready` by then.
type notifyListener struct {
	path string
	msgs chan notifyMsg
}

type notifyMsg struct {
	text       string
	afterReady bool
}

func listenNotify(t *testing.T, ready func() bool) *notifyListener {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	l := &notifyListener{path: path, msgs: make(chan notifyMsg, 16)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			l.msgs <- notifyMsg{text: strings.TrimSpace(string(buf[:n])), afterReady: ready()}
		}
	}()
	return l
}

func (l *notifyListener) next(t *testing.T, timeout time.Duration) notifyMsg {
	t.Helper()
	select {
	case m := <-l.msgs:
		return m
	case <-time.After(timeout):
		t.Fatalf("no notification within %v", timeout)
		return notifyMsg{}
	}
}

// nodeTool runs `k3ha <tool> args...` for the node whose data dir is dataDir.
func nodeTool(t *testing.T, bin, dataDir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "K3HA_DATA_DIR="+dataDir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestOneFile runs a server and an agent from bin/k3ha alone, on a PATH
// without runc or containerd's tools (the suite's TestMain sees to that),
// and checks what the one file brings: crictl and ctr, image pulls through
// a registries.yaml mirror with auth and TLS, the check of its unpacked
// programs, systemd notification, and the host checks.
func TestOneFile(t *testing.T) {
	n := harness.NewNetwork(t)
	reg := cluster.StartRegistry(t, registryBin, n.AddHost(t, "registry"))
	pulledImage, err := cluster.ImageOf(testApp, "k3ha.invalid/e2e/pulled:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Push("e2e/pulled", "1", pulledImage); err != nil {
		t.Fatal(err)
	}

	s1 := newServer(t, n.AddHost(t, "s1"), "--private-registry", reg.MirrorConfig(t, "registry.k3ha.test", reg.Password),
		"--disable", "metrics-server,local-storage")
	s1.Env = []string{"K3HA_TOKEN=" + haToken}
	notify := listenNotify(t, func() bool { return s1.Proc != nil && strings.Contains(s1.Proc.Log(), "k3ha is ready") })
	s1.Env = append(s1.Env, "NOTIFY_SOCKET="+notify.path)
	s1.Start()
	s1.WaitReady()

	agentToken := readFile(t, filepath.Join(s1.DataDir(), "server", "agent-token"))
	a1 := cluster.NewAgent(t, k3haBin, n.AddHost(t, "a1"), s1.URL(), agentToken, "--private-registry", reg.MirrorConfig(t, "registry.k3ha.test", "wrong-password"))
	withTestImage(t, a1)
	a1.Start()
	waitNodeReady(t, s1, "s1")
	waitNodeReady(t, s1, "a1")

	t.Run("systemd notified once ready", func(t *testing.T) {
		m := notify.next(t, time.Minute)
		if m.text != "READY=1" || !m.afterReady {
			t.Fatalf("first notification %q, sent after `k3ha is ready`: %v", m.text, m.afterReady)
		}
	})

	t.Run("crictl and ctr", func(t *testing.T) {
		if err := kubectlApply(s1, podYAML("on-a1", "a1")); err != nil {
			t.Fatal(err)
		}
		waitPodRunning(t, s1, "on-a1")
		out, err := nodeTool(t, k3haBin, a1.DataDir(), "crictl", "ps")
		if err != nil || !strings.Contains(out, "on-a1") || !strings.Contains(out, "Running") {
			t.Fatalf("k3ha crictl ps: %v\n%s", err, out)
		}
		out, err = nodeTool(t, k3haBin, a1.DataDir(), "ctr", "-n", "k8s.io", "images", "ls")
		for _, want := range []string{testImageRef, "k3ha.invalid/k3ha/svclb:v1", "k3ha.invalid/pause:1"} {
			if err != nil || !strings.Contains(out, want) {
				t.Fatalf("k3ha ctr images ls lacks %s: %v\n%s", want, err, out)
			}
		}
		// Called through a symlink named crictl, as an install makes it.
		link := filepath.Join(t.TempDir(), "crictl")
		if err := os.Symlink(k3haBin, link); err != nil {
			t.Fatal(err)
		}
		out, err = nodeTool(t, link, a1.DataDir(), "images")
		if err != nil || !strings.Contains(out, "k3ha.invalid/e2e/testapp") {
			t.Fatalf("crictl images through a symlink: %v\n%s", err, out)
		}
	})

	pulledPod := func(name, node string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  nodeName: %s
  containers:
  - name: app
    image: registry.k3ha.test/e2e/pulled:1
    imagePullPolicy: Always
    args: ["serve", ":8080"]
`, name, node)
	}

	t.Run("pull through a mirror with auth", func(t *testing.T) {
		if err := kubectlApply(s1, pulledPod("pulled", "s1")); err != nil {
			t.Fatal(err)
		}
		harness.WaitFor(t, 3*time.Minute, "pod pulled from the mirror Running", func() (bool, error) {
			out, err := s1.Kubectl("get", "pod", "pulled", "-o", "jsonpath={.status.phase}")
			if out != "Running" {
				ev, _ := s1.Kubectl("get", "events", "--field-selector", "involvedObject.name=pulled", "-o", "jsonpath={.items[*].message}")
				return false, fmt.Errorf("%v: %s; events: %s", err, out, ev)
			}
			return true, nil
		})
	})

	t.Run("wrong password: the registry's answer in describe", func(t *testing.T) {
		if err := kubectlApply(s1, pulledPod("denied", "a1")); err != nil {
			t.Fatal(err)
		}
		harness.WaitFor(t, 3*time.Minute, "pull refused with 401", func() (bool, error) {
			out, err := s1.Kubectl("describe", "pod", "denied")
			return strings.Contains(out, "401 Unauthorized"), fmt.Errorf("%v:\n%s", err, tail(out, 15))
		})
		if phase := s1.MustKubectl("get", "pod", "denied", "-o", "jsonpath={.status.phase}"); phase == "Running" {
			t.Fatal("a pod ran with an image its node could not pull")
		}
	})

	t.Run("a tampered program is replaced at start", func(t *testing.T) {
		runcs, _ := filepath.Glob(filepath.Join(a1.DataDir(), "data", "*", "bin", "runc"))
		if len(runcs) != 1 {
			t.Fatalf("unpacked runc: %v", runcs)
		}
		want, err := os.ReadFile(runcs[0])
		if err != nil {
			t.Fatal(err)
		}
		a1.Stop(30 * time.Second)
		if err := os.WriteFile(runcs[0], append(bytes.Clone(want), "tampered"...), 0o755); err != nil {
			t.Fatal(err)
		}
		a1.Start()
		a1.WaitLog(t, 2*time.Minute, "k3ha agent is ready")
		if !strings.Contains(a1.Proc.Log(), "unpacked payload differs from this binary's") {
			t.Fatalf("the tampered file went unnoticed:\n%s", tail(a1.Proc.Log(), 20))
		}
		got, err := os.ReadFile(runcs[0])
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("runc not restored (%d bytes, want %d): %v", len(got), len(want), err)
		}
		if err := kubectlApply(s1, podYAML("after-repair", "a1")); err != nil {
			t.Fatal(err)
		}
		waitPodRunning(t, s1, "after-repair")
	})

	t.Run("check-config", func(t *testing.T) {
		dir := t.TempDir()
		cmd := exec.Command(k3haBin, "check-config", "--data-dir", dir)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "STATUS: pass") {
			t.Fatalf("check-config on the test machine: %v\n%s", err, out)
		}
		noIptables := filepath.Join(dir, "path")
		if err := cluster.PathWithout(noIptables, func(name string) bool { return strings.HasPrefix(name, "iptables") }); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(k3haBin, "check-config", "--data-dir", dir)
		cmd.Env = append(os.Environ(), "PATH="+noIptables)
		out, err = cmd.CombinedOutput()
		if code := exitCode(err); code == 0 || !strings.Contains(string(out), "- iptables: fail") || !strings.Contains(string(out), "apt-get install iptables") {
			t.Fatalf("check-config without iptables: exit %d\n%s", code, out)
		}
		// A node refuses to start with the same message, before it writes anything.
		nodeDir := filepath.Join(dir, "node")
		cmd = exec.Command(k3haBin, "agent", "--server", s1.URL(), "--token", agentToken, "--data-dir", nodeDir)
		cmd.Env = append(os.Environ(), "PATH="+noIptables)
		out, err = cmd.CombinedOutput()
		if code := exitCode(err); code == 0 || !strings.Contains(string(out), "iptables: not on PATH") {
			t.Fatalf("agent without iptables: exit %d\n%s", code, out)
		}
		if _, err := os.Stat(nodeDir); !os.IsNotExist(err) {
			t.Fatalf("the refused agent made its data dir: %v", err)
		}
	})

	t.Run("systemd told of the stop", func(t *testing.T) {
		if err := s1.Proc.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if m := notify.next(t, time.Minute); m.text != "STOPPING=1" {
			t.Fatalf("notification on SIGTERM: %q", m.text)
		}
		if code, err := s1.Proc.Wait(time.Minute); err != nil || code != 0 {
			t.Fatalf("exit %d: %v", code, err)
		}
	})
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
