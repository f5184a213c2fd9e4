package nodehosts

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func node(name string, addrs ...corev1.NodeAddress) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Addresses: addrs}}
}

func TestRender(t *testing.T) {
	internal := func(ip string) corev1.NodeAddress {
		return corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip}
	}
	gone := node("gone", internal("10.0.0.9"))
	gone.DeletionTimestamp = &metav1.Time{}
	got := Render([]*corev1.Node{
		node("s2", internal("10.0.0.12")),
		node("s10", internal("10.0.0.2"), corev1.NodeAddress{Type: corev1.NodeHostName, Address: "box10"}),
		node("edge", corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.5"}),
		node("dual", internal("10.0.0.3"), internal("fd00::3"), corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.6"}),
		node("noaddr"),
		gone,
	})
	want := "10.0.0.2 s10 box10\n10.0.0.3 dual\n10.0.0.12 s2\n203.0.113.5 edge\nfd00::3 dual\n"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}
