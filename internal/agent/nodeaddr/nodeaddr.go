// Package nodeaddr publishes a node's addresses itself when the node has an
// external IP, which the kubelet alone cannot publish: the kubelet then runs
// with an external cloud provider, leaves the addresses alone and taints
// the Node until someone sets them, as a cloud controller would. k3ha is
// that someone: InternalIP, ExternalIP and Hostname, then the taint lifted.
package nodeaddr

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	cloudproviderapi "k8s.io/cloud-provider/api"

	"github.com/k3ha/k3ha/internal/component"
)

// Wanted are the addresses a node with these IPs publishes.
func Wanted(node string, internal, external net.IP) []corev1.NodeAddress {
	return []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: internal.String()},
		{Type: corev1.NodeExternalIP, Address: external.String()},
		{Type: corev1.NodeHostName, Address: node},
	}
}

// Pending says what of the Node is not yet as wanted.
func Pending(n *corev1.Node, want []corev1.NodeAddress) (addresses, taint bool) {
	addresses = !slices.Equal(n.Status.Addresses, want)
	taint = slices.ContainsFunc(n.Spec.Taints, isUninitialized)
	return addresses, taint
}

func isUninitialized(t corev1.Taint) bool {
	return t.Key == cloudproviderapi.TaintExternalCloudProvider
}

// Publisher keeps one Node's addresses as wanted; the Node may be created
// after it starts (the kubelet registers it) and again if it is deleted.
type Publisher struct {
	node   string
	want   []corev1.NodeAddress
	client kubernetes.Interface
	component.Runner
}

// New returns the publisher of node's addresses; client must get and
// update Nodes and patch their status.
func New(node string, want []corev1.NodeAddress, client kubernetes.Interface) *Publisher {
	return &Publisher{node: node, want: want, client: client}
}

func (p *Publisher) Name() string { return "node addresses" }

func (p *Publisher) Start(ctx context.Context) error {
	p.Run(p.Context(ctx), func(ctx context.Context) error {
		logged := false
		for {
			wait := 30 * time.Second
			done, err := p.sync(ctx)
			switch {
			case err != nil:
				slog.Warn("node addresses: retrying", "node", p.node, "err", err)
				wait = 2 * time.Second
			case !done:
				wait = time.Second // the kubelet has not registered the Node yet
			case !logged:
				slog.Info("node addresses published", "node", p.node, "addresses", p.want)
				logged = true
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
	})
	return nil
}

func (p *Publisher) Stop() error { return p.StopWithin(0) }

// sync brings the Node to the wanted state; done is false while the Node
// does not exist.
func (p *Publisher) sync(ctx context.Context) (done bool, err error) {
	n, err := p.client.CoreV1().Nodes().Get(ctx, p.node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	addresses, taint := Pending(n, p.want)
	if addresses {
		// A merge patch replaces the list: no stale address of another
		// run survives beside the new one.
		patch, err := json.Marshal(map[string]any{"status": map[string]any{"addresses": p.want}})
		if err != nil {
			return false, err
		}
		if _, err := p.client.CoreV1().Nodes().Patch(ctx, p.node, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
			return false, fmt.Errorf("set addresses: %w", err)
		}
	}
	if taint {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			n, err := p.client.CoreV1().Nodes().Get(ctx, p.node, metav1.GetOptions{})
			if err != nil {
				return err
			}
			n.Spec.Taints = slices.DeleteFunc(n.Spec.Taints, isUninitialized)
			_, err = p.client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			return false, fmt.Errorf("lift the %s taint: %w", cloudproviderapi.TaintExternalCloudProvider, err)
		}
	}
	return true, nil
}
