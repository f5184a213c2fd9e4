package netpol

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func pod(ns, name, node string, labels map[string]string, ips ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}, Spec: corev1.PodSpec{NodeName: node}}
	for _, ip := range ips {
		p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: ip})
	}
	return p
}

func policy(ns string, sel metav1.LabelSelector) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"}, Spec: networkingv1.NetworkPolicySpec{PodSelector: sel}}
}

func TestSelectedIPs(t *testing.T) {
	web := map[string]string{"app": "web"}
	hostNet := pod("a", "host", "n1", web, "192.168.1.10")
	hostNet.Spec.HostNetwork = true
	pods := []*corev1.Pod{
		pod("a", "web1", "n1", web, "10.42.0.5", "fd00::5"),
		pod("a", "web2", "n2", web, "10.42.1.5"), // another node's
		pod("a", "db", "n1", map[string]string{"app": "db"}, "10.42.0.6"),
		pod("b", "web3", "n1", web, "10.42.0.7"), // another namespace
		pod("a", "pending", "n1", web),           // no IP yet
		hostNet,
	}
	cases := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		want     []string
	}{
		{"no policy selects nothing", nil, nil},
		{"label selector picks this node's matching pods in its namespace",
			[]*networkingv1.NetworkPolicy{policy("a", metav1.LabelSelector{MatchLabels: web})}, []string{"10.42.0.5"}},
		{"empty selector picks the whole namespace",
			[]*networkingv1.NetworkPolicy{policy("a", metav1.LabelSelector{})}, []string{"10.42.0.5", "10.42.0.6"}},
		{"two policies, one pod each, no duplicates",
			[]*networkingv1.NetworkPolicy{policy("a", metav1.LabelSelector{}), policy("a", metav1.LabelSelector{MatchLabels: web}), policy("b", metav1.LabelSelector{})},
			[]string{"10.42.0.5", "10.42.0.6", "10.42.0.7"}},
		{"expressions",
			[]*networkingv1.NetworkPolicy{policy("a", metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"web"}}}})},
			[]string{"10.42.0.6"}},
		{"a selector that cannot be read guards every pod of its namespace",
			[]*networkingv1.NetworkPolicy{policy("a", metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Bogus"}}})},
			[]string{"10.42.0.5", "10.42.0.6"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, a := range SelectedIPs(c.policies, pods, "n1") {
				got = append(got, a.String())
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}
