package podnet

import (
	"context"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/k3ha/k3ha/internal/agent/nodewait"
)

func node(name, podCIDR, ip string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if podCIDR != "" {
		n.Spec.PodCIDR = podCIDR
		n.Spec.PodCIDRs = []string{podCIDR}
	}
	if ip != "" {
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}}
	}
	return n
}

// summary renders routes as "dst via gw" for comparison.
func summary[R interface{ String() string }](rs []R) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.String())
	}
	return out
}

func (h hostRoute) String() string { return h.Dst.String() + " via " + h.Gw.String() }
func (w nodeRoute) String() string { return w.hostRoute.String() + " (" + w.Node + ")" }

func TestDesiredRoutes(t *testing.T) {
	cluster := mustCIDR(t, "10.42.0.0/16")
	nodes := []*corev1.Node{
		node("self", "10.42.0.0/24", "192.168.1.10"),
		node("b", "10.42.1.0/24", "192.168.1.11"),
		node("a", "10.42.2.0/24", "192.168.1.12"),
		node("starting", "", "192.168.1.13"),            // no CIDR yet: skipped, no warning
		node("noaddr", "10.42.4.0/24", ""),              // no InternalIP yet: skipped, no warning
		node("outside", "10.99.0.0/24", "192.168.1.15"), // not in the cluster CIDR
		node("dup", "10.42.1.0/24", "192.168.1.16"),     // b's CIDR; "b" sorts first and keeps it
		node("mine", "10.42.0.0/24", "192.168.1.17"),    // this node's CIDR
		node("sameip", "10.42.8.0/24", "192.168.1.10"),  // this node's IP
		node("v6", "fd00::/64", "192.168.1.18"),
	}
	want, problems := desiredRoutes("self", net.ParseIP("192.168.1.10"), cluster, nodes)

	var got []nodeRoute
	for _, k := range []string{"10.42.1.0/24", "10.42.2.0/24"} {
		got = append(got, want[k])
	}
	if len(want) != 2 || !reflect.DeepEqual(summary(got), []string{
		"10.42.1.0/24 via 192.168.1.11 (b)", "10.42.2.0/24 via 192.168.1.12 (a)"}) {
		t.Errorf("want = %v", want)
	}
	for _, n := range []string{"outside", "dup", "mine", "sameip", "v6"} {
		if problems[n] == "" {
			t.Errorf("no problem reported for %s", n)
		}
	}
	if len(problems) != 5 {
		t.Errorf("problems = %v", problems)
	}
	if !strings.Contains(problems["dup"], "node b's") || !strings.Contains(problems["mine"], "node self's") {
		t.Errorf("problems = %v", problems)
	}
}

func TestDiffRoutes(t *testing.T) {
	hr := func(dst, gw string) hostRoute {
		return hostRoute{Dst: mustCIDR(t, dst), Gw: net.ParseIP(gw)}
	}
	want := map[string]nodeRoute{
		"10.42.1.0/24": {hr("10.42.1.0/24", "192.168.1.11"), "b"}, // in place
		"10.42.2.0/24": {hr("10.42.2.0/24", "192.168.1.22"), "c"}, // node moved to a new IP
		"10.42.3.0/24": {hr("10.42.3.0/24", "192.168.1.13"), "d"}, // new node
	}
	have := []hostRoute{
		hr("10.42.1.0/24", "192.168.1.11"),
		hr("10.42.2.0/24", "192.168.1.12"),
		hr("10.42.9.0/24", "192.168.1.19"), // node deleted
		hr("10.42.7.0/24", "192.168.1.17"), // node's CIDR changed
	}
	replace, remove := diffRoutes(want, have)
	if got := summary(replace); !reflect.DeepEqual(got, []string{
		"10.42.2.0/24 via 192.168.1.22 (c)", "10.42.3.0/24 via 192.168.1.13 (d)"}) {
		t.Errorf("replace = %v", got)
	}
	if got := summary(remove); !reflect.DeepEqual(got, []string{
		"10.42.7.0/24 via 192.168.1.17", "10.42.9.0/24 via 192.168.1.19"}) {
		t.Errorf("remove = %v", got)
	}

	// Converged: nothing to do.
	replace, remove = diffRoutes(want, []hostRoute{
		hr("10.42.1.0/24", "192.168.1.11"), hr("10.42.2.0/24", "192.168.1.22"), hr("10.42.3.0/24", "192.168.1.13")})
	if len(replace)+len(remove) != 0 {
		t.Errorf("converged state changes: %v %v", replace, remove)
	}
}

func TestReportWarnsOnce(t *testing.T) {
	r := &reconciler{warned: map[string]string{}}
	r.report(map[string]string{"a": "x"})
	r.report(map[string]string{"a": "x"})
	if r.warned["a"] != "x" {
		t.Fatal(r.warned)
	}
	r.report(map[string]string{})
	if len(r.warned) != 0 {
		t.Errorf("recovered node still marked: %v", r.warned)
	}
}

func TestWaitPodCIDR(t *testing.T) {
	oldMin, oldMax := nodewait.MinPoll, nodewait.MaxPoll
	nodewait.MinPoll, nodewait.MaxPoll = 10*time.Millisecond, 20*time.Millisecond
	t.Cleanup(func() { nodewait.MinPoll, nodewait.MaxPoll = oldMin, oldMax })
	client := fake.NewClientset()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	go func() {
		// The node registers first without a CIDR, then gets one.
		time.Sleep(100 * time.Millisecond)
		n, _ := client.CoreV1().Nodes().Create(ctx, node("n1", "", "192.168.1.10"), metav1.CreateOptions{})
		time.Sleep(100 * time.Millisecond)
		n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.42.3.0/24", []string{"10.42.3.0/24", "fd00:42:3::/64"}
		client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
	}()
	cidr, err := WaitPodCIDR(ctx, client, "n1")
	if err != nil || cidr.String() != "10.42.3.0/24" {
		t.Fatalf("cidr %v, err %v", cidr, err)
	}

	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if _, err := WaitPodCIDR(short, client, "never"); err == nil {
		t.Error("no error when ctx ended")
	}
}
