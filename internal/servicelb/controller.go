package servicelb

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Controller runs the forwarders of every LoadBalancer Service and keeps
// their external addresses.
type Controller struct {
	Client kubernetes.Interface
	Image  string // the forwarders' image

	queue workqueue.TypedRateLimitingInterface[string]
}

// Run serves LoadBalancer Services until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	c.queue = workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Second, time.Minute))
	defer c.queue.ShutDown()
	factory := informers.NewSharedInformerFactory(c.Client, 10*time.Minute)
	system := informers.NewSharedInformerFactoryWithOptions(c.Client, 10*time.Minute, informers.WithNamespace(Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = LabelSvcName }))
	svcInf := factory.Core().V1().Services()
	nodeInf := factory.Core().V1().Nodes()
	sliceInf := factory.Discovery().V1().EndpointSlices()
	podInf := system.Core().V1().Pods()
	dsInf := system.Apps().V1().DaemonSets()

	enqueueSvc := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	byLabels := func(obj any) {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		if m, ok := obj.(metav1.Object); ok && m.GetLabels()[LabelSvcName] != "" {
			c.queue.Add(m.GetLabels()[LabelSvcNamespace] + "/" + m.GetLabels()[LabelSvcName])
		}
	}
	bySlice := func(obj any) {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		if s, ok := obj.(*discoveryv1.EndpointSlice); ok && s.Labels[discoveryv1.LabelServiceName] != "" {
			c.queue.Add(s.Namespace + "/" + s.Labels[discoveryv1.LabelServiceName])
		}
	}
	all := func(any) {
		list, _ := svcInf.Lister().List(labels.Everything())
		for _, s := range list {
			if Handles(s) {
				c.queue.Add(s.Namespace + "/" + s.Name)
			}
		}
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		fn  func(any)
	}{
		{svcInf.Informer(), enqueueSvc}, {podInf.Informer(), byLabels}, {dsInf.Informer(), byLabels},
		{sliceInf.Informer(), bySlice}, {nodeInf.Informer(), all},
	}
	for _, h := range handlers {
		fn := h.fn
		if _, err := h.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: fn, UpdateFunc: func(_, obj any) { fn(obj) }, DeleteFunc: fn,
		}); err != nil {
			return err
		}
	}
	factory.Start(ctx.Done())
	system.Start(ctx.Done())
	defer factory.Shutdown()
	defer system.Shutdown()
	for _, h := range handlers {
		if !cache.WaitForCacheSync(ctx.Done(), h.inf.HasSynced) {
			return nil
		}
	}
	l := lister{svc: svcInf.Lister(), node: nodeInf.Lister(), pod: podInf.Lister(), slice: sliceInf.Lister(), ds: dsInf.Lister()}
	go func() { <-ctx.Done(); c.queue.ShutDown() }()
	for {
		key, quit := c.queue.Get()
		if quit {
			return nil
		}
		if err := c.sync(ctx, l, key); err != nil && ctx.Err() == nil {
			slog.Warn("servicelb: retrying", "service", key, "err", err)
			c.queue.AddRateLimited(key)
		} else {
			c.queue.Forget(key)
		}
		c.queue.Done(key)
	}
}

func (c *Controller) sync(ctx context.Context, l lister, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	svc, err := l.svc.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		svc = nil
	} else if err != nil {
		return err
	}
	// Forwarders of this Service that should not run (any, if it is gone
	// or no longer a LoadBalancer; other names, if it was recreated).
	owned, err := l.ds.DaemonSets(Namespace).List(labels.SelectorFromSet(labels.Set{LabelSvcName: name, LabelSvcNamespace: ns}))
	if err != nil {
		return err
	}
	for _, ds := range owned {
		if svc != nil && Handles(svc) && ds.Name == Name(svc) {
			continue
		}
		if err := c.Client.AppsV1().DaemonSets(Namespace).Delete(ctx, ds.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		slog.Info("servicelb: forwarders removed", "service", key, "daemonset", ds.Name)
	}
	if svc == nil {
		return nil
	}
	if !Handles(svc) {
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer && svc.Spec.LoadBalancerClass == nil && len(svc.Status.LoadBalancer.Ingress) > 0 {
			return c.setIngress(ctx, svc, nil)
		}
		return nil
	}
	nodes, err := l.node.List(labels.Everything())
	if err != nil {
		return err
	}
	anyEnabled := slices.ContainsFunc(nodes, func(n *corev1.Node) bool { _, ok := n.Labels[LabelEnableLB]; return ok })
	want := DaemonSet(svc, c.Image, NodeSelector(svc, anyEnabled))
	if err := c.apply(ctx, l, want); err != nil {
		return err
	}
	pods, err := l.pod.Pods(Namespace).List(labels.SelectorFromSet(labels.Set{"app": want.Name}))
	if err != nil {
		return err
	}
	byName := map[string]*corev1.Node{}
	for _, n := range nodes {
		byName[n.Name] = n
	}
	var epSlices []*discoveryv1.EndpointSlice
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		if epSlices, err = l.slice.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name})); err != nil {
			return err
		}
	}
	return c.setIngress(ctx, svc, Ingress(svc, pods, byName, epSlices))
}

// apply creates or updates the DaemonSet, server-side, when it differs.
func (c *Controller) apply(ctx context.Context, l lister, want *appsv1.DaemonSet) error {
	if cur, err := l.ds.DaemonSets(Namespace).Get(want.Name); err == nil &&
		equality.Semantic.DeepDerivative(want.Spec.Template.Spec, cur.Spec.Template.Spec) &&
		equality.Semantic.DeepEqual(want.Spec.Template.Spec.NodeSelector, cur.Spec.Template.Spec.NodeSelector) {
		return nil
	}
	body, err := json.Marshal(want)
	if err != nil {
		return err
	}
	force := true
	_, err = c.Client.AppsV1().DaemonSets(Namespace).Patch(ctx, want.Name, types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: fieldManager, Force: &force})
	if err == nil {
		slog.Info("servicelb: forwarders applied", "daemonset", want.Name)
	}
	return err
}

func (c *Controller) setIngress(ctx context.Context, svc *corev1.Service, ingress []corev1.LoadBalancerIngress) error {
	if equality.Semantic.DeepEqual(svc.Status.LoadBalancer.Ingress, ingress) ||
		len(svc.Status.LoadBalancer.Ingress) == 0 && len(ingress) == 0 {
		return nil
	}
	svc = svc.DeepCopy()
	old := svc.Status.LoadBalancer.Ingress
	svc.Status.LoadBalancer.Ingress = ingress
	if _, err := c.Client.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, svc, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
		return err
	}
	slog.Info("servicelb: external addresses updated", "service", svc.Namespace+"/"+svc.Name, "from", ips(old), "to", ips(ingress))
	return nil
}

func ips(in []corev1.LoadBalancerIngress) []string {
	out := make([]string, 0, len(in))
	for _, i := range in {
		out = append(out, i.IP)
	}
	return out
}

// RemoveAll deletes every forwarder: servicelb is disabled.
func RemoveAll(ctx context.Context, client kubernetes.Interface) error {
	err := client.AppsV1().DaemonSets(Namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: LabelSvcName})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}
