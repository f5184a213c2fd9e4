package netpol

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	networkinginformers "k8s.io/client-go/informers/networking/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/kube-network-policies/pkg/networkpolicy"

	"github.com/k3ha/k3ha/internal/component"
)

// Controller enforces NetworkPolicy for one node's pods.
type Controller struct {
	node   string
	client kubernetes.Interface
	component.Runner
}

// New returns the controller of node; client must list and watch pods,
// namespaces and network policies.
func New(node string, client kubernetes.Interface) *Controller {
	return &Controller{node: node, client: client}
}

func (c *Controller) Name() string { return "network policy" }

func (c *Controller) Start(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(c.client, 0)
	pods := factory.Core().V1().Pods()
	policies := factory.Networking().V1().NetworkPolicies()
	evaluator, err := networkpolicy.NewController(c.client,
		quietPolicies{policies}, factory.Core().V1().Namespaces(), quietPods{pods}, nil, nil, nil, nil,
		networkpolicy.Config{NodeName: c.node, QueueID: QueueNum})
	if err != nil {
		return fmt.Errorf("network policy: %w", err)
	}
	dirty := make(chan struct{}, 1)
	mark := func() {
		select {
		case dirty <- struct{}{}:
		default:
		}
	}
	local := func(obj any) {
		if p, ok := obj.(*corev1.Pod); !ok || p.Spec.NodeName == c.node {
			mark() // a tombstone may be local too
		}
	}
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: local, UpdateFunc: func(_, obj any) { local(obj) }, DeleteFunc: local,
	}); err != nil {
		return fmt.Errorf("network policy: %w", err)
	}
	if _, err := policies.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { mark() }, UpdateFunc: func(any, any) { mark() }, DeleteFunc: func(any) { mark() },
	}); err != nil {
		return fmt.Errorf("network policy: %w", err)
	}

	ctx = c.Context(ctx)
	factory.Start(ctx.Done())
	c.Run(ctx, func(ctx context.Context) error {
		defer factory.Shutdown()
		go func() {
			if err := evaluator.Run(ctx); err != nil && ctx.Err() == nil {
				slog.Error("network policy evaluator stopped; new connections of pods a policy selects are dropped", "node", c.node, "err", err)
			}
		}()
		for _, synced := range factory.WaitForCacheSync(ctx.Done()) {
			if !synced {
				return nil
			}
		}
		slog.Info("network policy enforced", "node", c.node, "queue", QueueNum, "table", TableName)
		c.syncLoop(ctx, dirty, mark, pods.Lister(), policies.Lister())
		return nil
	})
	mark()
	return nil
}

// syncLoop rewrites the rules after each batch of changes; a failed write
// is retried, since until it succeeds a newly selected pod is unguarded.
func (c *Controller) syncLoop(ctx context.Context, dirty <-chan struct{}, mark func(), pods corelisters.PodLister, policies networkinglisters.NetworkPolicyLister) {
	retry := time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-dirty:
		}
		err := c.sync(pods, policies)
		if err == nil {
			retry = time.Second
			continue
		}
		slog.Error("network policy: retrying", "in", retry, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(2*retry, 30*time.Second)
		mark()
	}
}

// sync writes the rules for the informers' current view.
func (c *Controller) sync(pods corelisters.PodLister, policies networkinglisters.NetworkPolicyLister) error {
	allPolicies, err := policies.List(labels.Everything())
	if err != nil {
		return err
	}
	allPods, err := pods.List(labels.Everything())
	if err != nil {
		return err
	}
	return WriteRules(SelectedIPs(allPolicies, allPods, c.node))
}

func (c *Controller) Stop() error { return c.StopWithin(0) }

// The evaluator's own event handlers only resync its nftables table, which
// k3ha replaces with its own rules (WriteRules); these wrappers hand it the
// informers' caches without the handlers, so it never rewrites a table
// that the kernel may not even accept.
type quietPods struct{ coreinformers.PodInformer }

func (q quietPods) Informer() cache.SharedIndexInformer {
	return quietInformer{q.PodInformer.Informer()}
}

type quietPolicies struct {
	networkinginformers.NetworkPolicyInformer
}

func (q quietPolicies) Informer() cache.SharedIndexInformer {
	return quietInformer{q.NetworkPolicyInformer.Informer()}
}

type quietInformer struct{ cache.SharedIndexInformer }

// AddEventHandler registers a handler that does nothing in place of the
// evaluator's.
func (q quietInformer) AddEventHandler(cache.ResourceEventHandler) (cache.ResourceEventHandlerRegistration, error) {
	return q.SharedIndexInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{})
}
