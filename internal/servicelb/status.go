package servicelb

import (
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Ingress is the Service's external addresses: the IPs of the nodes whose
// forwarder pod is ready (and, under externalTrafficPolicy Local, that
// also hold a ready endpoint of the Service). ExternalIPs are used if any
// of these nodes has one, else InternalIPs; only the Service's IP families.
func Ingress(svc *corev1.Service, pods []*corev1.Pod, nodes map[string]*corev1.Node, slices []*discoveryv1.EndpointSlice) []corev1.LoadBalancerIngress {
	local := svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	endpointNodes := map[string]bool{}
	for _, s := range slices {
		for _, ep := range s.Endpoints {
			if ep.NodeName != nil && (ep.Conditions.Ready == nil || *ep.Conditions.Ready) {
				endpointNodes[*ep.NodeName] = true
			}
		}
	}
	var internal, external []netip.Addr
	seen := map[string]bool{}
	for _, p := range pods {
		if p.Spec.NodeName == "" || seen[p.Spec.NodeName] || !podReady(p) {
			continue
		}
		if local && !endpointNodes[p.Spec.NodeName] {
			continue
		}
		seen[p.Spec.NodeName] = true
		n := nodes[p.Spec.NodeName]
		if n == nil {
			continue
		}
		for _, a := range n.Status.Addresses {
			ip, err := netip.ParseAddr(a.Address)
			if err != nil || !family(svc, ip) {
				continue
			}
			switch a.Type {
			case corev1.NodeInternalIP:
				internal = append(internal, ip)
			case corev1.NodeExternalIP:
				external = append(external, ip)
			}
		}
	}
	ips := internal
	if len(external) > 0 {
		ips = external
	}
	sort.Slice(ips, func(i, j int) bool { return ips[i].Less(ips[j]) })
	var out []corev1.LoadBalancerIngress
	for _, ip := range ips {
		out = append(out, corev1.LoadBalancerIngress{IP: ip.String()})
	}
	return out
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func family(svc *corev1.Service, ip netip.Addr) bool {
	if len(svc.Spec.IPFamilies) == 0 {
		return true
	}
	want := corev1.IPv4Protocol
	if ip.Is6() && !ip.Is4In6() {
		want = corev1.IPv6Protocol
	}
	for _, f := range svc.Spec.IPFamilies {
		if f == want {
			return true
		}
	}
	return false
}
