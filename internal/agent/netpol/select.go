// Package netpol enforces NetworkPolicy on a node. The policies themselves
// are evaluated by kube-network-policies (sigs.k8s.io/kube-network-policies):
// the first packet of every new connection to or from a pod that a policy
// selects is handed to it through an NFQUEUE, and it answers accept or
// drop. k3ha owns the netfilter rules that divert those packets, so that
// they work on kernels with nftables' compat layer but no native queue.
package netpol

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// SelectedIPs are the IPv4 addresses of this node's pods that at least one
// policy selects: only their new connections are diverted, so pods no
// policy names pay nothing.
func SelectedIPs(policies []*networkingv1.NetworkPolicy, pods []*corev1.Pod, node string) []netip.Addr {
	var out []netip.Addr
	for _, pod := range pods {
		if pod.Spec.NodeName != node || pod.Spec.HostNetwork || !selected(policies, pod) {
			continue
		}
		for _, ip := range pod.Status.PodIPs {
			addr, err := netip.ParseAddr(ip.IP)
			if err == nil && addr.Is4() {
				out = append(out, addr)
			}
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(out)
}

func selected(policies []*networkingv1.NetworkPolicy, pod *corev1.Pod) bool {
	for _, p := range policies {
		if p.Namespace != pod.Namespace {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
		if err != nil {
			// The apiserver validates selectors; an unreadable one must
			// not leave a pod unguarded, so it counts as selecting.
			return true
		}
		if sel.Matches(labels.Set(pod.Labels)) {
			return true
		}
	}
	return false
}
