// Package nodewait waits for this node's Node object to reach a state
// that the kubelet and the controller-manager bring about after start.
package nodewait

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Polling starts at MinPoll and doubles up to MaxPoll: a new node
// registers and gets its pod CIDR within a second or two, and a node that
// waits longer should not load the API. Variables so tests can shorten them.
var (
	MinPoll = 200 * time.Millisecond
	MaxPoll = 2 * time.Second
)

// Until polls the Node named name until done reports true, and returns
// that Node. A Node not registered yet and API errors (expected while
// servers start; each distinct one is logged once) keep it waiting; an
// error from done ends the wait. "waiting for <what>" is logged once if
// the first look does not settle it.
func Until(ctx context.Context, client kubernetes.Interface, name, what string, done func(*corev1.Node) (bool, error)) (*corev1.Node, error) {
	waiting, lastErr := false, ""
	interval := MinPoll
	for {
		node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		switch {
		case err == nil:
			ok, err := done(node)
			if err != nil {
				return nil, fmt.Errorf("node %s: %w", name, err)
			}
			if ok {
				return node, nil
			}
		case apierrors.IsNotFound(err), ctx.Err() != nil:
		default:
			if err.Error() != lastErr {
				slog.Warn("cannot read node, retrying", "node", name, "err", err)
				lastErr = err.Error()
			}
		}
		if !waiting {
			slog.Info("waiting for "+what, "node", name)
			waiting = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("node %s: waiting for %s: %w", name, what, ctx.Err())
		case <-time.After(interval):
		}
		interval = min(2*interval, MaxPoll)
	}
}
