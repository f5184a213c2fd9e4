package podnet

import (
	"context"
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
