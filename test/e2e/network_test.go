//go:build e2e

package e2e

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/k3ha/k3ha/internal/agent/podnet"
	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

// TestPodNetwork runs flannel's backends (short subtest names: the data
// dirs under them must fit containerd's socket paths): VXLAN between nodes on two
// subnets joined by a router (nothing routes pod CIDRs between them but
// the overlay) to the nodes' external addresses, with NetworkPolicy
// enforced; WireGuard the same way, its traffic unreadable on the router;
// host routes on one subnet, without policies; and none, which leaves the
// network to the user.
func TestPodNetwork(t *testing.T) {
	t.Run("vxlan two subnets", func(t *testing.T) { // with external IPs and network policies
		na, nb := harness.NewNetwork(t), harness.NewNetwork(t)
		s, a := na.AddHost(t, "s1"), nb.AddHost(t, "a1")
		router := harness.Route(t, na, nb)
		// Each node also has an external address, which pod traffic uses.
		sExt, aExt := s.AddAddress(t), a.AddAddress(t)
		srv, ag := serverAndAgent(t, s, a, []string{"--flannel-external-ip", "--node-external-ip", sExt.String()},
			[]string{"--node-external-ip", aExt.String()})
		for node, ext := range map[string]string{"s1": sExt.String(), "a1": aExt.String()} {
			backendAnnotation(t, srv, node, "vxlan")
			harness.WaitFor(t, time.Minute, node+"'s addresses and flannel endpoint", func() (bool, error) {
				out, err := srv.Kubectl("get", "node", node, "-o", `jsonpath={.status.addresses[?(@.type=="ExternalIP")].address} `+
					`{.metadata.annotations.flannel\.alpha\.coreos\.com/public-ip} {.spec.taints}`)
				return strings.TrimSpace(out) == ext+" "+ext, fmt.Errorf("%v: %q", err, out) // and no taint
			})
		}
		farPod := podsReachAcross(t, srv, "s1", "a1")
		if out, err := s.Run(t, "ip", "route", "get", farPod); err != nil || !strings.Contains(out, "dev flannel.1") {
			t.Errorf("s1's route to a pod on a1 does not use the VXLAN device: %v %s", err, out)
		}
		if out, err := s.Run(t, "bridge", "fdb", "show", "dev", "flannel.1"); err != nil || !strings.Contains(out, "dst "+aExt.String()) {
			t.Errorf("s1 does not send a1's pod traffic to a1's external address %s: %v %s", aExt, err, out)
		}
		// VXLAN is not encrypted: the router sees the answer's body (which
		// also shows that the capture below for WireGuard would see it).
		if c := captureFarAnswer(t, srv, router, farPod, "8472"); !strings.Contains(c, "hello from on-a1") {
			t.Errorf("the router's capture lacks the VXLAN traffic's plaintext:\n%s", tail(c, 20))
		}
		policyTableOn(t, s)
		policyTableOn(t, a)
		checkNetworkPolicies(t, srv, "a1", "s1", ag)
	})

	t.Run("wireguard two subnets", func(t *testing.T) {
		na, nb := harness.NewNetwork(t), harness.NewNetwork(t)
		s, a := na.AddHost(t, "s1"), nb.AddHost(t, "a1")
		router := harness.Route(t, na, nb)
		srv, _ := serverAndAgent(t, s, a, []string{"--flannel-backend", "wireguard-native"}, nil)
		for _, node := range []string{"s1", "a1"} {
			backendAnnotation(t, srv, node, "wireguard")
		}
		farPod := podsReachAcross(t, srv, "s1", "a1")
		if out, err := s.Run(t, "ip", "route", "get", farPod); err != nil || !strings.Contains(out, "dev flannel-wg") {
			t.Errorf("s1's route to a pod on a1 does not use the WireGuard device: %v %s", err, out)
		}
		// The kernel's WireGuard where there is one, else wireguard-go.
		dev, _ := s.Run(t, "ip", "-d", "link", "show", "flannel-wg")
		t.Logf("WireGuard device: %s", dev)
		if c := captureFarAnswer(t, srv, router, farPod, "51820"); strings.Contains(c, "hello from on-a1") {
			t.Errorf("the router saw pod traffic in plaintext under WireGuard:\n%s", tail(c, 20))
		}
	})

	// host-gw also runs without network policies.
	t.Run("host-gw", func(t *testing.T) {
		n := harness.NewNetwork(t)
		s, a := n.AddHost(t, "s1"), n.AddHost(t, "a1")
		srv, _ := serverAndAgent(t, s, a, []string{"--flannel-backend", "host-gw", "--disable-network-policy"}, nil)
		for _, node := range []string{"s1", "a1"} {
			backendAnnotation(t, srv, node, "host-gw")
		}
		farPod := podsReachAcross(t, srv, "s1", "a1")
		if out, err := s.Run(t, "ip", "route", "get", farPod); err != nil || !strings.Contains(out, "via "+a.IP.String()+" dev eth0") {
			t.Errorf("s1's route to a pod on a1 is not a host route via a1: %v %s", err, out)
		}
		checkPoliciesNotEnforced(t, srv, "a1", "s1", s, a)
	})

	t.Run("none", func(t *testing.T) {
		n := harness.NewNetwork(t)
		none := newServer(t, n.AddHost(t, "none"), "--flannel-backend", "none")
		none.Start()
		none.WaitReady()
		none.WaitLog(t, 2*time.Minute, "k3ha sets up no pod network")
		harness.WaitFor(t, 2*time.Minute, "node none NotReady for want of a network", func() (bool, error) {
			out, err := none.Kubectl("get", "node", "none", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].message}`)
			return strings.Contains(out, "network"), fmt.Errorf("%v: %s", err, out)
		})
		if f := findFile(t, none.DataDir(), podnet.CNIConfigFile); f != "" {
			t.Errorf("--flannel-backend=none wrote a CNI config: %s", f)
		}
	})
}

// serverAndAgent starts a server on s and an agent on a joined to it, and
// waits for both nodes to be Ready.
func serverAndAgent(t *testing.T, s, a *harness.Host, serverArgs, agentArgs []string) (*cluster.Server, *cluster.Server) {
	t.Helper()
	srv := newServer(t, s, serverArgs...)
	withTestImage(t, srv)
	srv.Start()
	srv.WaitReady()
	agentToken := readFile(t, filepath.Join(srv.DataDir(), "server", "agent-token"))
	ag := cluster.NewAgent(t, k3haBin, a, srv.URL(), agentToken, agentArgs...)
	withTestImage(t, ag)
	ag.Start()
	waitNodeReady(t, srv, s.Name)
	waitNodeReady(t, srv, a.Name)
	return srv, ag
}

// backendAnnotation waits for flannel's lease on the node to name backend.
func backendAnnotation(t *testing.T, s *cluster.Server, node, backend string) {
	t.Helper()
	harness.WaitFor(t, time.Minute, "flannel backend of "+node, func() (bool, error) {
		out, err := s.Kubectl("get", "node", node, "-o", `jsonpath={.metadata.annotations.flannel\.alpha\.coreos\.com/backend-type}`)
		return out == backend, fmt.Errorf("%v: %q", err, out)
	})
}

// podsReachAcross runs a pod on each node and checks that each reaches the
// other by IP, and the near one a Service whose only endpoint is the far
// one. It returns the far pod's IP.
func podsReachAcross(t *testing.T, s *cluster.Server, near, far string) string {
	t.Helper()
	for _, node := range []string{near, far} {
		if err := kubectlApply(s, podYAML("on-"+node, node)); err != nil {
			t.Fatal(err)
		}
	}
	svc := fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: far
spec:
  selector: {app: on-%s}
  ports:
  - port: 80
    targetPort: 8080
`, far)
	if err := kubectlApply(s, svc); err != nil {
		t.Fatal(err)
	}
	ips := map[string]string{}
	for _, node := range []string{near, far} {
		waitPodRunning(t, s, "on-"+node)
		ips[node] = s.MustKubectl("get", "pod", "on-"+node, "-o", "jsonpath={.status.podIP}")
	}
	for _, pair := range [][2]string{{near, far}, {far, near}} {
		from, to := pair[0], pair[1]
		out, err := s.Kubectl("exec", "on-"+from, "--", "/app", "get", "http://"+ips[to]+":8080/")
		if err != nil || !strings.Contains(out, "hello from on-"+to) {
			t.Errorf("pod on %s → pod on %s (%s): %v %s", from, to, ips[to], err, out)
		}
	}
	ip := s.MustKubectl("get", "service", "far", "-o", "jsonpath={.spec.clusterIP}")
	harness.WaitFor(t, time.Minute, "the Service with its endpoint on "+far+" answers on "+near, func() (bool, error) {
		out, err := s.Kubectl("exec", "on-"+near, "--", "/app", "get", "http://"+ip+"/")
		return strings.Contains(out, "hello from on-"+far), fmt.Errorf("%v: %s", err, out)
	})
	return ips[far]
}

// captureFarAnswer captures every packet through the router (contents in
// ASCII, as tcpdump -A prints them) while pod on-s1 fetches a page from the
// pod at farPod, which answers "hello from on-a1"; it stops once the
// capture shows packets to port, the tunnel's.
func captureFarAnswer(t *testing.T, s *cluster.Server, router *harness.Host, farPod, port string) string {
	t.Helper()
	// Every packet but the API's and the kubelet's, which would crowd the
	// capture buffer on a busy machine until the kernel drops the answer.
	p := router.Start(t, filepath.Join(t.TempDir(), "capture.txt"), nil,
		"tcpdump", "-i", "any", "-n", "-l", "--immediate-mode", "-B", "16384", "-A", "-s", "0",
		"(udp or tcp) and not port 6443 and not port 10250")
	harness.WaitFor(t, 30*time.Second, "tcpdump listening on the router", func() (bool, error) {
		return strings.Contains(p.Log(), "listening on"), fmt.Errorf("%s", p.Log())
	})
	out, err := s.Kubectl("exec", "on-s1", "--", "/app", "get", "http://"+farPod+":8080/")
	if err != nil || !strings.Contains(out, "hello from on-a1") {
		t.Errorf("on-s1 → %s during the capture: %v %s", farPod, err, out)
	}
	harness.WaitFor(t, 30*time.Second, "the tunnel's packets in the capture", func() (bool, error) {
		return strings.Contains(p.Log(), "."+port+": "), fmt.Errorf("%s", tail(p.Log(), 10))
	})
	_ = p.Stop(10 * time.Second) // tcpdump ends with a summary and status 0 or 1
	return p.Log()
}

// findFile returns the path of a file named name under dir, "" if none.
func findFile(t *testing.T, dir, name string) string {
	t.Helper()
	var found string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == name {
			found = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
