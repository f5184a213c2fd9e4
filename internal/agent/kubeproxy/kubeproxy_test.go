package kubeproxy

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/k3ha/k3ha/internal/agent/nodewait"
)

func TestWaitForNode(t *testing.T) {
	oldMin, oldMax := nodewait.MinPoll, nodewait.MaxPoll
	nodewait.MinPoll, nodewait.MaxPoll = 10*time.Millisecond, 20*time.Millisecond
	t.Cleanup(func() { nodewait.MinPoll, nodewait.MaxPoll = oldMin, oldMax })
	client := fake.NewClientset()
	k := New(Config{NodeName: "n1", Client: client, NodeIP: net.ParseIP("10.0.0.2")})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	done := make(chan error, 1)
	go func() { done <- k.waitForNode(ctx) }()
	// Registered without an address first: kube-proxy must not start yet.
	n, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("returned (%v) before the node had an address", err)
	case <-time.After(100 * time.Millisecond):
	}
	// Still the address of before a move: kube-proxy would exit once the
	// kubelet updates it.
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}}
	if n, err = client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("returned (%v) while the node showed its old address", err)
	case <-time.After(100 * time.Millisecond):
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.2"}}
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("waitForNode = %v", err)
		}
	case <-ctx.Done():
		t.Fatal("waitForNode did not see the node's address")
	}

	// A stop while waiting ends the wait.
	k = New(Config{NodeName: "n2", Client: client})
	short, stop := context.WithCancel(context.Background())
	go func() { done <- k.waitForNode(short) }()
	stop()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("waitForNode after cancel = %v", err)
		}
	case <-ctx.Done():
		t.Fatal("waitForNode ignored its context")
	}
}
