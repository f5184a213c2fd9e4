// Package servicelb gives Services of type LoadBalancer addresses without
// a cloud: for each one it runs a DaemonSet of small forwarders in
// kube-system, one container per port behind a hostPort, and sets the
// Service's external addresses to the IPs of the nodes whose forwarder is
// ready (K3s's ServiceLB, with k3ha's names).
package servicelb

import (
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Labels and the namespace of the forwarders.
const (
	Namespace = metav1.NamespaceSystem
	// LabelEnableLB on nodes restricts load balancers to the nodes where
	// it is "true", once any node has it.
	LabelEnableLB = "svccontroller.k3ha.io/enablelb"
	// LabelPool on a Service and on nodes puts the Service's load balancer
	// on the nodes of that pool only.
	LabelPool         = "svccontroller.k3ha.io/lbpool"
	LabelSvcName      = "svccontroller.k3ha.io/svcname"
	LabelSvcNamespace = "svccontroller.k3ha.io/svcnamespace"
	serviceAccount    = "svclb"
	fieldManager      = "k3ha-servicelb"
)

// Handles tells whether the controller serves svc.
func Handles(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.LoadBalancerClass == nil && svc.DeletionTimestamp == nil
}

// Name is the DaemonSet's name for svc: unique per Service object.
func Name(svc *corev1.Service) string {
	name := svc.Name
	if len(name) > 48 {
		name = strings.TrimRight(name[:48], "-")
	}
	uid := string(svc.UID)
	if len(uid) > 8 {
		uid = uid[:8]
	}
	return "svclb-" + name + "-" + uid
}

// DaemonSet is the forwarders of svc, running image on the nodes
// nodeSelector picks.
func DaemonSet(svc *corev1.Service, image string, nodeSelector map[string]string) *appsv1.DaemonSet {
	name := Name(svc)
	podLabels := map[string]string{"app": name, LabelSvcName: svc.Name, LabelSvcNamespace: svc.Namespace}
	maxUnavailable := intstr.FromInt32(1)
	f := false
	ds := &appsv1.DaemonSet{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: Namespace,
			Labels: map[string]string{LabelSvcName: svc.Name, LabelSvcNamespace: svc.Namespace},
		},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type:          appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &maxUnavailable},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{
					ServiceAccountName:           serviceAccount,
					AutomountServiceAccountToken: &f,
					PriorityClassName:            "system-node-critical",
					NodeSelector:                 nodeSelector,
					Tolerations: []corev1.Toleration{
						{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
						{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists},
					},
				},
			},
		},
	}
	ranges := strings.Join(svc.Spec.LoadBalancerSourceRanges, ",")
	local := svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	for _, p := range svc.Spec.Ports {
		c := corev1.Container{
			Name:            fmt.Sprintf("lb-%s-%d", strings.ToLower(string(p.Protocol)), p.Port),
			Image:           image,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Ports:           []corev1.ContainerPort{{Name: fmt.Sprintf("lb-%s-%d", strings.ToLower(string(p.Protocol)), p.Port), ContainerPort: p.Port, HostPort: p.Port, Protocol: p.Protocol}},
			Env: []corev1.EnvVar{
				{Name: "SRC_PORT", Value: strconv.Itoa(int(p.Port))},
				{Name: "SRC_RANGES", Value: ranges},
				{Name: "DEST_PROTO", Value: string(p.Protocol)},
			},
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: &f,
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"NET_BIND_SERVICE"}},
			},
		}
		if local {
			// Only to this node's own endpoints: the NodePort on the node itself.
			c.Env = append(c.Env,
				corev1.EnvVar{Name: "DEST_PORT", Value: strconv.Itoa(int(p.NodePort))},
				corev1.EnvVar{Name: "DEST_IPS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.hostIP"}}})
		} else {
			c.Env = append(c.Env,
				corev1.EnvVar{Name: "DEST_PORT", Value: strconv.Itoa(int(p.Port))},
				corev1.EnvVar{Name: "DEST_IPS", Value: strings.Join(clusterIPs(svc), ",")})
		}
		ds.Spec.Template.Spec.Containers = append(ds.Spec.Template.Spec.Containers, c)
	}
	return ds
}

func clusterIPs(svc *corev1.Service) []string {
	if len(svc.Spec.ClusterIPs) > 0 {
		return svc.Spec.ClusterIPs
	}
	return []string{svc.Spec.ClusterIP}
}

// NodeSelector picks the nodes of svc's forwarders: those labelled
// enablelb=true once any node carries that label, and those of the
// Service's pool.
func NodeSelector(svc *corev1.Service, anyNodeHasEnableLB bool) map[string]string {
	sel := map[string]string{}
	if anyNodeHasEnableLB {
		sel[LabelEnableLB] = "true"
	}
	if pool := svc.Labels[LabelPool]; pool != "" {
		sel[LabelPool] = pool
	}
	if len(sel) == 0 {
		return nil
	}
	return sel
}
