package nodewait

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestUntil(t *testing.T) {
	oldMin, oldMax := MinPoll, MaxPoll
	MinPoll, MaxPoll = 5*time.Millisecond, 10*time.Millisecond
	t.Cleanup(func() { MinPoll, MaxPoll = oldMin, oldMax })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := fake.NewClientset()
	labelled := func(n *corev1.Node) (bool, error) { return n.Labels["ready"] == "yes", nil }

	// Missing at first, then present but not done, then done.
	done := make(chan error, 1)
	go func() { _, err := Until(ctx, client, "n1", "the label", labelled); done <- err }()
	n, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Labels = map[string]string{"ready": "yes"}
	if _, err := client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Until = %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Until did not see the node become done")
	}

	// An error from done ends the wait with it.
	bad := errors.New("bad node")
	if _, err := Until(ctx, client, "n1", "x", func(*corev1.Node) (bool, error) { return false, bad }); !errors.Is(err, bad) {
		t.Errorf("Until with a failing check = %v, want %v", err, bad)
	}

	// The end of the context ends the wait.
	short, stop := context.WithCancel(ctx)
	stop()
	if _, err := Until(short, client, "missing", "x", labelled); !errors.Is(err, context.Canceled) {
		t.Errorf("Until after cancel = %v", err)
	}
}
