package leader

import (
	"context"
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// A component that fails while leading (its discovery timed out while the
// datastore was down) gives up the lease and leads again, instead of ending
// the campaign and with it the server.
func TestFailedTermCampaignsAgain(t *testing.T) {
	saved := retryAfterFailure
	retryAfterFailure.Duration = 10 * time.Millisecond
	t.Cleanup(func() { retryAfterFailure = saved })
	client := fake.NewClientset()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	terms := make(chan int, 3)
	done := make(chan error, 1)
	n := 0
	go func() {
		done <- Campaign(ctx, client, "kube-controller-manager", "s1", func(ctx context.Context) error {
			n++
			terms <- n
			if n == 1 {
				return errors.New("discovery failed: timed out waiting for the condition")
			}
			<-ctx.Done()
			return nil
		})
	}()
	for want := 1; want <= 2; want++ {
		select {
		case got := <-terms:
			if got != want {
				t.Fatalf("term %d started, want %d", got, want)
			}
		case err := <-done:
			t.Fatalf("campaign ended after term %d: %v", want-1, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("term %d did not start", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("campaign ended with %v, want nil on shutdown", err)
	}
	lease, err := client.CoordinationV1().Leases("kube-system").Get(context.Background(), "kube-controller-manager", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
		t.Errorf("lease still held by %q after shutdown", *h)
	}
}

// An error every term would meet again ends the campaign with it.
func TestFatalTermEndsCampaign(t *testing.T) {
	bad := errors.New("unknown flag --bogus")
	calls := 0
	err := Campaign(context.Background(), fake.NewClientset(), "kube-scheduler", "s1", func(context.Context) error {
		calls++
		return Fatal(bad)
	})
	if !errors.Is(err, bad) || calls != 1 {
		t.Fatalf("campaign returned %v after %d terms, want %v after 1", err, calls, bad)
	}
}
