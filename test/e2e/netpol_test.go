//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/k3ha/k3ha/internal/agent/netpol"
	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

// policyPods are a web server on serverNode in namespace np, a second one
// in np-other, and three clients in np: friend (role=friend) and stranger
// on clientNode, neighbour beside the web server (its traffic is bridged,
// not routed).
type policyPods struct {
	s   *cluster.Server
	ips map[string]string // "ns/name" → pod IP
}

func startPolicyPods(t *testing.T, s *cluster.Server, serverNode, clientNode string) *policyPods {
	t.Helper()
	p := &policyPods{s: s, ips: map[string]string{}}
	pods := []struct{ ns, name, node, labels string }{
		{"np", "web", serverNode, "app: web"},
		{"np-other", "web2", serverNode, "app: web2"},
		{"np", "friend", clientNode, "role: friend"},
		{"np", "stranger", clientNode, "role: stranger"},
		{"np", "neighbour", serverNode, "role: neighbour"},
	}
	for _, ns := range []string{"np", "np-other"} {
		if _, err := s.Kubectl("create", "namespace", ns); err != nil {
			t.Fatal(err)
		}
	}
	for _, pod := range pods {
		if err := kubectlApply(s, cluster.PodYAML(pod.ns, pod.name, pod.node, pod.labels, testImageRef, `"serve", ":8080"`)); err != nil {
			t.Fatal(err)
		}
	}
	for _, pod := range pods {
		harness.WaitFor(t, 3*time.Minute, "pod "+pod.ns+"/"+pod.name+" Running with an IP", func() (bool, error) {
			out, err := s.Kubectl("get", "pod", "-n", pod.ns, pod.name, "-o", "jsonpath={.status.phase} {.status.podIP}")
			f := strings.Fields(out)
			if len(f) == 2 && f[0] == "Running" {
				p.ips[pod.ns+"/"+pod.name] = f[1]
			}
			return len(f) == 2 && f[0] == "Running", fmt.Errorf("%v: %s", err, out)
		})
	}
	return p
}

// reaches tells whether client (in np) gets an answer from target's port
// 8080 (true), or its connection times out, as a dropped packet makes it
// (false); any other outcome is an error.
func (p *policyPods) reaches(client, target string) (bool, error) {
	out, err := p.s.Kubectl("exec", "-n", "np", client, "--", "/app", "get", "http://"+p.ips[target]+":8080/")
	name := target[strings.Index(target, "/")+1:]
	switch {
	case err == nil && strings.Contains(out, "hello from "+name):
		return true, nil
	case err != nil && strings.Contains(out, "Client.Timeout exceeded"):
		return false, nil
	}
	return false, fmt.Errorf("%v: %s", err, out)
}

// expect waits until every client→target pair is as wanted: a policy takes
// effect asynchronously, so the first checks may still see the old state.
func (p *policyPods) expect(t *testing.T, what string, want map[[2]string]bool) {
	t.Helper()
	start := time.Now()
	defer func() { t.Logf("%s: %s", what, time.Since(start).Round(time.Millisecond)) }()
	harness.WaitFor(t, time.Minute, what, func() (bool, error) {
		var wrong []string
		for pair, ok := range want {
			if got, err := p.reaches(pair[0], pair[1]); err != nil || got != ok {
				wrong = append(wrong, fmt.Sprintf("%s→%s reached=%v, want %v (%v)", pair[0], pair[1], got, ok, err))
			}
		}
		return len(wrong) == 0, fmt.Errorf("%s", strings.Join(wrong, "; "))
	})
}

func (p *policyPods) apply(t *testing.T, yaml string) {
	t.Helper()
	if err := kubectlApply(p.s, yaml); err != nil {
		t.Fatal(err)
	}
}

const (
	denyIngress = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: np, name: deny-ingress}
spec:
  podSelector: {}
  policyTypes: [Ingress]
`
	allowFriend = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: np, name: allow-friend}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from:
    - podSelector: {matchLabels: {role: friend}}
    ports:
    - {port: http, protocol: TCP}
`
	// fromBlueNamespaces lets into web2 only pods of namespaces labelled team=blue.
	fromBlueNamespaces = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: np-other, name: from-blue}
spec:
  podSelector: {matchLabels: {app: web2}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: blue}}
`
	// friendEgress lets friend reach anything but the address it is given.
	friendEgress = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: np, name: friend-egress}
spec:
  podSelector: {matchLabels: {role: friend}}
  policyTypes: [Egress]
  egress:
  - to:
    - ipBlock: {cidr: 0.0.0.0/0, except: [%s/32]}
`
)

// checkNetworkPolicies walks through what a user does with policies:
// default-deny, one label let through (to a named port), an egress limit
// (an ipBlock with an exception), a namespace selector, and deleting them. webNode is the k3ha
// process of serverNode: stopped, it must not let through what its policies
// would refuse.
func checkNetworkPolicies(t *testing.T, s *cluster.Server, serverNode, clientNode string, webNode *cluster.Server) {
	p := startPolicyPods(t, s, serverNode, clientNode)
	const web, web2 = "np/web", "np-other/web2"
	p.expect(t, "every client reaches both servers without a policy", map[[2]string]bool{
		{"friend", web}: true, {"stranger", web}: true, {"neighbour", web}: true, {"friend", web2}: true,
	})
	p.apply(t, denyIngress)
	p.expect(t, "default-deny ingress in np blocks every client of web", map[[2]string]bool{
		{"friend", web}: false, {"stranger", web}: false, {"neighbour", web}: false, {"friend", web2}: true,
	})
	p.apply(t, allowFriend)
	p.expect(t, "the role=friend pod, and only it, gets through", map[[2]string]bool{
		{"friend", web}: true, {"stranger", web}: false, {"neighbour", web}: false,
	})
	// Fail closed: with k3ha stopped on web's node (the pod runs on), no new
	// connection reaches web; back up, the policies apply again.
	webNode.Stop(30 * time.Second)
	p.expect(t, "with k3ha down on web's node, nothing new reaches web", map[[2]string]bool{
		{"friend", web}: false, {"stranger", web}: false,
	})
	webNode.Start()
	p.expect(t, "k3ha back on web's node: friend gets through again, only it", map[[2]string]bool{
		{"friend", web}: true, {"stranger", web}: false,
	})
	p.apply(t, fmt.Sprintf(friendEgress, p.ips[web2]))
	p.expect(t, "friend's egress policy blocks web2 and keeps web", map[[2]string]bool{
		{"friend", web}: true, {"friend", web2}: false, {"stranger", web2}: true,
	})
	p.apply(t, fromBlueNamespaces)
	p.expect(t, "a namespace selector keeps np (not team=blue) out of web2", map[[2]string]bool{
		{"stranger", web2}: false,
	})
	s.MustKubectl("label", "namespace", "np", "team=blue")
	p.expect(t, "labelled team=blue, np's pods get into web2", map[[2]string]bool{
		{"stranger", web2}: true,
	})
	s.MustKubectl("delete", "networkpolicy", "-n", "np", "--all")
	s.MustKubectl("delete", "networkpolicy", "-n", "np-other", "--all")
	p.expect(t, "deleting the policies restores access", map[[2]string]bool{
		{"friend", web}: true, {"stranger", web}: true, {"neighbour", web}: true, {"friend", web2}: true,
	})
	for _, line := range strings.Split(s.Proc.Log(), "\n") {
		if strings.Contains(line, "level=ERROR") && (strings.Contains(line, "network polic") || strings.Contains(line, "nftables") || strings.Contains(line, "nfqueue")) {
			t.Errorf("server log: %s", line)
		}
	}
}

// checkPoliciesNotEnforced: with --disable-network-policy, a default-deny
// policy is stored but nothing diverts the pods' traffic to an evaluator.
func checkPoliciesNotEnforced(t *testing.T, s *cluster.Server, serverNode, clientNode string, hosts ...*harness.Host) {
	p := startPolicyPods(t, s, serverNode, clientNode)
	p.apply(t, denyIngress)
	s.WaitLog(t, time.Minute, "--disable-network-policy: NetworkPolicy objects are not enforced")
	for _, h := range hosts {
		if out, err := h.Run(t, "nft", "list", "tables"); err != nil || strings.Contains(out, netpol.TableName) {
			t.Errorf("%s: %v: network policy rules present with --disable-network-policy: %s", h.Name, err, out)
		}
	}
	p.expect(t, "clients reach web despite a default-deny policy", map[[2]string]bool{
		{"stranger", "np/web"}: true, {"neighbour", "np/web"}: true,
	})
}

// policyTableOn checks that a node diverts policy-selected pods' traffic.
func policyTableOn(t *testing.T, h *harness.Host) {
	t.Helper()
	harness.WaitFor(t, time.Minute, h.Name+"'s network policy rules", func() (bool, error) {
		out, err := h.Run(t, "nft", "list", "tables")
		return err == nil && strings.Contains(out, netpol.TableName), fmt.Errorf("%v: %s", err, out)
	})
}
