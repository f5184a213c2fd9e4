package servicelb

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func lbService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "0123456789abcdef"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.43.0.20", ClusterIPs: []string{"10.43.0.20"},
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, NodePort: 30080, Protocol: corev1.ProtocolTCP},
				{Name: "dns", Port: 53, NodePort: 30053, Protocol: corev1.ProtocolUDP},
			},
		},
	}
}

func env(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			out[e.Name] = "from:" + e.ValueFrom.FieldRef.FieldPath
		} else {
			out[e.Name] = e.Value
		}
	}
	return out
}

func TestDaemonSet(t *testing.T) {
	svc := lbService()
	ds := DaemonSet(svc, "k3ha.invalid/k3ha/svclb:v1", NodeSelector(svc, false))
	if ds.Name != "svclb-web-01234567" || ds.Namespace != "kube-system" {
		t.Fatalf("name %s/%s", ds.Namespace, ds.Name)
	}
	if ds.Spec.Template.Spec.NodeSelector != nil {
		t.Errorf("node selector %v with no enablelb label anywhere", ds.Spec.Template.Spec.NodeSelector)
	}
	cs := ds.Spec.Template.Spec.Containers
	if len(cs) != 2 || cs[0].Name != "lb-tcp-80" || cs[1].Name != "lb-udp-53" {
		t.Fatalf("containers %+v", cs)
	}
	if p := cs[1].Ports[0]; p.HostPort != 53 || p.ContainerPort != 53 || p.Protocol != corev1.ProtocolUDP {
		t.Errorf("port %+v", p)
	}
	if e := env(cs[0]); e["DEST_IPS"] != "10.43.0.20" || e["DEST_PORT"] != "80" || e["SRC_PORT"] != "80" || e["DEST_PROTO"] != "TCP" {
		t.Errorf("env %v", e)
	}
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	svc.Labels = map[string]string{LabelPool: "edge"}
	ds = DaemonSet(svc, "img", NodeSelector(svc, true))
	if e := env(ds.Spec.Template.Spec.Containers[0]); e["DEST_IPS"] != "from:status.hostIP" || e["DEST_PORT"] != "30080" {
		t.Errorf("local env %v", e)
	}
	if sel := ds.Spec.Template.Spec.NodeSelector; sel[LabelEnableLB] != "true" || sel[LabelPool] != "edge" {
		t.Errorf("node selector %v", sel)
	}
}

func TestHandles(t *testing.T) {
	svc := lbService()
	if !Handles(svc) {
		t.Fatal("LoadBalancer not handled")
	}
	class := "other.example.com/lb"
	svc.Spec.LoadBalancerClass = &class
	if Handles(svc) {
		t.Error("a Service of another load balancer class was handled")
	}
	svc = lbService()
	svc.Spec.Type = corev1.ServiceTypeNodePort
	if Handles(svc) {
		t.Error("NodePort handled")
	}
}

func pod(node string, ready bool) *corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Pod{Spec: corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}}}
}

func nodeWith(name string, addrs ...corev1.NodeAddress) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Addresses: addrs}}
}

func TestIngress(t *testing.T) {
	in := func(ip string) corev1.NodeAddress {
		return corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip}
	}
	ex := func(ip string) corev1.NodeAddress {
		return corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: ip}
	}
	nodes := map[string]*corev1.Node{
		"a": nodeWith("a", in("10.0.0.2"), in("fd00::2")),
		"b": nodeWith("b", in("10.0.0.10")),
		"c": nodeWith("c", in("10.0.0.3")),
	}
	svc := lbService()
	got := Ingress(svc, []*corev1.Pod{pod("b", true), pod("a", true), pod("c", false)}, nodes, nil)
	if len(got) != 2 || got[0].IP != "10.0.0.2" || got[1].IP != "10.0.0.10" {
		t.Fatalf("ingress %v", got)
	}
	// An ExternalIP on any serving node: only ExternalIPs.
	nodes["b"] = nodeWith("b", in("10.0.0.10"), ex("203.0.113.10"))
	got = Ingress(svc, []*corev1.Pod{pod("b", true), pod("a", true)}, nodes, nil)
	if len(got) != 1 || got[0].IP != "203.0.113.10" {
		t.Fatalf("ingress with an external IP %v", got)
	}
	// Local: only nodes holding a ready endpoint.
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	nodeA, yes := "a", true
	slices := []*discoveryv1.EndpointSlice{{Endpoints: []discoveryv1.Endpoint{{NodeName: &nodeA, Conditions: discoveryv1.EndpointConditions{Ready: &yes}}}}}
	got = Ingress(svc, []*corev1.Pod{pod("b", true), pod("a", true)}, nodes, slices)
	if len(got) != 1 || got[0].IP != "10.0.0.2" {
		t.Fatalf("local ingress %v", got)
	}
}
