package podnet

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// roleEnv selects what TestHelperProcess does in the namespace it was
// started in.
const roleEnv = "K3HA_PODNET_ROLE"

// nodeSpec describes one fake node to the "node" helper.
type nodeSpec struct {
	Name, IP, PodCIDR string
	PodNetns          string // the pod's network namespace (a /run/netns path)
	ConfDir, IPAMDir  string
	All               [][3]string // every node: name, pod CIDR, InternalIP
}

// TestTwoNodes is the whole package against the real CNI plugins: two
// "nodes" (network namespaces joined by a veth pair) each run Prepare,
// write the conflist, add a pod in its own namespace with the plugins it
// names, and routes to the other's pods. Then a pod talks to the other node's pod (its
// source IP must arrive unchanged) and to the other node's IP (it must
// arrive masqueraded to its node's IP).
func TestTwoNodes(t *testing.T) {
	if os.Getenv(inNetnsEnv) != "" || os.Getenv(roleEnv) != "" {
		t.Skip("helper process")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, bin := range []string{"ip", "iptables", "iptables-restore", cniBinDir + "/bridge", cniBinDir + "/host-local", cniBinDir + "/portmap"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (apt-get install containernetworking-plugins iptables)", bin)
		}
	}
	id := os.Getpid()
	ns := func(s string) string { return fmt.Sprintf("k3ha-podnet-%s-%d", s, id) }
	for _, n := range []string{"na", "nb", "pa", "pb"} {
		name := ns(n)
		if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
			t.Fatalf("netns %s: %v: %s", name, err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
				t.Errorf("delete netns %s: %v: %s", name, err, out)
			}
		})
		run(t, "ip", "-n", name, "link", "set", "lo", "up")
	}
	// The "L2 network": one veth pair between the node namespaces.
	run(t, "ip", "link", "add", "k3ha-a", "netns", ns("na"), "type", "veth", "peer", "name", "k3ha-b", "netns", ns("nb"))
	run(t, "ip", "-n", ns("na"), "addr", "add", "10.99.0.1/24", "dev", "k3ha-a")
	run(t, "ip", "-n", ns("nb"), "addr", "add", "10.99.0.2/24", "dev", "k3ha-b")
	run(t, "ip", "-n", ns("na"), "link", "set", "k3ha-a", "up")
	run(t, "ip", "-n", ns("nb"), "link", "set", "k3ha-b", "up")

	all := [][3]string{{"a", "10.42.1.0/24", "10.99.0.1"}, {"b", "10.42.2.0/24", "10.99.0.2"}}
	podIP := map[string]string{}
	for i, n := range []string{"a", "b"} {
		dir := t.TempDir()
		spec := nodeSpec{Name: n, IP: all[i][2], PodCIDR: all[i][1], PodNetns: "/run/netns/" + ns("p"+n),
			ConfDir: filepath.Join(dir, "net.d"), IPAMDir: filepath.Join(dir, "ipam"), All: all}
		b, _ := json.Marshal(spec)
		out := helper(t, ns("n"+n), "node", string(b))
		podIP[n] = field(t, out, "POD_IP")
		t.Logf("node %s: pod %s\n%s", n, podIP[n], run(t, "ip", "-n", ns("n"+n), "route"))
	}
	if !strings.HasPrefix(podIP["a"], "10.42.1.") || !strings.HasPrefix(podIP["b"], "10.42.2.") {
		t.Fatalf("pod IPs %v", podIP)
	}

	// Pod to pod across nodes: the source stays the pod's IP.
	if seen := udpExchange(t, ns("pb"), ns("pa"), podIP["b"]); seen != podIP["a"] {
		t.Errorf("pod b saw pod a as %s, want %s", seen, podIP["a"])
	}
	// Pod to outside the cluster CIDR (here node b's IP): masqueraded.
	if seen := udpExchange(t, ns("nb"), ns("pa"), "10.99.0.2"); seen != "10.99.0.1" {
		t.Errorf("node b saw pod a as %s, want node a's 10.99.0.1", seen)
	}
	t.Logf("node a nat counters:\n%s", run(t, "ip", "netns", "exec", ns("na"), "iptables", "-t", "nat", "-L", "K3HA-POSTROUTING", "-n", "-v", "-x"))
}

const cniBinDir = "/usr/lib/cni"

// helper runs TestHelperProcess in netns with the given role and argument.
func helper(t *testing.T, netns, role, arg string) string {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", netns, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), roleEnv+"="+role, "K3HA_PODNET_ARG="+arg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s helper in %s: %v\n%s", role, netns, err, out)
	}
	return string(out)
}

// udpExchange sends a datagram from a process in clientNS to a server in
// serverNS and returns the source address the server saw.
func udpExchange(t *testing.T, serverNS, clientNS, serverIP string) string {
	t.Helper()
	srv := exec.Command("ip", "netns", "exec", serverNS, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	srv.Env = append(os.Environ(), roleEnv+"=udp-server")
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Wait()
	defer srv.Process.Kill()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || !strings.HasPrefix(line, "READY") {
		t.Fatalf("udp server: %q %v", line, err)
	}
	out := helper(t, clientNS, "udp-client", net.JoinHostPort(serverIP, "9999"))
	return field(t, out, "SEEN")
}

// field returns the value of a KEY=value line in a helper's output.
func field(t *testing.T, out, key string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in helper output:\n%s", key, out)
	return ""
}

// TestHelperProcess is a node, a pod or a server for TestTwoNodes, in the
// network namespace it was started in.
func TestHelperProcess(t *testing.T) {
	arg := os.Getenv("K3HA_PODNET_ARG")
	switch os.Getenv(roleEnv) {
	case "":
		t.Skip("run by TestTwoNodes")
	case "node":
		helperNode(t, arg)
	case "udp-server":
		c, err := net.ListenPacket("udp4", ":9999")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("READY")
		c.SetDeadline(time.Now().Add(15 * time.Second))
		buf := make([]byte, 64)
		_, from, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteTo([]byte(from.(*net.UDPAddr).IP.String()), from); err != nil {
			t.Fatal(err)
		}
	case "udp-client":
		c, err := net.Dial("udp4", arg)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("SEEN=%s\n", buf[:n])
	}
}

func helperNode(t *testing.T, arg string) {
	var s nodeSpec
	if err := json.Unmarshal([]byte(arg), &s); err != nil {
		t.Fatal(err)
	}
	cfg := Config{NodeName: s.Name, NodeIP: net.ParseIP(s.IP), ClusterCIDR: "10.42.0.0/16",
		CNIConfDir: s.ConfDir, IPAMDataDir: s.IPAMDir}
	podCIDR := mustCIDR(t, s.PodCIDR)
	if err := Prepare(cfg, podCIDR); err != nil {
		t.Fatal(err)
	}
	if err := WriteCNIConfig(cfg, podCIDR); err != nil {
		t.Fatal(err)
	}
	result := cniAdd(t, filepath.Join(s.ConfDir, CNIConfigFile), s.PodNetns)
	// The other node's pods by a plain route, as flannel's host-gw backend
	// sets it up.
	for _, n := range s.All {
		if n[0] != s.Name {
			run(t, "ip", "route", "replace", n[1], "via", n[2])
		}
	}
	var res struct {
		IPs []struct{ Address string }
	}
	if err := json.Unmarshal(result, &res); err != nil || len(res.IPs) == 0 {
		t.Fatalf("CNI result %s: %v", result, err)
	}
	ip, _, _ := net.ParseCIDR(res.IPs[0].Address)
	fmt.Printf("POD_IP=%s\n", ip)
}

// cniAdd runs the conflist's plugins for ADD the way a runtime does: each
// gets its own config plus name, cniVersion, the previous result and the
// runtime config for the capabilities it declares.
func cniAdd(t *testing.T, confPath, netnsPath string) []byte {
	data, err := os.ReadFile(confPath)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		t.Fatal(err)
	}
	var prev json.RawMessage
	for _, p := range list.Plugins {
		p["name"], p["cniVersion"] = list.Name, list.CNIVersion
		if prev != nil {
			p["prevResult"] = prev
		}
		if caps, _ := p["capabilities"].(map[string]any); caps["portMappings"] == true {
			p["runtimeConfig"] = map[string]any{"portMappings": []map[string]any{
				{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}}}
		}
		conf, _ := json.Marshal(p)
		cmd := exec.Command(filepath.Join(cniBinDir, p["type"].(string)))
		cmd.Env = append(os.Environ(), "CNI_COMMAND=ADD", "CNI_CONTAINERID=k3ha-test-pod", "CNI_NETNS="+netnsPath,
			"CNI_IFNAME=eth0", "CNI_PATH="+cniBinDir)
		cmd.Stdin = strings.NewReader(string(conf))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("plugin %s: %v\n%s", p["type"], err, out)
		}
		prev = out
	}
	return prev
}
