package nodeaddr

import (
	"net"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestPending(t *testing.T) {
	want := Wanted("n1", net.ParseIP("10.0.0.5"), net.ParseIP("203.0.113.5"))
	uninit := corev1.Taint{Key: "node.cloudprovider.kubernetes.io/uninitialized", Value: "true", Effect: corev1.TaintEffectNoSchedule}
	other := corev1.Taint{Key: "dedicated", Effect: corev1.TaintEffectNoSchedule}
	kubeletOnly := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.5"}, {Type: corev1.NodeHostName, Address: "n1"}}
	moved := Wanted("n1", net.ParseIP("10.0.0.9"), net.ParseIP("203.0.113.5"))
	cases := []struct {
		name             string
		addrs            []corev1.NodeAddress
		taints           []corev1.Taint
		wantAddr, wantTa bool
	}{
		{"just registered by the kubelet", kubeletOnly, []corev1.Taint{uninit}, true, true},
		{"no addresses yet", nil, []corev1.Taint{uninit}, true, true},
		{"published", want, nil, false, false},
		{"published, another taint stays someone else's", want, []corev1.Taint{other}, false, false},
		{"the node moved since", moved, nil, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := &corev1.Node{Spec: corev1.NodeSpec{Taints: c.taints}, Status: corev1.NodeStatus{Addresses: c.addrs}}
			a, ta := Pending(n, want)
			if a != c.wantAddr || ta != c.wantTa {
				t.Fatalf("Pending = addresses %v, taint %v; want %v, %v", a, ta, c.wantAddr, c.wantTa)
			}
		})
	}
	if want[0].Type != corev1.NodeInternalIP || want[1].Address != "203.0.113.5" || want[2].Address != "n1" {
		t.Fatalf("Wanted: %+v", want)
	}
}
